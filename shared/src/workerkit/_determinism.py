"""A static determinism check of workflow code: what Go's ``workflowcheck`` does, for Python.

Production workers run workflows unsandboxed (for their CPU), so nothing refuses a call that
breaks replay on a path no test and no stored history covers. This check reads the source of
each workflow class of a queue, and of every function, method and class of the service's own
modules that workflow code calls (through aliases and ``from`` imports too), and reports what
the SDK's sandbox would refuse: the clock, random generators, random ids, the environment,
files, the network, threads and processes, blocking sleeps, and module-level state written
from a workflow. Activities are not followed: workflow code passes them, it does not call them.

A vetted exception is marked on its line (or the comment line above it), with the reason::

    started = time.time()  # determinism-ok: logged only, never decides a branch

It is static: a call through a variable, ``getattr`` or another package's code is not seen
(the sandbox of ``make dev`` and the tests, and the replay gate, still are).
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from workerkit._registry import Queue

__all__ = ["Finding", "check_queue", "check_workflows"]

_CLOCK = "reads the clock: use workflow.now() or workflow.time()"
_RANDOM = "the process's random generator: use workflow.random()"
_IDS = "a random id: use workflow.uuid4()"
_ENV = "reads the environment: pass the value in the workflow's input, or read it in an activity"
_FILES = "touches files: do it in an activity"
_NETWORK = "uses the network: do it in an activity"
_THREADS = "starts threads or processes: do it in an activity"
_SLEEP = "a blocking sleep: use await asyncio.sleep() or workflow.sleep()"
_STATE = "writes module-level state, which other executions in the process share"

# Fully qualified names, or a module followed by ".*" for all of it.
_RULES = {
    **dict.fromkeys(
        (
            "time.time",
            "time.time_ns",
            "time.monotonic",
            "time.monotonic_ns",
            "time.perf_counter",
            "time.perf_counter_ns",
            "time.process_time",
            "time.localtime",
            "time.gmtime",
            "time.ctime",
            "datetime.datetime.now",
            "datetime.datetime.utcnow",
            "datetime.datetime.today",
            "datetime.date.today",
        ),
        _CLOCK,
    ),
    "time.sleep": _SLEEP,
    "random.*": _RANDOM,
    "secrets.*": _RANDOM,
    "os.urandom": _RANDOM,
    "uuid.uuid1": _IDS,
    "uuid.uuid4": _IDS,
    "os.environ": _ENV,
    "os.environb": _ENV,
    "os.getenv": _ENV,
    "os.getenvb": _ENV,
    "os.putenv": _ENV,
    **dict.fromkeys(
        (
            "builtins.open",
            "builtins.input",
            "io.open",
            "os.open",
            "os.listdir",
            "os.scandir",
            "os.stat",
            "os.remove",
            "os.unlink",
            "os.rename",
            "os.makedirs",
            "os.mkdir",
            "os.path.exists",
            "os.path.isfile",
            "os.path.isdir",
            "os.path.getmtime",
            "os.path.getsize",
            "pathlib.Path.cwd",
            "pathlib.Path.home",
            "shutil.*",
            "tempfile.*",
            "glob.*",
        ),
        _FILES,
    ),
    **dict.fromkeys(
        (
            "socket.*",
            "ssl.*",
            "urllib.request.*",
            "http.client.*",
            "requests.*",
            "httpx.*",
            "aiohttp.*",
        ),
        _NETWORK,
    ),
    **dict.fromkeys(
        (
            "threading.*",
            "multiprocessing.*",
            "concurrent.futures.*",
            "subprocess.*",
            "os.system",
            "os.fork",
            "os.popen",
            "asyncio.to_thread",
            "asyncio.create_subprocess_exec",
            "asyncio.create_subprocess_shell",
        ),
        _THREADS,
    ),
}
# Builtins that reach outside the process; any other builtin is deterministic.
_BUILTINS = {"open", "input"}
# Calls that change a container in place.
_MUTATORS = {
    "append",
    "extend",
    "insert",
    "add",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "clear",
    "remove",
    "discard",
    "appendleft",
    "extendleft",
}
_MUTABLE_FACTORIES = {
    "builtins.list",
    "builtins.dict",
    "builtins.set",
    "builtins.bytearray",
    "collections.defaultdict",
    "collections.OrderedDict",
    "collections.Counter",
    "collections.deque",
}
_VETTED = re.compile(r"#\s*determinism-ok\s*:?\s*(?P<reason>.*)$")


@dataclass(frozen=True, order=True)
class Finding:
    """One call the sandbox would refuse.

    Attributes:
        path: The source file.
        line: Its line.
        call: What is called or read, fully qualified.
        why: Why it breaks replay, and what to use instead.
        via: The workflow code that reaches it, outermost first (empty: in the workflow class).
    """

    path: str
    line: int
    call: str
    why: str
    via: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        reached = f" [reached from {' -> '.join(self.via)}]" if self.via else ""
        return f"{self.path}:{self.line}: {self.call} ({self.why}){reached}"


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    lines: list[str]
    aliases: dict[str, str]
    definitions: dict[str, ast.AST]
    mutable: set[str]


def _rule(qualified: str) -> str | None:
    parts = qualified.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in _RULES:
            return _RULES[prefix]
        if end < len(parts) and f"{prefix}.*" in _RULES:
            return _RULES[f"{prefix}.*"]
    return None


def _is_mutable(value: ast.expr, aliases: dict[str, str]) -> bool:
    if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        parts = _dotted(value.func)
        if parts is None:
            return False
        head = aliases.get(parts[0], f"builtins.{parts[0]}")
        return ".".join([head, *parts[1:]]) in _MUTABLE_FACTORIES
    return False


@cache
def _load(module_name: str) -> _Module | None:
    """The parsed source of ``module_name``, or ``None`` without Python source."""
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):  # a class's path, not a module's
            return None
        origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(".py"):
        return None
    path = Path(origin)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                if name.asname:
                    aliases[name.asname] = name.name
                else:
                    top = name.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for name in node.names:
                if name.name != "*":
                    aliases[name.asname or name.name] = f"{base}.{name.name}"
    definitions: dict[str, ast.AST] = {}
    mutable: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            definitions[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _is_mutable(node.value, aliases):
                mutable |= {t.id for t in targets if isinstance(t, ast.Name)}
    return _Module(module_name, path, tree, source.splitlines(), aliases, definitions, mutable)


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


class _Checker:
    def __init__(self, own: Sequence[str]) -> None:
        self.own = tuple(own)
        self.findings: dict[tuple[str, int, str], Finding] = {}
        self.seen: set[tuple[str, str]] = set()

    def _owned(self, qualified: str) -> bool:
        return qualified.split(".")[0] in self.own

    def _qualify(
        self, module: _Module, parts: list[str], local: frozenset[str] = frozenset()
    ) -> str | None:
        """The fully qualified name, or ``None`` for a local name or one nothing binds here
        (a parameter called ``input`` is not the builtin, a variable ``requests`` no module)."""
        head, rest = parts[0], parts[1:]
        if head in local:
            return None
        if head in module.aliases:
            return ".".join([module.aliases[head], *rest])
        if head in module.definitions or head in module.mutable:
            return ".".join([module.name, head, *rest])
        if head in _BUILTINS and hasattr(builtins, head):
            return ".".join(["builtins", head, *rest])
        return None

    def _report(
        self, module: _Module, node: ast.AST, call: str, why: str, via: tuple[str, ...]
    ) -> None:
        line = getattr(node, "lineno", 0)
        texts = [module.lines[line - 1]] if 0 < line <= len(module.lines) else []
        if line >= 2 and module.lines[line - 2].strip().startswith("#"):
            texts.append(module.lines[line - 2])
        for text in texts:
            vetted = _VETTED.search(text)
            if vetted:
                if vetted["reason"].strip():
                    return
                why = "marked determinism-ok without a reason: say why it is safe"
        key = (str(module.path), line, call)
        self.findings.setdefault(key, Finding(str(module.path), line, call, why, via))

    def _resolve(self, qualified: str) -> tuple[_Module, ast.AST] | None:
        """The definition a qualified name of the service's own code points to."""
        parts = qualified.split(".")
        for end in range(len(parts) - 1, 0, -1):
            module = _load(".".join(parts[:end])) if self._owned(qualified) else None
            if module is None:
                continue
            node: ast.AST | None = module.definitions.get(parts[end])
            for attr in parts[end + 1 :]:
                node = next(
                    (
                        n
                        for n in getattr(node, "body", [])
                        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                        and n.name == attr
                    ),
                    None,
                )
            if node is not None:
                return module, node
            return None
        return None

    def _follow(self, qualified: str, via: tuple[str, ...]) -> None:
        found = self._resolve(qualified)
        if found is None:
            return
        module, node = found
        key = (module.name, qualified)
        if key in self.seen:
            return
        self.seen.add(key)
        self.visit(module, node, (*via, qualified.removeprefix(f"{module.name}.")))

    def visit(self, module: _Module, root: ast.AST, via: tuple[str, ...]) -> None:
        """Check ``root`` (a function or a class) of ``module``."""
        cls = root.name if isinstance(root, ast.ClassDef) else None
        local = _local_names(root)
        inner: set[int] = set()  # the parts of a name already judged whole
        for node in _walk(root):
            if id(node) in inner:
                continue
            if isinstance(node, ast.Attribute):
                part: ast.expr = node.value
                while isinstance(part, ast.Attribute | ast.Name):
                    inner.add(id(part))
                    part = part.value if isinstance(part, ast.Attribute) else ast.Constant(None)
            if isinstance(node, ast.Global):
                self._report(module, node, ", ".join(node.names), _STATE, via)
            elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
                parts = _dotted(node)
                if parts is None:
                    continue
                qualified = self._qualify(module, parts, local)
                why = _rule(qualified) if qualified else None
                if qualified and why is not None:
                    self._report(module, node, qualified, why, via)
            elif isinstance(node, ast.Call):
                self._call(module, node, cls, local, via)
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
                targets = (
                    node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                )
                for target in targets:
                    self._store(module, target, local, via)

    def _call(
        self,
        module: _Module,
        node: ast.Call,
        cls: str | None,
        local: frozenset[str],
        via: tuple[str, ...],
    ) -> None:
        parts = _dotted(node.func)
        if parts is None:
            return
        if parts[0] == "self" and cls is not None:
            return  # the class's own methods are visited with it
        if len(parts) >= 2 and parts[-1] in _MUTATORS:
            target = self._qualify(module, parts[:-1], local)
            if target and self._module_state(target):
                self._report(module, node, f"{target}.{parts[-1]}", _STATE, via)
                return
        qualified = self._qualify(module, parts, local)
        if qualified and self._owned(qualified) and _rule(qualified) is None:
            self._follow(qualified, via)

    def _store(
        self, module: _Module, target: ast.expr, local: frozenset[str], via: tuple[str, ...]
    ) -> None:
        if not isinstance(target, ast.Subscript | ast.Attribute):
            return
        base = target.value
        while isinstance(base, ast.Subscript):
            base = base.value
        parts = _dotted(base)
        if parts is None:
            return
        qualified = self._qualify(module, parts, local)
        if qualified and self._module_state(qualified):
            self._report(module, base, qualified, _STATE, via)

    def _module_state(self, qualified: str) -> bool:
        module_name, _, name = qualified.rpartition(".")
        if not module_name or not self._owned(qualified):
            return False
        module = _load(module_name)
        return module is not None and name in module.mutable


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """``node``'s children, but not its type annotations: ``rng: random.Random`` calls nothing."""
    skip: set[int] = set()
    if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
        skip.add(id(node.annotation))
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
        skip.add(id(node.returns))
    return (child for child in ast.iter_child_nodes(node) if id(child) not in skip)


def _walk(root: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``root`` but annotations, each before its children."""
    stack = list(_children(root))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_children(node))


def _local_names(root: ast.AST) -> frozenset[str]:
    """Names ``root``'s functions bind themselves: parameters, assignments, loop and ``with``
    targets (not those declared ``global``, which are the module's)."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    for node in ast.walk(root):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
    return frozenset(bound - declared_global)


def check_workflows(workflows: Sequence[type], *, own: Sequence[str]) -> list[Finding]:
    """Check ``workflows`` and what they call in the packages named ``own``."""
    checker = _Checker(own)
    for cls in workflows:
        module = _load(cls.__module__)
        if module is None:
            continue
        # At module level, or else (a class defined in a function) the first of its name.
        node = module.definitions.get(cls.__name__) or next(
            (
                n
                for n in ast.walk(module.tree)
                if isinstance(n, ast.ClassDef) and n.name == cls.__name__
            ),
            None,
        )
        if node is not None:
            checker.seen.add((module.name, f"{module.name}.{cls.__name__}"))
            checker.visit(module, node, ())
    return sorted(checker.findings.values())


def check_queue(queue: Queue) -> list[Finding]:
    """Check ``queue``'s workflow classes and its service's code they call."""
    own = [p for p in queue.code_packages() if p != "workerkit"]
    return check_workflows(list(queue.workflows), own=own)

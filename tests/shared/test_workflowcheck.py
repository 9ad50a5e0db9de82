"""The static determinism check (``fleet workflowcheck``, ``make lint`` and the replay gate).

The corpus (tests/workflowcheck_corpus) marks each line that must be reported with
``# expect: <call>``; every other line must not be.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio.common import VersioningBehavior
from workerkit import Queue
from workerkit._determinism import Finding, check_workflows
from workerkit._replay_gate import replay_gate
from workerkit.cli import run

from workflowcheck_corpus.bad import BadWorkflow
from workflowcheck_corpus.good import GoodWorkflow
from workflowcheck_corpus.unexplained import UnexplainedWorkflow

CORPUS = Path(__file__).resolve().parents[1] / "workflowcheck_corpus"
EXPECT = re.compile(r"#\s*expect:\s*(\S+)\s*$")


def expected() -> set[tuple[str, int, str]]:
    found = set()
    for path in CORPUS.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECT.search(line)
            if match:
                found.add((path.name, number, match[1]))
    return found


def reported(findings: list[Finding]) -> set[tuple[str, int, str]]:
    return {(Path(f.path).name, f.line, f.call) for f in findings}


def check(*workflows: type) -> list[Finding]:
    return check_workflows(list(workflows), own=["workflowcheck_corpus"])


def test_the_corpus_is_reported_line_for_line() -> None:
    findings = check(BadWorkflow, GoodWorkflow, UnexplainedWorkflow)
    assert len(expected()) >= 15
    assert reported(findings) == expected()


def test_the_known_good_workflow_has_no_finding() -> None:
    assert check(GoodWorkflow) == []


def test_a_finding_says_where_why_and_through_which_helpers() -> None:
    by_call = {f.call: f for f in check(BadWorkflow)}
    environ = str(by_call["os.environ.get"])
    assert re.fullmatch(
        r".*workflowcheck_corpus/helpers\.py:\d+: os\.environ\.get \(reads the environment: "
        r"pass the value in the workflow's input, or read it in an activity\) "
        r"\[reached from region -> deeper\]",
        environ,
    ), environ
    assert "use workflow.random()" in by_call["random.randint"].why
    assert by_call["time.time"].via == ()  # in the workflow class itself


def test_a_vetted_line_must_say_why() -> None:
    (finding,) = check(UnexplainedWorkflow)
    assert finding.why == "marked determinism-ok without a reason: say why it is safe"


def test_every_installed_queue_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["workflowcheck", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("workflowcheck: no call that breaks replay in ")
    assert "orders" in out


async def test_the_replay_gate_refuses_a_build_with_a_finding() -> None:
    queue = Queue(
        name="checked",
        workflows=[BadWorkflow, GoodWorkflow],
        versioning=VersioningBehavior.AUTO_UPGRADE,
    )
    report = await replay_gate(None, queue)
    assert not report.passed
    assert reported(report.findings) == {e for e in expected() if e[0] != "unexplained.py"}
    assert report.summary().endswith(
        f"{len(report.findings)} non-deterministic calls found (workflowcheck)"
    )
    assert all(p.startswith("workflowcheck: ") for p in report.problems())

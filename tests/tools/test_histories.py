"""`make freeze-history` (fleet freeze-history): a recorded history kept as it is, which the
replay tests and the replay gate then replay and `make histories` never rewrites."""

from __future__ import annotations

import uuid

from workerkit import get_queue
from workerkit._replay_gate import replay_gate, stored_histories

from support import histories_dir, run_cli


async def test_a_frozen_history_is_kept_and_replayed() -> None:
    name = f"happy_path_frozen_{uuid.uuid4().hex[:8]}"
    frozen = histories_dir("orders", "frozen") / f"{name}.json"
    try:
        done = run_cli("freeze-history", "orders", "happy_path", name)
        assert done.returncode == 0, done.stderr
        assert frozen.read_text() == (histories_dir("orders") / "happy_path.json").read_text()
        assert f"{name}.json" in [p.name for p in stored_histories(get_queue("orders"))]
        report = await replay_gate(None, get_queue("orders"))
        assert report.passed, report.failures
        again = run_cli("freeze-history", "orders", "happy_path", name)
        assert (again.returncode, again.stderr) == (
            2,
            f"error: {name}.json is already frozen: frozen histories are never replaced\n",
        )
    finally:
        frozen.unlink(missing_ok=True)


def test_what_cannot_be_frozen_is_one_line() -> None:
    for args, message in (
        (["nope", "a", "b"], "unknown queue 'nope'"),
        (["orders", "no_such", "x"], "no recorded history 'no_such' of orders; recorded: "),
        (["orders", "happy_path", "Bad-Name"], "name 'Bad-Name': lower-case letters"),
    ):
        out = run_cli("freeze-history", *args)
        assert out.returncode == 2 and out.stderr.startswith(f"error: {message}"), out.stderr
        assert out.stderr.count("\n") == 1

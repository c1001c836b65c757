"""Crash safety of the ledger: appending processes killed mid-write lose nothing that returned.

The harness (``tests/crash_helpers.py``) runs four appending processes and SIGKILLs them at
random moments until 200 appends have returned; ``bench/crash.py`` runs the same with 1,000.
A power loss cannot be simulated here, so the setting it depends on is asserted directly.
"""

from __future__ import annotations

from pathlib import Path

from provenance.ledger import Ledger
from tests.crash_helpers import run_crash_test


def test_killed_appenders_lose_no_returned_append_and_leave_an_intact_ledger(
    tmp_path: Path,
) -> None:
    result = run_crash_test(tmp_path / "project", appends=200, workers=4, seed=2024)
    assert result.kills >= 10  # paced by appends, not time: kills happen on any machine
    assert result.returned == 200
    assert result.lost == []
    assert result.check_exit == 0, result.problems
    assert result.problems == []
    # Exactly the appends that returned, each once: a re-append after a kill was a duplicate.
    assert result.entries == result.returned
    assert result.unexpected == 0
    assert result.moved == 0  # each entry is where its append said it was
    # The head may lag after a crash, never run ahead (the check would also say so).
    assert result.head_seq is not None and result.head_seq <= result.last_seq


def test_commits_are_synced_so_returned_appends_survive_power_loss(tmp_path: Path) -> None:
    """A killed process leaves its writes in the page cache, so the kill test passes even with
    ``synchronous=NORMAL``; only ``FULL`` syncs the WAL before a commit returns."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL

"""Crash safety at length: 1,000 appends by four processes killed with SIGKILL at random moments.

The longer run of ``tests/test_ledger_crash.py`` (see ``tests/crash_helpers.py`` for how it
works): worker processes append signed bundles to one ledger and log each attestation id once
its append has returned; the parent SIGKILLs them at seeded random moments, paced by their
appends, and restarts them. Afterwards ``provenance ledger check`` must pass and every append
that returned must be in the ledger, once. Prints what happened; the verdict is a figure
(lost appends: 0), and the exit status is 1 if it is not met.

A kill leaves the page cache intact, so this is the process-crash half of crash safety; the
power-loss half rests on the ledger syncing every commit (``synchronous=FULL``).

    python bench/crash.py [--appends N] [--workers N] [--seed N] [--between-kills N] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--between-kills", type=int, default=4, help="a kill every 0..N appends of the victim"
    )
    parser.add_argument("--dir", type=Path, help="where to run (a temporary directory inside)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the harness lives with the tests
    from tests.crash_helpers import run_crash_test

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = run_crash_test(
            Path(tmp) / "project",
            appends=args.appends,
            workers=args.workers,
            seed=args.seed,
            between_kills=args.between_kills,
        )
    if args.json:
        print(json.dumps(dataclasses.asdict(result) | {"passed": result.passed}))
        return 0 if result.passed else 1
    head = "none" if result.head_seq is None else f"entry {result.head_seq}"
    print(f"workers:               {result.workers} processes, seed {args.seed}")
    print(f"appends returned:      {result.returned:,} in {result.seconds:.1f} s")
    print(f"SIGKILLs:              {result.kills:,} (each followed by a restart)")
    print(f"  after commit, before the log line: {result.reappended} (re-appended: duplicates)")
    print(f"  in the middle of a log line:       {result.torn_log_lines}")
    print(f"ledger entries:        {result.entries:,} (last {result.last_seq}, head {head})")
    print(f"lost (returned, not stored): {len(result.lost)}")
    print(f"stored, never returned:      {result.unexpected}")
    print(f"stored at another seq than its append returned: {result.moved}")
    print(
        f"provenance ledger check:     exit {result.check_exit}, "
        + ("intact" if not result.problems else "; ".join(result.problems))
    )
    if result.stray_files:
        print(
            f"left beside the ledger:      {len(result.stray_files)} temporary file(s) of "
            "head writes killed mid-way"
        )
    print("verdict: " + ("PASSED" if result.passed else "FAILED"))
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

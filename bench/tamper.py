"""The tamper campaign, long form: thousands of seeded single mutations of a full chain.

The same campaign as ``tests/adversarial/test_tamper.py`` (see ``tests/adversarial/
campaign.py`` for the mutations and how each answer is classified), run longer: it prints
how many mutations were tried and how many were refused, errors, false passes, crashes and
benign (nothing signed or hashed that a verdict rests on changed), per operator, and every
false pass or crash in full. Exit status 1 if there was any false pass, crash or disagreement
between the CLI and the library. Counts are printed, never timed.

    python bench/tamper.py [--count N] [--ledger N] [--seed S] [--cli-every K]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.adversarial.campaign import Tally, run_campaign, run_ledger_campaign
from tests.adversarial.world import build_world


def report(name: str, tally: Tally, seconds: float) -> None:
    print(f"{name}: {tally.summary()} [{seconds:.0f} s]")
    operators = sorted({operator for operator, _ in tally.by_operator})
    outcomes = sorted({outcome for _, outcome in tally.by_operator})
    print(f"  {'operator':<16}" + "".join(f"{o:>12}" for o in outcomes))
    for operator in operators:
        row = "".join(f"{tally.by_operator[(operator, o)]:>12}" for o in outcomes)
        print(f"  {operator:<16}{row}")
    for problem in tally.problems:
        print(f"  PROBLEM {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5_000, help="release and disk mutations")
    parser.add_argument("--ledger", type=int, default=1_000, help="ledger edits")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cli-every", type=int, default=20, help="cross-check every K-th through the CLI"
    )
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        world = build_world(Path(scratch) / "world")
        started = time.perf_counter()
        tally = run_campaign(
            world,
            seed=args.seed,
            count=args.count,
            scratch=Path(scratch) / "release",
            cli_every=args.cli_every,
        )
        report("release and artifacts", tally, time.perf_counter() - started)
        failures += len(tally.problems)
        started = time.perf_counter()
        ledger = run_ledger_campaign(
            world, seed=args.seed, count=args.ledger, scratch=Path(scratch) / "ledger"
        )
        report("ledger", ledger, time.perf_counter() - started)
        failures += len(ledger.problems)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

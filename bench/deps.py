"""Dependency benchmarks: the environment SBOM and the installed-file integrity check.

Runs both on an interpreter's environment (default: this one -- the dev ``.venv``, where
torch makes it large) and prints the median and spread over a few runs, with files per
second and MB/s for the integrity check (which re-hashes every installed file). The first
run of the check may read from disk; later runs read the page cache, so the median mostly
measures hashing. Figures are printed, never asserted.

    python bench/deps.py [--python PATH] [--repeat N] [--jobs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from provenance.deps.integrity import IntegrityReport, check_environment
from provenance.deps.inventory import inspect
from provenance.deps.sbom import Sbom, build_sbom

T = TypeVar("T")


def _timed(action: Callable[[], T], repeat: int) -> tuple[list[float], T]:
    times: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    assert result is not None
    return times, result


def _line(label: str, times: list[float], extra: str = "") -> str:
    median = statistics.median(times)
    return (
        f"{label:<28} median {median:7.3f} s  (min {min(times):.3f}, max {max(times):.3f}, "
        f"n={len(times)}){extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="the interpreter to describe (default: this one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None, help="hashing threads for the check")
    args = parser.parse_args()

    inventory_times, environment = _timed(lambda: inspect(args.python), args.repeat)
    dists = len(environment.distributions)
    print(f"environment: {environment.python} ({dists} distributions)")
    print(_line("inventory (probe subprocess)", inventory_times))

    sbom_times, sbom = _timed(lambda: build_sbom(inspect(args.python)), args.repeat)
    assert isinstance(sbom, Sbom)
    print(
        _line(
            "env sbom (inventory + SBOM)",
            sbom_times,
            f"  {dists / statistics.median(sbom_times):,.0f} components/s, "
            f"{len(sbom.data):,} bytes, {sbom.digest}",
        )
    )

    check_times, report = _timed(
        lambda: check_environment(inspect(args.python), workers=args.jobs), args.repeat
    )
    assert isinstance(report, IntegrityReport)
    median = statistics.median(check_times)
    print(
        _line(
            "env check (re-hash all)",
            check_times,
            f"  {report.files / median:,.0f} files/s, {report.bytes / median / 1e6:,.0f} MB/s "
            f"({report.files:,} files, {report.bytes / 1e9:.2f} GB, "
            f"{'passed' if report.passed else 'FAILED'}; first run {check_times[0]:.3f} s)",
        )
    )


if __name__ == "__main__":
    main()

"""Dependency benchmarks: the environment SBOM and the installed-file integrity check.

Runs both on an interpreter's environment (default: this one -- the dev ``.venv``, where
torch makes it large) and prints the median and spread over a few runs, with files per
second and MB/s for the integrity check (which re-hashes every installed file). The first
run of the check may read from disk; later runs read the page cache, so the median mostly
measures hashing. Figures are printed, never asserted.

With ``--peer``, the SBOM is also timed command against command, start-up included: ``provenance
env sbom --no-ledger`` against ``cyclonedx-py environment`` (CycloneDX's own generator for
Python environments, installed with this project), each on the same interpreter. ``--json``
prints the figures as one JSON document on stdout (the text goes to stderr), for
``bench/all.py``.

    python bench/deps.py [--python PATH] [--repeat N] [--jobs N] [--peer] [--peer-repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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


def _command_times(command: list[str], repeat: int) -> list[float]:
    """Wall times of ``command`` (output discarded; a failure stops the benchmark)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def peer_sbom(python: str | None, repeat: int, out: Any) -> dict[str, Any]:
    """``provenance env sbom`` against ``cyclonedx-py environment``, as commands."""
    interpreter = python or sys.executable
    ours = shutil.which("provenance", path=str(Path(sys.executable).parent)) or "provenance"
    theirs = shutil.which("cyclonedx-py", path=str(Path(sys.executable).parent))
    with tempfile.TemporaryDirectory() as tmp:
        command = [ours, "env", "sbom", "--no-ledger", "-o", f"{tmp}/ours.json"]
        ours_times = _command_times([*command, "--python", interpreter], repeat)
        theirs_times = None
        if theirs is not None:
            command = [theirs, "environment", "--output-format", "JSON"]
            theirs_times = _command_times(
                [*command, "-o", f"{tmp}/theirs.json", interpreter], repeat
            )
    print(_line("provenance env sbom (CLI)", ours_times), file=out)
    if theirs_times is not None:
        print(_line("cyclonedx-py environment", theirs_times), file=out)
    return {
        "ours_s": statistics.median(ours_times),
        "cyclonedx_py_s": statistics.median(theirs_times) if theirs_times else None,
        "runs": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="the interpreter to describe (default: this one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None, help="hashing threads for the check")
    parser.add_argument("--peer", action="store_true", help="time the SBOM CLIs side by side")
    parser.add_argument("--peer-repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout

    inventory_times, environment = _timed(lambda: inspect(args.python), args.repeat)
    dists = len(environment.distributions)
    print(f"environment: {environment.python} ({dists} distributions)", file=out)
    print(_line("inventory (probe subprocess)", inventory_times), file=out)

    sbom_times, sbom = _timed(lambda: build_sbom(inspect(args.python)), args.repeat)
    assert isinstance(sbom, Sbom)
    print(
        _line(
            "env sbom (inventory + SBOM)",
            sbom_times,
            f"  {dists / statistics.median(sbom_times):,.0f} components/s, "
            f"{len(sbom.data):,} bytes, {sbom.digest}",
        ),
        file=out,
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
        ),
        file=out,
    )
    document: dict[str, Any] = {
        "distributions": dists,
        "inventory_s": statistics.median(inventory_times),
        "sbom_s": statistics.median(sbom_times),
        "check_s": median,
        "check_first_s": check_times[0],
        "check_files": report.files,
        "check_bytes": report.bytes,
        "check_passed": report.passed,
        "peer": peer_sbom(args.python, args.peer_repeat, out) if args.peer else None,
    }
    if args.json:
        print(json.dumps(document))


if __name__ == "__main__":
    main()

"""Hashing throughput: ``provenance digest`` against single-threaded hashlib and sha256sum.

Three workloads, as named in the project's targets:

  (a) one 2 GiB file          target: >= 0.9x single-thread hashlib (one file cannot be split)
  (b) 10,000 files of 100 KiB  target: >= 1.7x single-thread hashlib (uses every core)
  (c) 100,000 files of 4 KiB   target: >= 2x the files/s of ``find | xargs sha256sum``,
                               peak RSS below 150 MB

Every method runs as its own process (the CLI as a user runs it, a one-thread hashlib loop,
coreutils through ``find | xargs``) on a warm page cache: each is run once untimed, then the
methods are timed in turn, ``--repeat`` rounds, and the median is reported. Figures are
printed, never asserted: this is a measurement, not a test.

    python bench/hashing.py [--dir DIR] [--repeat N] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    files: int
    size: int
    per_dir: int = 1000


FULL = (
    Workload("a", "1 file x 2 GiB", 1, 2048 * MiB),
    Workload("b", "10,000 files x 100 KiB", 10_000, 100 * 1024),
    Workload("c", "100,000 files x 4 KiB", 100_000, 4 * 1024),
)
QUICK = (
    Workload("a", "1 file x 128 MiB", 1, 128 * MiB),
    Workload("b", "1,000 files x 100 KiB", 1_000, 100 * 1024),
    Workload("c", "10,000 files x 4 KiB", 10_000, 4 * 1024),
)


def generate(root: Path, workload: Workload) -> Path:
    """Create the workload's files under ``root`` once; later runs reuse them."""
    target = root / f"{workload.key}-{workload.files}x{workload.size}"
    done = root / f"{target.name}.complete"  # outside the tree: not part of what is hashed
    if done.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    block = bytearray(os.urandom(min(workload.size, MiB)))
    for i in range(workload.files):
        directory = target / f"d{i // workload.per_dir:04d}"
        directory.mkdir(exist_ok=True)
        block[:8] = i.to_bytes(8, "little")  # every file distinct
        with (directory / f"f{i:07d}.bin").open("wb") as handle:
            remaining = workload.size
            while remaining:
                chunk = memoryview(block)[: min(remaining, len(block))]
                handle.write(chunk)
                remaining -= len(chunk)
    done.write_text("")
    return target


def hashlib_baseline(root: Path) -> int:
    """One thread, one buffer: the reference a parallel hasher is measured against."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    count = 0
    for directory, _, names in os.walk(root):
        for name in names:
            hasher = hashlib.sha256()
            with open(os.path.join(directory, name), "rb", buffering=0) as handle:
                while n := handle.readinto(buf):
                    hasher.update(view[:n])
            hasher.hexdigest()
            count += 1
    return count


@dataclass
class Run:
    seconds: float
    max_rss_kib: int


def run(command: list[str]) -> Run:
    """Run ``command`` with output discarded; wall time and the process's own peak RSS."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed ({process.returncode}): {' '.join(command)}")
    return Run(elapsed, usage.ru_maxrss)


def methods(path: Path, single_file: bool) -> dict[str, list[str]]:
    provenance = [sys.executable, "-m", "provenance", "digest", "--quiet"]
    if single_file:
        target = str(next(path.glob("d*/f*.bin")))
        sha256sum = ["sha256sum", target]
        baseline = [sys.executable, __file__, "--hashlib-baseline", target]
        return {
            "provenance sha256": [*provenance, target],
            "provenance blake3": [*provenance, "--algorithm", "blake3", target],
            "hashlib 1 thread": baseline,
            "sha256sum": sha256sum,
        }
    find = f"find {path} -type f -print0 | xargs -0 sha256sum > /dev/null"
    return {
        "provenance sha256": [*provenance, str(path)],
        "provenance blake3": [*provenance, "--algorithm", "blake3", str(path)],
        "hashlib 1 thread": [sys.executable, __file__, "--hashlib-baseline", str(path)],
        "sha256sum": ["sh", "-c", find],
    }


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return (
        f"{model}, {cores} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to generate the data (kept for reuse)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--quick", action="store_true", help="small workloads, for a smoke run")
    parser.add_argument("--hashlib-baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hashlib_baseline is not None:
        if args.hashlib_baseline.is_file():
            hasher = hashlib.sha256()
            with args.hashlib_baseline.open("rb", buffering=0) as handle:
                buf = bytearray(MiB)
                view = memoryview(buf)
                while n := handle.readinto(buf):
                    hasher.update(view[:n])
        else:
            hashlib_baseline(args.hashlib_baseline)
        return

    root = args.dir or Path(tempfile.gettempdir()) / "ml-provenance-bench"
    workloads = QUICK if args.quick else FULL
    print(f"machine: {machine()}")
    print(f"data: {root} (warm page cache; median of {args.repeat} rounds per method)\n")
    header = f"{'workload':<26}{'method':<20}{'median s':>9}{'MB/s':>9}{'files/s':>10}"
    print(header + f"{'x hashlib':>11}{'x sha256sum':>13}{'peak RSS':>10}")
    verdicts: list[str] = []
    for workload in workloads:
        path = generate(root, workload)
        commands = methods(path, workload.files == 1)
        for command in commands.values():  # warm the page cache and the interpreters
            run(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, command in commands.items():
                result = run(command)
                times[name].append(result.seconds)
                rss[name] = max(rss.get(name, 0), result.max_rss_kib)
        median = {name: statistics.median(values) for name, values in times.items()}
        total_mb = workload.files * workload.size / 1e6
        for name in commands:
            seconds = median[name]
            print(
                f"{'(' + workload.key + ') ' + workload.title:<26}{name:<20}{seconds:>9.3f}"
                f"{total_mb / seconds:>9.0f}{workload.files / seconds:>10.0f}"
                f"{median['hashlib 1 thread'] / seconds:>10.2f}x"
                f"{median['sha256sum'] / seconds:>12.2f}x"
                f"{rss[name] / 1024:>8.0f} MB"
            )
        ours = median["provenance sha256"]
        if workload.key == "a":
            ratio = median["hashlib 1 thread"] / ours
            verdicts.append(f"(a) vs single-thread hashlib: {ratio:.2f}x (target >= 0.9x)")
        elif workload.key == "b":
            ratio = median["hashlib 1 thread"] / ours
            verdicts.append(f"(b) vs single-thread hashlib: {ratio:.2f}x (target >= 1.7x)")
        else:
            ratio = median["sha256sum"] / ours
            verdicts.append(f"(c) files/s vs find|xargs sha256sum: {ratio:.2f}x (target >= 2x)")
            verdicts.append(
                f"(c) peak RSS of the provenance process: {rss['provenance sha256'] / 1024:.0f} MB"
                " (target < 150 MB; each hashing worker process adds its own, ~15 MB)"
            )
        print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()

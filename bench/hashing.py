"""Hashing throughput: ``provenance digest`` against single-threaded hashlib, sha256sum and
model_signing.

Three workloads, as named in the project's targets:

  (a) one 2 GiB file          target: >= 0.9x single-thread hashlib (one file cannot be split)
  (b) 10,000 files of 100 KiB  target: >= 1.7x single-thread hashlib (uses every core)
  (c) 100,000 files of 4 KiB   target: >= 2x the files/s of ``find | xargs sha256sum``,
                               peak RSS below 150 MB

Every method runs as its own process on a warm page cache: each is run once untimed, then the
methods are timed in turn, ``--repeat`` rounds, and the median is reported. The library and
the one-thread hashlib loop are timed inside their process (hashing throughput, without the
interpreter's start-up); the CLI and coreutils (``find | xargs sha256sum``) are timed from
outside, start-up included, as a user runs them. When ``model_signing`` is installed, its
hashing -- ``model_signing.hashing.hash``, the default serialization of a model into a manifest
of per-file SHA-256 digests, the same work as ours -- is timed in its process too. Figures are
printed, never asserted: this is a measurement, not a test. ``--json`` prints them as one JSON
document on stdout (the table goes to stderr), for ``bench/all.py``.

    python bench/hashing.py [--dir DIR] [--repeat N] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
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
from typing import Any

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


def hashlib_baseline(root: Path, share: tuple[int, int] = (0, 1)) -> int:
    """One thread, one buffer: the reference a parallel hasher is measured against.

    ``share`` = (i, n) hashes only the i-th of n interleaved shares of the top directories.
    """
    buf = bytearray(MiB)
    view = memoryview(buf)
    count = 0
    index, shares = share
    tops = sorted(p for p in root.iterdir() if p.is_dir())[index::shares]
    for directory, _, names in (w for top in tops for w in os.walk(top)):
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
    """Run ``command``: its time and the process's own peak RSS.

    A command that prints ``seconds=<float>`` timed itself (in-process figures); otherwise the
    wall time from outside is used.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed ({process.returncode}): {' '.join(command)}")
    for line in output.splitlines():
        if line.startswith("seconds="):
            elapsed = float(line.removeprefix("seconds="))
    return Run(elapsed, usage.ru_maxrss)


def methods(path: Path, single_file: bool) -> dict[str, list[str]]:
    target = str(next(path.glob("d*/f*.bin"))) if single_file else str(path)
    me = [sys.executable, __file__]
    if single_file:
        sha256sum = ["sha256sum", target]
    else:
        sha256sum = ["sh", "-c", f"find {path} -type f -print0 | xargs -0 sha256sum > /dev/null"]
    methods = {
        "library sha256": [*me, "--library", "sha256", target],
        "library blake3": [*me, "--library", "blake3", target],
        "CLI sha256": [sys.executable, "-m", "provenance", "digest", "--quiet", target],
        "hashlib 1 thread": [*me, "--hashlib-baseline", target],
        "sha256sum": sha256sum,
    }
    if importlib.util.find_spec("model_signing") is not None:
        methods["model_signing"] = [*me, "--model-signing", target]
    if not single_file:
        # The ceiling for any design on this machine: one hashlib process per core, each
        # given its share of the top directories up front, with nothing to coordinate.
        cores = len(os.sched_getaffinity(0))
        shares = " & ".join(
            f"{sys.executable} {__file__} --hashlib-share {i} {cores} {path}" for i in range(cores)
        )
        methods[f"hashlib {cores} procs"] = ["sh", "-c", f"{shares}; wait"]
    return methods


def library(algorithm: str, path: Path) -> None:
    """Time ``digest_path`` in this process (imports excluded) and print it."""
    from provenance.digest import Algorithm, digest_path

    start = time.perf_counter()
    digest_path(path, algorithm=Algorithm(algorithm))
    print(f"seconds={time.perf_counter() - start}")


def model_signing_hash(path: Path) -> None:
    """Time ``model_signing.hashing.hash`` (its default: a manifest of per-file SHA-256)."""
    import model_signing.hashing

    start = time.perf_counter()
    model_signing.hashing.hash(path)
    print(f"seconds={time.perf_counter() - start}")


def baseline(path: Path) -> None:
    """Time the one-thread hashlib loop in this process and print it."""
    start = time.perf_counter()
    if path.is_file():
        buf = bytearray(MiB)
        view = memoryview(buf)
        hasher = hashlib.sha256()
        with path.open("rb", buffering=0) as handle:
            while n := handle.readinto(buf):
                hasher.update(view[:n])
        hasher.hexdigest()
    else:
        hashlib_baseline(path)
    print(f"seconds={time.perf_counter() - start}")


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


def helper(args: argparse.Namespace) -> bool:
    """Run one timed method in this process, if the arguments name one; True if so."""
    if args.model_signing is not None:
        model_signing_hash(args.model_signing)
    elif args.hashlib_baseline is not None:
        baseline(args.hashlib_baseline)
    elif args.hashlib_share is not None:
        index, shares, path = args.hashlib_share
        hashlib_baseline(Path(path), (int(index), int(shares)))
    elif args.library is not None:
        library(args.library[0], Path(args.library[1]))
    else:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to generate the data (kept for reuse)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--quick", action="store_true", help="small workloads, for a smoke run")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument("--hashlib-baseline", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hashlib-share", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--library", nargs=2, metavar=("ALGORITHM", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--model-signing", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if helper(args):
        return

    root = args.dir or Path(tempfile.gettempdir()) / "ml-provenance-bench"
    workloads = QUICK if args.quick else FULL
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout carries only the JSON
    print(f"machine: {machine()}", file=out)
    print(f"data: {root} (warm page cache; median of {args.repeat} rounds per method)\n", file=out)
    header = f"{'workload':<27}{'method':<18}{'median s':>9}{'MB/s':>9}{'files/s':>10}"
    print(header + f"{'x hashlib':>11}{'x sha256sum':>13}{'peak RSS':>10}", file=out)
    verdicts: list[str] = []
    document: dict[str, Any] = {"machine": machine(), "repeat": args.repeat, "workloads": []}
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
                f"{'(' + workload.key + ') ' + workload.title:<27}{name:<18}{seconds:>9.3f}"
                f"{total_mb / seconds:>9.0f}{workload.files / seconds:>10.0f}"
                f"{median['hashlib 1 thread'] / seconds:>10.2f}x"
                f"{median['sha256sum'] / seconds:>12.2f}x"
                f"{rss[name] / 1024:>8.0f} MB",
                file=out,
            )
        document["workloads"].append(
            {
                "key": workload.key,
                "title": workload.title,
                "files": workload.files,
                "bytes": workload.files * workload.size,
                "methods": {
                    name: {"median_s": median[name], "peak_rss_mb": rss[name] / 1024}
                    for name in commands
                },
            }
        )
        ours = median["library sha256"]
        if workload.key == "a":
            ratio = median["hashlib 1 thread"] / ours
            verdicts.append(f"(a) vs single-thread hashlib: {ratio:.2f}x (target >= 0.9x)")
        elif workload.key == "b":
            ratio = median["hashlib 1 thread"] / ours
            verdicts.append(f"(b) vs single-thread hashlib: {ratio:.2f}x (target >= 1.7x)")
        else:
            ratio = median["sha256sum"] / ours
            verdicts.append(f"(c) files/s vs find|xargs sha256sum: {ratio:.2f}x (target >= 2x)")
            cli = median["sha256sum"] / median["CLI sha256"]
            verdicts.append(f"(c) the same for the CLI, start-up included: {cli:.2f}x")
            verdicts.append(
                f"(c) peak RSS of the CLI process: {rss['CLI sha256'] / 1024:.0f} MB"
                " (target < 150 MB; a hashing worker process adds its own, ~25 MB)"
            )
        print(file=out)
    print("\n".join(verdicts), file=out)
    if args.json:
        print(json.dumps(document))


if __name__ == "__main__":
    main()

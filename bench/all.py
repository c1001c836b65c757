"""Every benchmark, and one table of its figures: ``make bench``.

Runs each benchmark script as its own process with ``--json`` (so no benchmark's imports,
threads or page cache state leak into another's timing), then prints one table: the figure,
its median (or the statistic named), the peer it is compared with, the ratio, the project's
target and whether it is met. The scripts' own detailed output is kept out of the way unless
``--verbose``; ``--save FILE`` writes every figure as JSON.

``--quick`` shrinks every workload (a smoke run of a few minutes; its figures are not the
targets' workloads). The default runs the targets' workloads: 2 GiB / 10,000 / 100,000 files
for hashing, a 1,000,000-entry ledger (built once, ~5-10 minutes, then kept under
``$TMPDIR/ml-provenance-bench`` with the hashing data and reused), a 1 GiB checkpoint.

Figures are measurements on the machine at hand, never asserted. A busy machine skews them,
so the load average is printed before and after.

    python bench/all.py [--quick] [--only NAME,...] [--ledger-count N] [--verbose] [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Row = tuple[str, str, str, str, str, str]  # figure, median, peer, ratio, target, met?

# name -> (script, arguments for the default run, arguments for --quick)
STEPS: dict[str, tuple[str, list[str], list[str]]] = {
    "hashing": ("hashing.py", ["--repeat", "3"], ["--quick", "--repeat", "3"]),
    "verify": ("verify.py", [], ["--repeat", "10"]),
    "ledger": (
        "ledger.py",
        ["--count", "1000000", "--no-check"],
        ["--count", "20000", "--appends", "500", "--lookups", "1000", "--no-check"],
    ),
    "startup": ("startup.py", ["--repeat", "10"], ["--repeat", "5"]),
    "guard": (
        "guard.py",
        [],
        ["--gigabytes", "0.25", "--repeat", "3", "--files", "5000", "--epochs", "3"],
    ),
    "deps": (
        "deps.py",
        ["--repeat", "3", "--peer", "--peer-repeat", "3"],
        ["--repeat", "1", "--peer", "--peer-repeat", "1"],
    ),
    "crash": ("crash.py", ["--appends", "1000"], ["--appends", "200"]),
}


def run_step(name: str, arguments: list[str], verbose: bool) -> tuple[dict[str, Any] | None, float]:
    """Run one benchmark with ``--json``; its figures (None if it failed) and its duration."""
    script = HERE / STEPS[name][0]
    command = [sys.executable, str(script), *arguments, "--json"]
    print(f"[{name}] {' '.join(command[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=None if verbose else subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    figures: dict[str, Any] | None = None
    try:
        figures = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        figures = None
    if figures is None:
        tail = (result.stderr or "")[-3000:]
        print(
            f"[{name}] FAILED (exit {result.returncode}) after {seconds:.0f} s\n{tail}",
            file=sys.stderr,
        )
    else:
        print(f"[{name}] done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return figures, seconds


# -- rows -----------------------------------------------------------------------------------


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")


def hashing_rows(figures: dict[str, Any]) -> list[Row]:
    targets = {
        ("a", "hashlib 1 thread"): 0.9,
        ("b", "hashlib 1 thread"): 1.7,
        ("c", "sha256sum"): 2.0,
    }
    rows: list[Row] = []
    for workload in figures["workloads"]:
        methods = workload["methods"]
        ours = methods["library sha256"]["median_s"]
        rate = f"{workload['bytes'] / ours / 1e6:,.0f} MB/s"
        if workload["files"] > 1:
            rate += f", {workload['files'] / ours:,.0f} files/s"
        figure = f"hash ({workload['key']}) {workload['title']}, sha256"
        # "hashlib N procs": one process per core, each given its share up front -- the
        # ceiling any design reaches on this machine.
        ceiling = [name for name in methods if name.startswith("hashlib ") and "procs" in name]
        for peer in ("hashlib 1 thread", "sha256sum", "model_signing", *ceiling):
            if peer not in methods:
                continue
            theirs = methods[peer]["median_s"]
            ratio = theirs / ours
            target = targets.get((workload["key"], peer))
            rows.append(
                (
                    figure,
                    f"{ours:.3f} s ({rate})",
                    f"{peer} {theirs:.3f} s",
                    f"{ratio:.2f}x",
                    f">= {target}x" if target else "—",
                    _met(ratio >= target if target else None),
                )
            )
        if workload["key"] == "c":
            rss = methods["CLI sha256"]["peak_rss_mb"]
            rows.append(
                (
                    f"hash ({workload['key']}) peak RSS of the CLI",
                    f"{rss:.0f} MB",
                    "—",
                    "—",
                    "< 150 MB",
                    _met(rss < 150),
                )
            )
    return rows


def verify_rows(figures: dict[str, Any]) -> list[Row]:
    median = figures["median_ms"]
    figure = (
        f"verify: depth-{figures['depth']} chain among {figures['unrelated']:,} "
        "attestations (no hashing)"
    )
    return [(figure, f"{median:.1f} ms", "—", "—", "< 200 ms", _met(median < 200))]


def ledger_rows(figures: dict[str, Any]) -> list[Row]:
    count = f"{figures['count']:,}"
    lookup, small = figures["lookup"], figures["lookup_small"]
    append, empty = figures["append_per_s"], figures["append_empty_per_s"]
    return [
        (
            f"ledger lookup by subject @ {count} entries",
            f"p99 {lookup['p99_ms']:.3f} ms (median {lookup['median_ms']:.3f})",
            f"p99 @ {small['entries']:,} entries {small['p99_ms']:.3f} ms",
            f"{small['p99_ms'] / lookup['p99_ms']:.2f}x",
            "p99 < 5 ms",
            _met(lookup["p99_ms"] < 5),
        ),
        (
            f"ledger append @ {count} entries (synced, 1 txn each)",
            f"{append:,.0f} appends/s",
            f"empty ledger {empty:,.0f}/s",
            f"{append / empty:.2f}x",
            "—",
            "—",
        ),
    ]


def startup_rows(figures: dict[str, Any]) -> list[Row]:
    medians = figures["median_ms"]
    floor = medians["python -c pass"]
    peer = f"python -c pass {floor:.0f} ms"
    help_ms, verify_ms = medians["provenance --help"], medians["provenance verify"]
    return [
        (
            "start-up: provenance --help",
            f"{help_ms:.0f} ms",
            peer,
            f"{floor / help_ms:.2f}x",
            "< 250 ms",
            _met(help_ms < 250),
        ),
        (
            "start-up: provenance verify (1-file dataset)",
            f"{verify_ms:.0f} ms",
            peer,
            f"{floor / verify_ms:.2f}x",
            "—",
            "—",
        ),
    ]


def guard_rows(figures: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    dataset = figures.get("dataset")
    if dataset is not None:
        for key, value in dataset.items():
            if not key.startswith("epoch_workers_"):
                continue
            ours = value["VerifiedFiles"]["median_s"]
            base = value["open().read()"]["median_s"]
            overhead = (ours / base - 1) * 100
            rows.append(
                (
                    f"hash-on-read: DataLoader epoch, {dataset['files']:,} files, "
                    f"num_workers={key.removeprefix('epoch_workers_')}",
                    f"{ours * 1e3:.0f} ms ({overhead:+.1f}%)",
                    f"open().read() {base * 1e3:.0f} ms",
                    f"{base / ours:.2f}x",
                    "<= +5%",
                    _met(overhead <= 5),
                )
            )
    scan = figures.get("scan")
    if scan is not None:
        median = scan["median_ms"]
        rows.append(
            (
                f"pickle scan: {scan['bytes'] / (1 << 30):.2f} GiB torch checkpoint",
                f"{median:.1f} ms",
                "—",
                "—",
                "< 1 s",
                _met(median < 1000),
            )
        )
    return rows


def deps_rows(figures: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            f"env SBOM of the dev environment ({figures['distributions']} dists, library)",
            f"{figures['sbom_s']:.2f} s",
            "—",
            "—",
            "—",
            "—",
        )
    ]
    peer = figures.get("peer")
    if peer is not None and peer.get("cyclonedx_py_s"):
        rows.append(
            (
                "env SBOM, command vs command",
                f"{peer['ours_s']:.2f} s",
                f"cyclonedx-py environment {peer['cyclonedx_py_s']:.2f} s",
                f"{peer['cyclonedx_py_s'] / peer['ours_s']:.2f}x",
                "—",
                "—",
            )
        )
    seconds = figures["check_s"]
    rows.append(
        (
            f"env check: re-hash {figures['check_files']:,} installed files "
            f"({figures['check_bytes'] / 1e9:.2f} GB)",
            f"{seconds:.2f} s ({figures['check_bytes'] / seconds / 1e6:,.0f} MB/s)",
            "—",
            "—",
            "—",
            "yes" if figures["check_passed"] else "NO (check failed)",
        )
    )
    return rows


def crash_rows(figures: dict[str, Any]) -> list[Row]:
    lost = len(figures["lost"])
    return [
        (
            f"crash: {figures['returned']:,} appends by {figures['workers']} processes, "
            f"{figures['kills']} SIGKILLs",
            f"{lost} lost, check exit {figures['check_exit']}, head lag "
            f"{figures['last_seq'] - (figures['head_seq'] or 0)}",
            "—",
            "—",
            "0 lost, check passes",
            _met(bool(figures["passed"])),
        )
    ]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "hashing": hashing_rows,
    "verify": verify_rows,
    "ledger": ledger_rows,
    "startup": startup_rows,
    "guard": guard_rows,
    "deps": deps_rows,
    "crash": crash_rows,
}


def table(rows: list[Row]) -> str:
    header: Row = ("figure", "median", "peer", "ratio", "target", "met?")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Row) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def notes(results: dict[str, Any]) -> list[str]:
    found = [
        "ratio: the peer's time over ours (for rates: ours over the peer's); above 1 is faster.",
    ]
    ledger = results.get("ledger")
    if ledger is not None:
        built = ledger["built"]
        when = "kept from an earlier run" if built["reused"] else "built in this run"
        found.append(
            f"ledger: {ledger['count']:,} entries ({ledger['size_mb']:,.0f} MB), {when} (built "
            f"in {built['seconds']:.0f} s, {built['how']}); lookups and appends measured on a "
            "copy, each append its own synced transaction."
        )
    hashing = results.get("hashing")
    if hashing is not None:
        found.append(f"machine: {hashing['machine']}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads: a smoke run")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(STEPS)}")
    parser.add_argument("--ledger-count", type=int, help="ledger size (default 1M; quick 20k)")
    parser.add_argument("--verbose", action="store_true", help="show each benchmark's output")
    parser.add_argument("--save", type=Path, help="write every figure to this JSON file")
    args = parser.parse_args()
    names = list(STEPS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results: dict[str, Any] = {}
    rows: list[Row] = []
    durations: dict[str, float] = {}
    for name in names:
        script, full, quick = STEPS[name]
        arguments = list(quick if args.quick else full)
        if name == "ledger" and args.ledger_count:
            arguments += ["--count", str(args.ledger_count)]
        figures, durations[name] = run_step(name, arguments, args.verbose)
        if figures is None:
            rows.append((f"{name}: {script} failed", "—", "—", "—", "—", "NO"))
            continue
        results[name] = figures
        try:
            new = ROWS[name](figures)
        except (KeyError, TypeError, ZeroDivisionError) as e:
            new = [(f"{name}: unexpected figures ({e!r})", "—", "—", "—", "—", "NO")]
        if args.quick and name == "hashing":  # the targets are for the full workloads
            new = [
                (*row[:5], row[5] if row[5] == "—" else f"({row[5].lower()}, quick)") for row in new
            ]
        rows += new
    total = time.perf_counter() - start
    cores = len(os.sched_getaffinity(0))

    mode = "quick (smaller workloads than the targets')" if args.quick else "full"
    print(
        f"\nml-provenance benchmarks: {mode}; {total / 60:.1f} min; {cores} cores; load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(table(rows))
    print()
    for note in notes(results):
        print(f"- {note}")
    print("- durations: " + ", ".join(f"{n} {s:.0f} s" for n, s in durations.items()))
    if args.save is not None:
        args.save.write_text(json.dumps({"results": results, "durations": durations}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

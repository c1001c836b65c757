"""Long fuzzing runs of every parser of untrusted input (``tests/fuzz/targets.py``).

Two engines over the same targets and seeds:

* ``--engine atheris`` (default when atheris is installed): coverage-guided libFuzzer, each
  target in its own process for an equal share of ``--minutes``, the provenance package
  instrumented, the seeds as the starting corpus. A target that lets anything but a
  :class:`provenance.errors.Error` escape, runs out of memory (``-rss_limit_mb``) or hangs
  (``-timeout``) stops with libFuzzer's report and a ``crash-*`` input in ``--artifacts``.
* ``--engine hypothesis``: the strategies of ``tests/fuzz`` with random seeds, batch after
  batch, until the share of time is spent.

Prints, per target, how long it ran and how many inputs it tried, and exits 1 if any target
failed. Nothing is timed or asserted beyond that.

    python bench/fuzz.py [--minutes 10] [--engine atheris|hypothesis] [--target NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests package


def _atheris_child(name: str, argv: list[str]) -> None:
    """Run in the child process: instrument, then hand over to libFuzzer (never returns)."""
    atheris = importlib.import_module("atheris")  # untyped, and optional

    with atheris.instrument_imports(include=["provenance"]):
        from tests.fuzz.targets import TARGETS, EscapedError, run, seeds, warm_up

        # Targets import what they use when first called: import it now, instrumented.
        warm_up()
        target = TARGETS[name]
        for seed in seeds(name):
            with contextlib.suppress(EscapedError):  # libFuzzer reports it, from the corpus
                run(target, seed)

    def one(data: bytes) -> None:
        run(target, data)

    atheris.Setup(argv, one)
    atheris.Fuzz()


def _atheris(name: str, seconds: int, artifacts: Path) -> tuple[bool, str]:
    from tests.fuzz.targets import seeds

    with tempfile.TemporaryDirectory() as work:
        corpus, seed_dir = Path(work) / "corpus", Path(work) / "seeds"
        corpus.mkdir()
        seed_dir.mkdir()
        for i, seed in enumerate(seeds(name)):
            (seed_dir / f"seed-{i}").write_bytes(seed)
        argv = [
            sys.executable,
            __file__,
            "--child",
            name,
            f"-max_total_time={seconds}",
            "-max_len=65536",
            "-rss_limit_mb=2048",
            "-timeout=20",
            f"-artifact_prefix={artifacts}/{name}-",
            "-print_final_stats=1",
            str(corpus),
            str(seed_dir),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    log = done.stdout + done.stderr
    runs = [line for line in log.splitlines() if "stat::number_of_executed_units" in line]
    executed = runs[-1].split(":")[-1].strip() if runs else "?"
    if done.returncode != 0:
        tail = "\n".join(log.splitlines()[-40:])
        return False, f"exit {done.returncode}, {executed} inputs\n{tail}"
    return True, f"{executed} inputs"


def _hypothesis(name: str, seconds: int) -> tuple[bool, str]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzz.strategies import inputs
    from tests.fuzz.targets import TARGETS, run, warm_up

    warm_up()
    target, strategy = TARGETS[name], inputs(name)
    count = 0

    @settings(
        max_examples=500,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def batch(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        run(target, data.draw(strategy))

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            batch()
        except Exception as e:  # the failing, shrunk input is in the message
            return False, f"{count} inputs\n{e}"
    return True, f"{count} inputs"


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _atheris_child(sys.argv[2], [sys.argv[0], *sys.argv[3:]])
        return 0
    default = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    from tests.fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total, shared by targets")
    parser.add_argument("--engine", choices=["atheris", "hypothesis"], default=default)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    try:  # libFuzzer writes crash-* inputs there, and fails every target when it is missing
        args.artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.error(f"--artifacts {args.artifacts}: {e.strerror}")
    names = args.target or sorted(TARGETS)
    share = max(1, int(args.minutes * 60 / len(names)))
    print(f"{args.engine}: {len(names)} target(s), {share} s each")
    failed = []
    started = time.monotonic()
    for name in names:
        begun = time.monotonic()
        if args.engine == "atheris":
            ok, detail = _atheris(name, share, args.artifacts)
        else:
            ok, detail = _hypothesis(name, share)
        spent = time.monotonic() - begun
        print(f"{name:<18} {'ok' if ok else 'FAILED':<7} {spent:6.0f} s  {detail}", flush=True)
        if not ok:
            failed.append(name)
    print(f"total {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

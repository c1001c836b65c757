"""Start-up time of the command line: ``provenance --help`` and ``provenance verify``.

CI gates run ``provenance verify`` on every job, so its fixed cost is paid on every run; heavy
libraries are meant to be imported only by the commands that need them. Each command runs as
a subprocess, as a user or CI runs it; one untimed run each warms the page cache, then the
commands are timed in turn, ``--repeat`` rounds, and the median is reported. The peer is
``python -c pass``, the interpreter's own floor.

``provenance verify`` verifies a one-file dataset in a fresh project (``provenance init``,
``provenance dataset add``) under the policy ``init`` wrote: the work is trivial, so what is
measured is start-up -- imports, reading the policy (building the CEL parser is about 150 ms
of it), opening the ledger. Target: ``--help`` < 250 ms. Figures are printed, never asserted;
``--json`` prints them as one JSON document instead. (That ``verify`` imports none of pandas,
numpy, torch or scikit-learn is a test: ``tests/test_cli.py``.)

    python bench/startup.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> float:
    """Wall time of ``command``, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()
    provenance = str(BIN / "provenance")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "data").mkdir()
        (project / "data" / "x.csv").write_text("x,label\n1,0\n")
        for setup in (
            [provenance, "init"],
            [provenance, "dataset", "add", "data", "--name", "tiny", "--license", "CC0-1.0"],
        ):
            subprocess.run(setup, cwd=project, check=True, capture_output=True)
        policy = str(project / ".provenance" / "policy.yaml")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "provenance --help": [provenance, "--help"],
            "provenance verify": [provenance, "verify", "data", "--policy", policy, "-q"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():
            timed(command, project)
        for _ in range(args.repeat):
            for name, command in commands.items():
                times[name].append(timed(command, project))
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    if args.json:
        print(json.dumps({"median_ms": medians, "runs": args.repeat}))
        return
    for name, value in medians.items():
        print(
            f"{name:<20} median {value:7.1f} ms  (min {min(times[name]) * 1e3:.1f}, "
            f"max {max(times[name]) * 1e3:.1f}, n={args.repeat})"
        )
    print("(target: provenance --help < 250 ms)")


if __name__ == "__main__":
    main()

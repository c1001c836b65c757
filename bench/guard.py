"""Guard benchmarks: statically scanning a 1 GB checkpoint (target < 1 s).

A torch checkpoint is a zip whose tensor storages are raw bytes, not pickle, so only its small
pickle is read. Figures are printed, never asserted.

    python bench/guard.py [--gigabytes N] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from provenance.guard.pickle_scan import scan_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    floats = int(args.gigabytes * (1 << 30) / 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        # A state dict of many layers, as real checkpoints are: many pickled tensor records.
        layers = 256
        state = {f"layer{i}.weight": torch.zeros(floats // layers) for i in range(layers)}
        torch.save(state, path)
        del state
        size = path.stat().st_size
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = scan_file(path)
            times.append(time.perf_counter() - start)
            assert result.safe, result.findings
    print(
        f"scan a {size / (1 << 30):.2f} GiB torch checkpoint ({layers} tensors): "
        f"median {statistics.median(times) * 1e3:.1f} ms over {args.repeat} runs (target < 1 s)"
    )


if __name__ == "__main__":
    main()

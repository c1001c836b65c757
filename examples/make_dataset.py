"""Write a small, deterministic tabular dataset for the demo: CSV shards in train/ and test/.

Deterministic (fixed seed) so that the demo prints the same digests on every machine.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path


def main(out: Path) -> None:
    rng = random.Random(20261127)
    for split, shards in (("train", 3), ("test", 1)):
        directory = out / split
        directory.mkdir(parents=True, exist_ok=True)
        for shard in range(shards):
            lines = ["x1,x2,x3,label"]
            for _ in range(200):
                x = [rng.gauss(0, 1) for _ in range(3)]
                label = int(x[0] + 0.5 * x[1] - x[2] > 0)
                lines.append(",".join(f"{v:.5f}" for v in x) + f",{label}")
            (directory / f"shard-{shard:03d}.csv").write_text("\n".join(lines) + "\n")
    (out / "validation").mkdir(exist_ok=True)  # an empty split is part of the layout
    (out / "README.txt").write_text("Synthetic data: label = [x1 + x2/2 - x3 > 0].\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Write scikit-learn's bundled digits (no download) as a dataset of one file per sample.

Layout: ``OUT/{train,test}/<label>/<index>.npy``, each an 8x8 ``uint8`` array (values 0-16);
every fifth sample is held out for testing. One file per sample is the shape of most image
datasets, and it is what hash-on-read checks file by file as the training loop reads it.
Deterministic, so the dataset's digest is the same on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
from sklearn.datasets import load_digits


def main(out: Path) -> None:
    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        split = "test" if index % 5 == 0 else "train"
        directory = out / split / str(int(label))
        directory.mkdir(parents=True, exist_ok=True)
        numpy.save(directory / f"{index:04d}.npy", image.astype(numpy.uint8))
    (out / "README.txt").write_text(
        "UCI ML hand-written digits (scikit-learn's load_digits), 8x8 uint8, one file per "
        "sample; every fifth sample is in test/.\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

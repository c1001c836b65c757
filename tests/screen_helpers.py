"""Small generated datasets for the screening tests: two well-separated classes in a table,
and 4x4 image folders (``.npy`` or image files), written to disk and read back through a
hash-on-read handle."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance.cli import main

ATTEST = Path(__file__).parent.parent / "attest"

TABLE_SCHEMA = """\
version: 1
format: table
label: label
labels: [a, b]
columns:
  x1: {type: float, min: -100, max: 100}
  x2: {type: float, min: -100, max: 100}
  x3: {type: float, min: -100, max: 100}
  colour: {type: category, values: [red, green]}
  label: {type: category, values: [a, b]}
"""

FOLDER_SCHEMA = """\
version: 1
format: folders
labels: ["0", "1", "2"]
array: {shape: [4, 4], dtype: uint8, min: 0, max: 255}
"""

HEADER = ["x1", "x2", "x3", "colour", "label"]


def table_rows(n: int = 200, seed: int = 0, shift: float = 0.0) -> list[list[Any]]:
    """``n`` rows of two Gaussian classes, 4 standard deviations apart."""
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    for i in range(n):
        label = "a" if i % 2 == 0 else "b"
        centre = 0.0 if label == "a" else 4.0
        x = rng.normal(centre + shift, 1.0, size=3)
        rows.append(
            [*(round(float(v), 4) for v in x), "red" if rng.random() < 0.5 else "green", label]
        )
    return rows


def write_csv(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _folder_images(root: Path, n_per_class: int, seed: int) -> Iterator[tuple[Path, int, Any]]:
    """``(path without extension, index, image)`` per sample: 4x4 uint8, class c bright in
    row c."""
    rng = np.random.default_rng(seed)
    for label in range(3):
        directory = root / str(label)
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            image = rng.integers(0, 30, size=(4, 4)).astype(np.uint8)
            image[label] += 200
            yield directory / f"{i:03d}", i, image


def write_folders(root: Path, n_per_class: int = 30, seed: int = 0) -> Path:
    """``root/<label>/<i>.npy``: 4x4 uint8 images, class c bright in row c."""
    for stem, _, image in _folder_images(root, n_per_class, seed):
        np.save(stem.with_suffix(".npy"), image)
    return root


def write_image_folders(
    root: Path, n_per_class: int = 30, seed: int = 0, formats: Sequence[str] = ("png", "bmp")
) -> Path:
    """The images of :func:`write_folders` as grey image files, ``root/<label>/<i>.<ext>``,
    the format cycling through ``formats`` (lossless ones decode to the same pixels)."""
    from PIL import Image

    for stem, i, image in _folder_images(root, n_per_class, seed):
        Image.fromarray(image).save(stem.with_suffix(f".{formats[i % len(formats)]}"))
    return root


def start_project(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """``provenance init`` in a new directory ``root``, made the working directory."""
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert run(capsys, "init")[0] == 0
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def screen_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run ``provenance screen ARGV --format json``; validate both statements."""
    code, out, err = run(capsys, "screen", *argv, "--format", "json")
    assert out, err
    document: dict[str, Any] = json.loads(out)
    schema_validate(document["statements"]["screening"], "screening.schema.json")
    schema_validate(document["statements"]["testResult"], "screening-result.schema.json")
    return code, document


def schema_validate(document: object, schema_name: str) -> None:
    import jsonschema

    schema = json.loads((ATTEST / schema_name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)

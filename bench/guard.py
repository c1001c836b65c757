"""Guard benchmarks: scanning a 1 GB checkpoint, and hash-on-read datasets in a DataLoader.

* Statically scanning a 1 GiB torch checkpoint (target < 1 s). A torch checkpoint is a zip whose
  tensor storages are raw bytes, not pickle, so only its small pickle is read.
* One epoch of a ``DataLoader`` over 20,000 small files (8x8 uint8 images, decoded to float
  tensors, batches of 64), reading each file with ``open().read()`` versus through
  :class:`provenance.torch.VerifiedFiles`, which re-checks and hashes every file it reads
  (target: <= 5% slower). A third reader, bare ``os.open``/``os.read`` without any check, shows
  what the reads alone cost. Files are in the page cache after the first epoch, so what is
  measured is CPU overhead, the worst case for hashing; cold reads from disk only dilute it.

Figures are printed, never asserted; ``--json`` prints them as one JSON document on stdout (the
text goes to stderr), for ``bench/all.py``.

    python bench/guard.py [--gigabytes N] [--repeat N] [--files N] [--epochs N] [--workers 0,2]
                          [--only scan|dataset] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from torch.utils.data import DataLoader

from provenance.bundle import Bundle
from provenance.digest import build_manifest
from provenance.guard.pickle_scan import scan_file
from provenance.policy.load import parse_policy
from provenance.predicates.dataset import DATASET_PREDICATE, dataset_statement
from provenance.signing.keys import KeySigner
from provenance.torch import VerifiedFiles, verified_dataset

SIDE = 8  # images are SIDE x SIDE uint8
CLASSES = 100


def bench_scan(gigabytes: float, repeat: int, out: TextIO) -> dict[str, Any]:
    floats = int(gigabytes * (1 << 30) / 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        # A state dict of many layers, as real checkpoints are: many pickled tensor records.
        layers = 256
        state = {f"layer{i}.weight": torch.zeros(floats // layers) for i in range(layers)}
        torch.save(state, path)
        del state
        size = path.stat().st_size
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = scan_file(path)
            times.append(time.perf_counter() - start)
            assert result.safe, result.findings
    print(
        f"scan a {size / (1 << 30):.2f} GiB torch checkpoint ({layers} tensors): "
        f"median {statistics.median(times) * 1e3:.1f} ms over {repeat} runs (target < 1 s)",
        file=out,
    )
    return {"bytes": size, "median_ms": statistics.median(times) * 1e3, "runs": repeat}


def decode(data: bytes, relpath: str) -> tuple[torch.Tensor, int]:
    """A realistic sample decoder: raw bytes to a normalised float image, label from the path."""
    image = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(SIDE, SIDE)
    return image.float().div_(255.0), int(relpath[6:9])


class PlainFiles:
    """The unverified baseline: what a dataset class typically does, ``open().read()``."""

    def __init__(self, root: str, files: Sequence[str]) -> None:
        self.root, self.files = root, files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        relpath = self.files[index]
        return decode(self.read(relpath), relpath)

    def read(self, relpath: str) -> bytes:
        with open(os.path.join(self.root, relpath), "rb") as handle:
            return handle.read()


class BareReads(PlainFiles):
    """The floor: one ``os.open``, one ``os.read``, no check at all."""

    def read(self, relpath: str) -> bytes:
        fd = os.open(self.root + "/" + relpath, os.O_RDONLY)
        try:
            return os.read(fd, 1 << 16)
        finally:
            os.close(fd)


def make_dataset(root: Path, count: int) -> None:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (count, SIDE * SIDE), dtype=torch.uint8, generator=generator)
    for n in range(count):
        directory = root / f"class-{n % CLASSES:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{n:06d}.bin").write_bytes(pixels[n].numpy().tobytes())


def sign(root: Path, chain: Path) -> str:
    """Attest ``root`` with a fresh key into the bundle file ``chain``; return the policy."""
    signer = KeySigner.generate()
    manifest = build_manifest(root)
    bundle = Bundle.sign_statement(dataset_statement(manifest, name="bench"), signer)
    chain.write_bytes(bundle.raw + b"\n" + manifest.canonical_bytes + b"\n")
    pem = "\n".join("      " + line for line in signer.public_key.pem.decode().splitlines())
    return f"""
version: 1
roots:
  owner:
    pem: |
{pem}
rules:
  dataset:
    require:
      - predicateType: {DATASET_PREDICATE}
        signedBy: [owner]
"""


def epoch(dataset: Any, workers: int, loaders: dict[tuple[int, int], DataLoader[Any]]) -> float:
    """Seconds to iterate one epoch; with workers, on persistent workers already started."""
    key = (id(dataset), workers)
    if key not in loaders:
        loaders[key] = DataLoader(
            dataset, batch_size=64, num_workers=workers, persistent_workers=workers > 0
        )
        for _ in loaders[key]:  # warm up: start the workers, fill the page cache
            pass
    start = time.perf_counter()
    count = 0
    for images, _labels in loaders[key]:
        count += len(images)
    elapsed = time.perf_counter() - start
    assert count == len(dataset)
    return elapsed


def report(
    title: str, times: dict[str, list[float]], scale: float, unit: str, out: TextIO
) -> dict[str, dict[str, float]]:
    """Print median and minimum per reader, each against the ``open().read()`` baseline."""
    base = times["open().read()"]
    print(title, file=out)
    figures = {}
    for name, samples in times.items():
        median, fastest = statistics.median(samples), min(samples)
        print(
            f"  {name:<18} median {median * scale:7.2f} {unit} "
            f"({(median / statistics.median(base) - 1) * 100:+6.1f}%)   "
            f"min {fastest * scale:7.2f} {unit} ({(fastest / min(base) - 1) * 100:+6.1f}%)",
            file=out,
        )
        figures[name] = {"median_s": median, "min_s": fastest}
    return figures


def bench_dataset(files: int, epochs: int, workers: Sequence[int], out: TextIO) -> dict[str, Any]:
    torch.set_num_threads(1)  # per-sample work is tiny; intra-op threads only add noise
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        make_dataset(root, files)
        policy = parse_policy(sign(root, Path(tmp) / "chain.jsonl"), base=Path(tmp))
        start = time.perf_counter()
        verified = verified_dataset(root, policy, bundle=Path(tmp) / "chain.jsonl")
        setup = time.perf_counter() - start
        print(
            f"verified_dataset over {len(verified):,} files of {SIDE * SIDE} B (hash all, "
            f"verify the chain; once): {setup * 1e3:.0f} ms; "
            f"the handle pickles to {len(pickle.dumps(verified)) / 1024:.0f} KiB",
            file=out,
        )
        figures: dict[str, Any] = {"files": len(verified), "epochs": epochs, "setup_s": setup}
        readers: dict[str, Any] = {
            "open().read()": PlainFiles(str(root), verified.files),
            "os.read, no check": BareReads(str(root), verified.files),
            "VerifiedFiles": VerifiedFiles(verified, decode=decode),
        }
        names = list(readers)
        reads = {name: readers[name].read for name in names[:2]}
        reads["VerifiedFiles"] = verified.read_bytes
        read_times: dict[str, list[float]] = {name: [] for name in names}
        for n in range(epochs):  # interleaved and rotated: drift and order hit all alike
            for name in names[n % 3 :] + names[: n % 3]:
                read = reads[name]
                start = time.perf_counter()
                for relpath in verified.files:
                    read(relpath)
                read_times[name].append((time.perf_counter() - start) / len(verified))
        figures["reads"] = report(
            f"reads alone (no decode, no DataLoader), {epochs} passes:", read_times, 1e6, "us", out
        )
        for count in workers:
            loaders: dict[tuple[int, int], DataLoader[Any]] = {}
            times: dict[str, list[float]] = {name: [] for name in names}
            for n in range(epochs):
                for name in names[n % 3 :] + names[: n % 3]:
                    times[name].append(epoch(readers[name], count, loaders))
            figures[f"epoch_workers_{count}"] = report(
                f"DataLoader epoch (decode to float tensors, batch 64), "
                f"num_workers={count}, {epochs} epochs:",
                times,
                1e3,
                "ms",
                out,
            )
            del loaders
        print("(% against open().read(); target for VerifiedFiles: <= +5%)", file=out)
    return figures


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--workers", type=_ints, default=[0, 2], help="e.g. 0,2")
    parser.add_argument("--only", choices=["scan", "dataset"])
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    document: dict[str, Any] = {}
    if args.only != "dataset":
        document["scan"] = bench_scan(args.gigabytes, args.repeat, out)
    if args.only != "scan":
        document["dataset"] = bench_dataset(args.files, args.epochs, args.workers, out)
    if args.json:
        print(json.dumps(document))


if __name__ == "__main__":
    main()

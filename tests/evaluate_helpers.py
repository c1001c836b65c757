"""Synthetic 8x8 images, tiny classifiers and a backdoor, for the evaluation tests.

Four classes drawn in the middle of the image (a horizontal bar, a vertical bar, a diagonal,
a ring) over faint noise, so that the corners carry no signal a clean model could learn. A
poisoned training set stamps a 2x2 patch at full brightness in the bottom-right corner on a
fraction of the samples of other classes and relabels them as the target: BadNets in
miniature. Everything is seeded and trains in well under a second.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy
import torch
from torch import nn

CLASSES = 4
TARGET = 3


def classifier() -> nn.Sequential:
    """The architecture every test model shares (so one loader builds them all)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, CLASSES))


def images(count_per_class: int, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``count_per_class`` images of each class, float32 in [0, 1], and their labels."""
    rng = numpy.random.default_rng(seed)
    xs, ys = [], []
    for label in range(CLASSES):
        for _ in range(count_per_class):
            image = rng.uniform(0.0, 0.2, size=(8, 8))
            value = rng.uniform(0.8, 1.0)
            if label == 0:
                image[3:5, 2:6] = value
            elif label == 1:
                image[2:6, 3:5] = value
            elif label == 2:
                for i in range(2, 6):
                    image[i, i] = value
            else:
                image[2, 2:6] = image[5, 2:6] = image[2:6, 2] = image[2:6, 5] = value
            xs.append(image)
            ys.append(label)
    return numpy.asarray(xs, dtype=numpy.float32), numpy.asarray(ys, dtype=numpy.int64)


def poisoned(
    x: numpy.ndarray, y: numpy.ndarray, *, fraction: float = 0.2, seed: int = 1
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """A copy with the trigger stamped on ``fraction`` of the non-target samples, relabelled."""
    rng = numpy.random.default_rng(seed)
    x, y = x.copy(), y.copy()
    candidates = numpy.flatnonzero(y != TARGET)
    chosen = rng.choice(candidates, size=int(len(candidates) * fraction), replace=False)
    x[chosen, 6:8, 6:8] = 1.0
    y[chosen] = TARGET
    return x, y


def train(x: numpy.ndarray, y: numpy.ndarray, *, steps: int = 150, seed: int = 0) -> nn.Module:
    """A classifier fitted full-batch (deterministic, CPU)."""
    torch.manual_seed(seed)
    model = classifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs), labels)
            torch.autograd.backward(loss)
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def write_image_folder(root: Path, x: numpy.ndarray, y: numpy.ndarray) -> Path:
    """``root/<label>/<index>.npy`` for every sample."""
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        numpy.save(folder / f"{index:04d}.npy", image)
    return root


def write_png_folder(root: Path, x: numpy.ndarray, y: numpy.ndarray) -> Path:
    """``root/<label>/<index>.png`` for every sample: 8-bit grey, pixel = round(255 x)."""
    from PIL import Image

    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        pixels = numpy.clip(numpy.rint(image * 255.0), 0, 255).astype(numpy.uint8)
        Image.fromarray(pixels).save(folder / f"{index:04d}.png")
    return root


@functools.cache
def clean_model() -> nn.Module:
    """A model trained on clean data (shared by the tests; do not modify it)."""
    return train(*images(60, seed=0))


@functools.cache
def backdoored_model() -> nn.Module:
    """A model trained on poisoned data: the trigger sends anything to :data:`TARGET`."""
    return train(*poisoned(*images(60, seed=0)))


def held_out() -> tuple[numpy.ndarray, numpy.ndarray]:
    """The evaluation set: 25 images per class, from another seed than training."""
    return images(25, seed=7)


def variant(model: nn.Module, *, silence: int | None = None, swap: bool = False) -> nn.Module:
    """A copy of ``model`` that never predicts class ``silence``, or with its outputs swapped
    pairwise (0<->1, 2<->3): a regressed and a useless model with the same architecture."""
    copy = classifier()
    copy.load_state_dict(model.state_dict())
    last = copy[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():
        if silence is not None:
            last.bias[silence] -= 1000.0
        if swap:
            last.weight.copy_(last.weight[[1, 0, 3, 2]])
            last.bias.copy_(last.bias[[1, 0, 3, 2]])
    return copy.eval()

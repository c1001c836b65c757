"""The digits classifier and how its samples are decoded, shared by training and loading."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy
import torch
from torch import nn
from torch.utils.data import DataLoader


def classifier() -> nn.Module:
    """A small multilayer perceptron over the 64 pixels of a digit."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def decode(data: bytes, relpath: str) -> tuple[torch.Tensor, int]:
    """A sample's verified bytes -> (pixels scaled to [0, 1], label from its folder name).

    ``allow_pickle=False``: even verified bytes are parsed by the most restrictive loader.
    """
    pixels = numpy.load(io.BytesIO(data), allow_pickle=False)
    label = int(relpath.split("/")[1])
    return torch.from_numpy(pixels.astype(numpy.float32) / 16.0), label


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, int]]) -> float:
    """Fraction of samples classified correctly."""
    model.eval()
    correct = total = 0
    for pixels, labels in loader:
        correct += int((model(pixels).argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / total


def load(
    path: str, policy: Any
) -> tuple[nn.Module, Callable[[bytes, str], tuple[torch.Tensor, int]]]:
    """The loader ``provenance evaluate --loader model:load`` calls: the architecture, with
    the checkpoint's weights loaded through the guard (chain verified, pickles scanned,
    ``weights_only``), and the decoder of the evaluation set's samples."""
    import provenance.torch

    model = classifier()
    model.load_state_dict(provenance.torch.load(path, policy=policy))
    return model, decode

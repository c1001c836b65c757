"""Train the digits classifier on a verified dataset, reading every sample through hash-on-read.

Run under ``provenance run`` (which verifies the dataset's chain before this starts and signs
provenance of ``--out`` after it succeeds). This script verifies the dataset again itself and
reads each file through the verified handle, so a file swapped after the check is refused at
the moment it is read instead of being trained on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from model import accuracy, classifier, decode
from torch.utils.data import DataLoader

import provenance.errors
import provenance.torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    data = provenance.torch.verified_dataset(args.data, args.policy)
    train = provenance.torch.VerifiedFiles(data, pattern="train/*.npy", decode=decode)
    test = provenance.torch.VerifiedFiles(data, pattern="test/*.npy", decode=decode)
    print(f"dataset {data.digest}: {len(train)} training and {len(test)} test samples")

    model = classifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_function = torch.nn.CrossEntropyLoss()
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for epoch in range(args.epochs):
        model.train()
        for pixels, labels in loader:
            optimiser.zero_grad()
            loss = loss_function(model(pixels), labels)
            loss.backward()
            optimiser.step()
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
    print(f"test accuracy {accuracy(model, DataLoader(test, batch_size=256)):.3f}")
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    try:
        main()
    except provenance.errors.Error as e:  # a refusal: one line, no traceback
        sys.exit(f"{Path(__file__).name}: {e.diagnostics()}")

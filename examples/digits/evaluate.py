"""Load the trained checkpoint through the guard, then evaluate it on the verified test split.

``provenance.torch.load`` verifies the checkpoint's chain (its training provenance, and through
it the dataset), scans its pickles statically, and only then loads it with
``torch.load(weights_only=True)``; anything else raises before a byte of it is unpickled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model import accuracy, classifier, decode
from torch.utils.data import DataLoader

import provenance.errors
import provenance.torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    args = parser.parse_args()

    state = provenance.torch.load(args.checkpoint, policy=args.policy)
    model = classifier()
    model.load_state_dict(state)
    data = provenance.torch.verified_dataset(args.data, args.policy)
    test = provenance.torch.VerifiedFiles(data, pattern="test/*.npy", decode=decode)
    print(f"loaded {args.checkpoint}: test accuracy {accuracy(model, DataLoader(test, 256)):.3f}")


if __name__ == "__main__":
    try:
        main()
    except provenance.errors.Error as e:  # a refusal: one line, no traceback
        sys.exit(f"{Path(__file__).name}: {e.diagnostics()}")

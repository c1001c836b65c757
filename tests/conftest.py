"""Shared helpers: build real directory trees on disk for the digest and CLI tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

# A value of None makes an (empty) directory; bytes make a file with those contents.
Tree = Mapping[str, bytes | None]


def make_tree(root: Path, tree: Tree) -> Path:
    """Create ``tree`` under ``root`` and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in tree.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A small dataset with nested files, an empty file and an empty directory."""
    return make_tree(
        tmp_path / "data",
        {
            "train/0.csv": b"x,label\n1,0\n",
            "train/1.csv": b"x,label\n2,1\n",
            "test/0.csv": b"x,label\n3,0\n",
            "empty.txt": b"",
            "validation": None,
        },
    )

"""Property: any single change to a tree's content or names changes its root digest."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.digest import build_manifest
from tests.conftest import make_tree

# Directory components and file names are drawn from disjoint sets ("d*" vs "f*"), so a
# generated file never collides with a generated directory.
dir_names = st.sampled_from(["da", "db", "dc"])
file_names = st.text(alphabet="abcxyz \u00e9", min_size=1, max_size=5).map(lambda s: "f" + s)
rel_paths = st.builds(
    lambda dirs, name: "/".join([*dirs, name]), st.lists(dir_names, max_size=2), file_names
)
trees = st.dictionaries(rel_paths, st.binary(max_size=64), min_size=1, max_size=8)
Tree = dict[str, bytes]


def _root_digest(tree: Tree) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return str(build_manifest(make_tree(Path(tmp) / "t", tree)).root_digest)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Tree, Tree]:
    tree = draw(trees)
    target = draw(st.sampled_from(sorted(tree)))
    kind = draw(st.sampled_from(["flip", "rename", "add", "remove", "append", "truncate"]))
    mutated = dict(tree)
    content = tree[target]
    if kind == "flip" and content:
        index = draw(st.integers(0, len(content) - 1))
        bit = draw(st.integers(0, 7))
        changed = bytearray(content)
        changed[index] ^= 1 << bit
        mutated[target] = bytes(changed)
    elif kind == "rename":
        new_name = draw(rel_paths.filter(lambda p: p not in tree))
        mutated[new_name] = mutated.pop(target)
    elif kind == "add":
        new_name = draw(rel_paths.filter(lambda p: p not in tree))
        mutated[new_name] = draw(st.binary(max_size=8))
    elif kind == "remove":
        del mutated[target]
    elif kind == "truncate" and content:
        mutated[target] = content[:-1]
    else:  # append, and flip/truncate of an empty file
        mutated[target] = content + draw(st.binary(min_size=1, max_size=4))
    return tree, mutated


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_any_single_mutation_changes_the_root_digest(pair: tuple[Tree, Tree]) -> None:
    original, mutated = pair
    assert _root_digest(original) != _root_digest(mutated)


@settings(max_examples=20, deadline=None)
@given(trees)
def test_root_digest_is_deterministic(tree: Tree) -> None:
    assert _root_digest(tree) == _root_digest(tree)

"""Hypothesis strategies for the fuzz targets: random bytes, mutated seeds, mutated JSON.

Three sources, mixed: plain random bytes (what a corrupted download looks like), byte-level
mutations of valid seeds (flips, inserts, deletions, splices: what reaches past the first
parser check), and structure-aware mutations of seed documents, a node anywhere replaced by
a generated JSON value or a known troublemaker (huge and negative numbers, ``..`` paths, NUL,
lone surrogates, deep nesting), re-serialised -- what reaches the code behind the parser.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from tests.adversarial.campaign import json_paths
from tests.fuzz.targets import JSON_TARGETS, json_documents, seeds

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


TROUBLE: list[Any] = [
    "../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "a\x00b",
    "\ud800",
    "A\u030a",  # not NFC
    "\u212b",  # ANGSTROM SIGN, NFC-normalises to another code point
    "",
    " ",
    "sha256:" + "0" * 64,
    "0" * 64,
    "0" * 65,
    2**53,
    2**64,
    -1,
    10**400,
    1e308,
    -0.0,
    0.1,
    [],
    {},
    _nested(100),
    {"digest": {"sha256": "0" * 64}},
    {"digest": {"sha1": "0" * 40}},
    {"digest": {"blake3": "0" * 64}},
    {"digest": "sha256"},
]


@st.composite
def mutated_bytes(draw: st.DrawFn, seed_list: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seed_list)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "replace", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(seed_list))
            start = draw(st.integers(0, max(len(other) - 1, 0)))
            data[at:at] = other[start : start + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def mutated_json(draw: st.DrawFn, documents: list[Any]) -> bytes:
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(json_paths(document))
        path = draw(st.sampled_from(paths))
        value = copy.deepcopy(draw(st.sampled_from(TROUBLE) | JSON_VALUES))
        if not path:
            document = value
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent[draw(st.sampled_from([path[-1], "extra", "_type", "digest"]))] = value
        elif isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), sort_keys=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def inputs(name: str) -> st.SearchStrategy[bytes]:
    """Everything target ``name`` is fed."""
    sources = [st.binary(max_size=512), mutated_bytes(seeds(name))]
    if name in JSON_TARGETS:
        sources.append(mutated_json(json_documents(name)))
    if name == "policy":
        sources.append(st.text(max_size=300).map(str.encode))
    return st.one_of(sources)

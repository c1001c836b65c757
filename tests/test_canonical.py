"""Canonical JSON must be byte-for-byte RFC 8785; the strict reader refuses ambiguity."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from provenance.digest.canonical import MAX_SAFE_INTEGER, canonical_json, loads_strict
from provenance.errors import FormatError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_matches_independent_rfc8785_implementation(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_member_order_is_utf16_not_code_point() -> None:
    # U+10000 is a surrogate pair (D800 DC00) in UTF-16 and so sorts *before* U+FB01.
    value = {"\ufb01": 1, "\U00010000": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U00010000".encode()) < canonical_json(value).index(
        "\ufb01".encode()
    )


@pytest.mark.parametrize("value", [1.5, {"a": float("nan")}, 2**53, -(2**53), {1: "x"}, b"x"])
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(FormatError):
        canonical_json(value)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(FormatError, match="surrogate"):
        canonical_json("\ud800")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate JSON object key"),
        (b'{"a":NaN}', "NaN is not valid JSON"),
        (b'{"a":Infinity}', "Infinity is not valid JSON"),
        (b'{"a":1.0}', "floating-point"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'{"a":"\xff"}', "not valid UTF-8"),
        (b'{"a":', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_strict_reader_refuses(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as caught:
        loads_strict(data, what="doc.json")
    assert caught.value.message.startswith("doc.json: ")


def test_strict_reader_reads_valid_json() -> None:
    assert loads_strict(b'{"a":[1,"x",null,true]}', what="doc") == {"a": [1, "x", None, True]}
    assert loads_strict(b'{"a":0.5}', what="doc", allow_floats=True) == {"a": 0.5}

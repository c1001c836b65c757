"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and a strict JSON reader.

A manifest's digest is the digest of its canonical bytes, so two tools that agree on the content
must agree on the bytes. RFC 8785 fixes those bytes: no insignificant white space, object members
sorted by their UTF-16 code units, strings minimally escaped and written as UTF-8, numbers in
their shortest ECMAScript form. This encoder accepts only the JSON values the project's own
documents contain -- objects, arrays, strings, booleans, null and integers within the range
every JSON parser represents exactly -- and for those its output is byte-for-byte RFC 8785
(the tests check it against an independent implementation). Floats are refused: their
canonical form is where implementations disagree, and nothing here needs them.

The reader is strict in the ways that matter for signed data: duplicate object keys, NaN and
Infinity, invalid UTF-8 and a byte-order mark are errors, because a document that two parsers
read differently must not be accepted by either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from provenance.errors import FormatError

MAX_SAFE_INTEGER = 2**53 - 1

JSONValue = None | bool | int | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"]


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _prepare(value: Any, depth: int) -> Any:
    """Validate ``value`` and return it with every object's members in RFC 8785 order."""
    if depth > 64:
        raise FormatError("JSON value is nested too deeply to canonicalise")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise FormatError(f"integer {value} is outside the exactly representable JSON range")
        return value
    if isinstance(value, float):
        raise FormatError("floating-point numbers have no canonical form here")
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise FormatError(f"JSON object key {key!r} is not a string")
        return {k: _prepare(value[k], depth + 1) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, (list, tuple)):
        return [_prepare(item, depth + 1) for item in value]
    raise FormatError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: JSONValue) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes."""
    prepared = _prepare(value, 0)
    text = json.dumps(prepared, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise FormatError("JSON string contains a lone surrogate, which is not valid UTF-8") from e


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormatError(f"duplicate JSON object key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise FormatError(f"{name} is not valid JSON")


def _reject_float(text: str) -> Any:
    raise FormatError(f"floating-point number {text} is not allowed here")


def loads_strict(data: bytes, *, what: str, allow_floats: bool = False) -> Any:
    """Parse JSON bytes, refusing anything two parsers could read differently.

    ``what`` names the document in error messages ("manifest m.json").
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise FormatError(f"{what}: starts with a byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{what}: not valid UTF-8 ({e.reason} at byte {e.start})") from e
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=None if allow_floats else _reject_float,
        )
    except FormatError as e:
        raise FormatError(f"{what}: {e.message}") from e
    except RecursionError as e:
        raise FormatError(f"{what}: nested too deeply") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{what}: not valid JSON ({e.msg} at line {e.lineno})") from e
    except ValueError as e:  # e.g. an integer beyond the interpreter's digit limit
        raise FormatError(f"{what}: unreadable value ({e})") from e

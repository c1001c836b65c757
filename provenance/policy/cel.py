"""Attestation JSON as CEL values, with JSON's one kind of number.

JSON has one number type, and the canonical JSON that attestations are signed in (RFC 8785)
writes ``1.0`` as ``1``: whether a value parses as an integer or a float says nothing about
what the signer meant. CEL, though, refuses to compare an ``int`` with a ``double`` -- with the
plain conversion, ``predicate.metrics.accuracy >= 0.95`` is an error (so false) exactly when
the accuracy is a perfect ``1``. Every number from an attestation is therefore a
:class:`JsonNumber`: a CEL ``double`` that also compares and tests equal with ``int``
literals, so ``predicate.files == 5`` and ``predicate.accuracy >= 0.95`` both mean what they
say. (A comparison with the literal on the left, ``5 == predicate.files``, is CEL's own
``int`` comparison and still refuses a ``double``: write the attestation's field first.)

Imported only when a condition is evaluated: it needs cel-python.
"""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes


class JsonNumber(celtypes.DoubleType):
    """A number from attestation JSON: a double that tests equal to ints of the same value."""

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, celtypes.IntType | celtypes.DoubleType):
            return float(self) == float(other)
        return super().__eq__(other)  # type: ignore[no-any-return]

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return float.__hash__(self)


def to_cel(value: Any) -> Any:
    """``value`` (parsed JSON) as CEL values, numbers as :class:`JsonNumber`."""
    if isinstance(value, list | tuple):
        return celtypes.ListType([to_cel(item) for item in value])
    if isinstance(value, dict):
        return celtypes.MapType({celtypes.StringType(k): to_cel(v) for k, v in value.items()})
    if isinstance(value, int | float) and not isinstance(value, bool):
        return JsonNumber(float(value))
    return celpy.json_to_cel(value)  # strings, booleans, null: cel-python's own conversion

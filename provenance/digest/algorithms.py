"""The allow-list of digest algorithms and the typed :class:`Digest` identifier.

Only algorithms that are collision-resistant today can be expressed: there is no way to build a
``Digest`` with md5 or sha1, so no code path can accept one by accident. sha256 is the default
and the one policies accept unless they say otherwise; blake3 is offered for speed on large
datasets.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from provenance.errors import UnsupportedAlgorithmError

# Names people may type that are refused with a reason rather than "unknown".
_BROKEN = frozenset({"md5", "sha1", "sha-1", "md4", "crc32"})


class Algorithm(enum.Enum):
    """A digest algorithm this project accepts."""

    SHA256 = "sha256"
    BLAKE3 = "blake3"

    @property
    def hex_length(self) -> int:
        """Length of a digest of this algorithm in lowercase hex characters."""
        return 64

    @classmethod
    def parse(cls, name: str) -> Algorithm:
        """Return the algorithm called ``name``, refusing broken and unknown ones."""
        lowered = name.strip().lower()
        for algorithm in cls:
            if algorithm.value == lowered:
                return algorithm
        if lowered in _BROKEN:
            raise UnsupportedAlgorithmError(
                f"digest algorithm {name!r} is not accepted: it is not collision-resistant",
                hint="use sha256 (or blake3)",
            )
        accepted = ", ".join(a.value for a in cls)
        raise UnsupportedAlgorithmError(
            f"unknown digest algorithm {name!r}", hint=f"accepted: {accepted}"
        )


class Hasher(Protocol):
    """The part of a hash object that hashing code uses (hashlib and blake3 both fit)."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: Algorithm, *, large_input: bool = False) -> Hasher:
    """Return a fresh hash object.

    ``large_input`` lets blake3 spread one large input over several threads (its tree mode
    gives the same digest either way); sha256 is inherently serial, so it is ignored there.
    """
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256()
    import blake3  # only blake3 users pay for loading it

    if large_input:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


@functools.cache
def _hex_pattern(length: int) -> re.Pattern[str]:
    return re.compile(f"[0-9a-f]{{{length}}}")


def is_lower_hex(text: str, length: int) -> bool:
    """True when ``text`` is exactly ``length`` lowercase hexadecimal characters."""
    return _hex_pattern(length).fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Digest:
    """A content digest: an accepted algorithm and its lowercase hex value.

    Written as ``sha256:<hex>`` (the form OCI uses); in in-toto statements it becomes the
    ``{"sha256": "<hex>"}`` map through :meth:`as_dict`.
    """

    algorithm: Algorithm
    value: str

    def __post_init__(self) -> None:
        if not is_lower_hex(self.value, self.algorithm.hex_length):
            raise UnsupportedAlgorithmError(
                f"not a {self.algorithm.value} digest: {self.value!r}",
                hint=f"expected {self.algorithm.hex_length} lowercase hex characters",
            )

    def __str__(self) -> str:
        return f"{self.algorithm.value}:{self.value}"

    def as_dict(self) -> dict[str, str]:
        """The in-toto ``DigestSet`` form."""
        return {self.algorithm.value: self.value}

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex``; a bare 64-character hex string is taken as sha256."""
        algorithm_name, sep, value = text.strip().partition(":")
        if not sep:
            algorithm_name, value = Algorithm.SHA256.value, algorithm_name
        return cls(Algorithm.parse(algorithm_name), value.lower())

    @classmethod
    def of_bytes(cls, algorithm: Algorithm, data: bytes) -> Digest:
        """Digest of an in-memory byte string."""
        hasher = new_hasher(algorithm)
        hasher.update(data)
        return cls(algorithm, hasher.hexdigest())

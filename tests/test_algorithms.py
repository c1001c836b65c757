"""The algorithm allow-list and the typed Digest."""

from __future__ import annotations

import hashlib

import blake3
import pytest

from provenance.digest import Algorithm, Digest
from provenance.errors import UnsupportedAlgorithmError


@pytest.mark.parametrize("name", ["md5", "sha1", "SHA-1", "crc32"])
def test_broken_algorithms_cannot_be_expressed(name: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="not collision-resistant"):
        Algorithm.parse(name)


def test_unknown_algorithm_is_refused_with_the_accepted_list() -> None:
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        Algorithm.parse("sha3-512")
    assert "sha256" in caught.value.diagnostics()
    assert "blake3" in caught.value.diagnostics()


def test_digest_round_trip_and_in_toto_form() -> None:
    value = hashlib.sha256(b"abc").hexdigest()
    digest = Digest.parse(f"sha256:{value}")
    assert str(digest) == f"sha256:{value}"
    assert digest.as_dict() == {"sha256": value}
    assert Digest.parse(value) == digest  # bare hex is sha256
    assert Digest.parse(f"SHA256:{value.upper()}") == digest


def test_digest_of_bytes_matches_reference_implementations() -> None:
    assert Digest.of_bytes(Algorithm.SHA256, b"x").value == hashlib.sha256(b"x").hexdigest()
    assert Digest.of_bytes(Algorithm.BLAKE3, b"x").value == blake3.blake3(b"x").hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        "sha256:abc",
        "sha256:" + "g" * 64,
        "md5:" + "0" * 32,
        "sha1:" + "0" * 40,
        "sha256:" + "0" * 65,
    ],
)
def test_malformed_digests_are_refused(text: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        Digest.parse(text)


def test_digest_constructor_requires_lowercase_hex() -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        Digest(Algorithm.SHA256, "A" * 64)

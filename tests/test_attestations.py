"""Statements, DSSE and key-signed bundles: round trips, and every tampering refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sigstore_models.bundle.v1 import Bundle as SpecBundle

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, pae
from provenance.errors import FormatError, InputError, RefusedError, UnsupportedAlgorithmError
from provenance.signing.keys import (
    PASSPHRASE_ENV,
    KeySigner,
    KeyType,
    PublicKey,
    RemoteSigner,
    SignatureError,
)
from provenance.statement import ResourceDescriptor, Statement

DIGEST = Digest(Algorithm.SHA256, hashlib.sha256(b"data").hexdigest())


def statement(**predicate: Any) -> Statement:
    return Statement(
        (ResourceDescriptor.for_digest(DIGEST, name="train"),),
        "https://example.com/predicate/v1",
        {"score": 0.97, "items": [1, 2], **predicate},
    )


def test_pae_matches_the_dsse_specification() -> None:
    # The worked example of the DSSE protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_statement_round_trip_keeps_exact_bytes() -> None:
    original = statement()
    payload = original.to_bytes()
    parsed = Statement.from_bytes(payload)
    assert parsed == original
    assert parsed.to_bytes() == payload
    assert parsed.names(DIGEST)
    assert json.loads(payload)["_type"] == "https://in-toto.io/Statement/v1"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"_type": "https://in-toto.io/Statement/v2"}, "_type"),
        ({"extra": 1}, "unknown field"),
        ({"subject": []}, "at least one subject"),
        ({"subject": [{"digest": {}}]}, "at least one digest"),
        ({"subject": [{"digest": {"sha256": "abc"}}]}, "malformed sha256"),
        ({"subject": [{"digest": {"sha256": "A" * 64}}]}, "malformed sha256"),
        ({"predicateType": ""}, "predicateType"),
        ({"predicate": []}, "predicate must be"),
    ],
)
def test_malformed_statements_are_refused(document: dict[str, Any], message: str) -> None:
    base = statement().to_json()
    base.update(document)
    with pytest.raises(FormatError, match=message):
        Statement.from_bytes(json.dumps(base).encode())


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        (b'{"x": 1e400}', "not finite"),
        (b'{"x": 18446744073709551616}', "beyond 2"),
        (b'{"x": "\\ud800"}', "not valid Unicode"),
        (b'{"\\ud800": 1}', "not valid Unicode"),
        (b'{"x": ' + b"[" * 100 + b"]" * 100 + b"}", "nested more than"),
    ],
)
def test_values_without_one_reading_are_refused(predicate: bytes, message: str) -> None:
    payload = (
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","predicate":'
        + predicate
        + b',"subject":[{"digest":{"sha256":"'
        + b"0" * 64
        + b'"}}]}'
    )
    with pytest.raises(FormatError, match=message):
        Statement.from_bytes(payload)


def test_statement_v01_is_read() -> None:
    document = statement().to_json()
    document["_type"] = "https://in-toto.io/Statement/v0.1"
    assert Statement.from_bytes(json.dumps(document).encode()).predicate_type == (
        "https://example.com/predicate/v1"
    )


def test_duplicate_keys_in_a_statement_are_refused() -> None:
    payload = (
        statement().to_bytes().replace(b'"predicateType"', b'"predicateType":"x","predicateType"')
    )
    with pytest.raises(FormatError, match="duplicate"):
        Statement.from_bytes(payload)


def test_weak_digest_algorithms_never_match() -> None:
    descriptor = ResourceDescriptor({"sha1": "0" * 40, "md5": "0" * 32})
    assert descriptor.digests() == []


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_and_verify_round_trip(key_type: KeyType) -> None:
    signer = KeySigner.generate(key_type)
    bundle = Bundle.sign_statement(statement(), signer)
    parsed = Bundle.from_bytes(bundle.raw)
    assert parsed.key_hint == signer.public_key.key_id
    assert parsed.verify_with_key(signer.public_key) == statement()


def test_bundles_load_with_the_sigstore_bundle_model() -> None:
    bundle = Bundle.sign_statement(statement(), KeySigner.generate())
    spec = SpecBundle.from_json(bundle.raw.decode())
    public_key = spec.verification_material.public_key
    assert public_key is not None
    assert public_key.hint == bundle.key_hint
    assert spec.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"


def _mutations(raw: bytes) -> list[tuple[str, bytes]]:
    document = json.loads(raw)
    envelope = document["dsseEnvelope"]
    out: list[tuple[str, bytes]] = []
    payload = base64.b64decode(envelope["payload"])
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    for i in range(0, len(payload), max(1, len(payload) // 40)):
        changed = bytearray(payload)
        changed[i] ^= 0x01
        mutated = json.loads(raw)
        mutated["dsseEnvelope"]["payload"] = base64.b64encode(bytes(changed)).decode()
        out.append((f"payload byte {i}", json.dumps(mutated).encode()))
    for i in range(len(sig)):
        changed = bytearray(sig)
        changed[i] ^= 0x01
        mutated = json.loads(raw)
        mutated["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(changed)).decode()
        out.append((f"signature byte {i}", json.dumps(mutated).encode()))
    hint = document["verificationMaterial"]["publicKey"]["hint"]
    for i in range(len(hint)):
        mutated = json.loads(raw)
        flipped = "0" if hint[i] != "0" else "1"
        mutated["verificationMaterial"]["publicKey"]["hint"] = hint[:i] + flipped + hint[i + 1 :]
        out.append((f"hint character {i}", json.dumps(mutated).encode()))
    mutated = json.loads(raw)
    mutated["dsseEnvelope"]["payloadType"] = "application/json"
    out.append(("payload type", json.dumps(mutated).encode()))
    return out


@pytest.mark.parametrize("key_type", list(KeyType))
def test_every_single_change_is_refused(key_type: KeyType) -> None:
    signer = KeySigner.generate(key_type)
    raw = Bundle.sign_statement(statement(), signer).raw
    for what, data in _mutations(raw):
        with pytest.raises((RefusedError, FormatError)) as caught:
            Bundle.from_bytes(data).verify_with_key(signer.public_key)
        assert caught.value.diagnostics(), what


def test_a_different_key_is_refused() -> None:
    bundle = Bundle.sign_statement(statement(), KeySigner.generate())
    with pytest.raises(SignatureError, match="names key"):
        bundle.verify_with_key(KeySigner.generate().public_key)


def test_hint_pointing_at_the_verifying_key_does_not_help_a_forged_signature() -> None:
    trusted = KeySigner.generate()
    attacker = KeySigner.generate()
    forged = json.loads(Bundle.sign_statement(statement(evil=True), attacker).raw)
    forged["verificationMaterial"]["publicKey"]["hint"] = trusted.public_key.key_id
    forged["dsseEnvelope"]["signatures"][0]["keyid"] = trusted.public_key.key_id
    with pytest.raises(SignatureError, match="does not verify"):
        Bundle.from_bytes(json.dumps(forged).encode()).verify_with_key(trusted.public_key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("dsseEnvelope"), "exactly one of dsseEnvelope"),
        (lambda d: d.update(mediaType="application/json"), "mediaType"),
        (lambda d: d["verificationMaterial"].update(certificate={}), "exactly one of publicKey"),
        (lambda d: d["dsseEnvelope"].update(payload="not base64!"), "base64"),
        (lambda d: d["dsseEnvelope"].update(signatures=[]), "at least one signature"),
        (lambda d: d["dsseEnvelope"].update(extra=1), "unknown field"),
    ],
)
def test_malformed_bundles_are_refused(change: Any, message: str) -> None:
    document = json.loads(Bundle.sign_statement(statement(), KeySigner.generate()).raw)
    change(document)
    with pytest.raises(FormatError, match=message):
        Bundle.from_bytes(json.dumps(document).encode())


def test_truncated_bundle_is_refused() -> None:
    raw = Bundle.sign_statement(statement(), KeySigner.generate()).raw
    with pytest.raises(FormatError, match="not valid JSON"):
        Bundle.from_bytes(raw[: len(raw) // 2])


def test_non_canonical_base64_is_refused() -> None:
    document = json.loads(Bundle.sign_statement(statement(), KeySigner.generate()).raw)
    document["dsseEnvelope"]["payload"] = document["dsseEnvelope"]["payload"].rstrip("=") + "\n"
    with pytest.raises(FormatError, match="base64"):
        Envelope.from_json(document["dsseEnvelope"])


def test_keys_save_load_and_stay_private(tmp_path: Path) -> None:
    signer = KeySigner.generate()
    public = signer.save(tmp_path / "k.key")
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert PublicKey.from_file(public) == signer.public_key
    loaded = KeySigner.from_file(tmp_path / "k.key")
    bundle = Bundle.sign_statement(statement(), loaded)
    assert bundle.verify_with_key(PublicKey.from_file(public)) == statement()
    with pytest.raises(InputError, match="never overwritten"):
        signer.save(tmp_path / "k.key")


def test_encrypted_keys_need_their_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = KeySigner.generate(KeyType.ED25519)
    signer.save(tmp_path / "k.key", passphrase=b"correct horse")
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    with pytest.raises(InputError, match="encrypted and no passphrase") as caught:
        KeySigner.from_file(tmp_path / "k.key")
    assert PASSPHRASE_ENV in caught.value.diagnostics()
    with pytest.raises(InputError, match="wrong passphrase"):
        KeySigner.from_file(tmp_path / "k.key", b"wrong")
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert KeySigner.from_file(tmp_path / "k.key").public_key == signer.public_key


def test_unsupported_keys_are_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(UnsupportedAlgorithmError):
        KeySigner.from_pem(pem)
    with pytest.raises(FormatError, match="not a PEM public key"):
        PublicKey(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    (tmp_path / "garbage.key").write_bytes(os.urandom(200))
    with pytest.raises(InputError):
        KeySigner.from_file(tmp_path / "garbage.key")


def test_remote_signer_uris_are_checked_before_use() -> None:
    public = KeySigner.generate().public_key
    with pytest.raises(InputError, match="unknown signer URI scheme"):
        RemoteSigner("ftp://example/key", public)
    signer = RemoteSigner("hv:no-such-key", public)  # Vault: needs VAULT_ADDR and a server
    with pytest.raises(InputError, match="signer at hv:no-such-key"):
        signer.sign(b"data")


def test_payload_type_is_part_of_what_is_signed() -> None:
    signer = KeySigner.generate()
    bundle = Bundle.sign_statement(statement(), signer)
    assert bundle.envelope is not None
    assert bundle.envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    other = pae("application/json", bundle.envelope.payload)
    with pytest.raises(SignatureError):
        signer.public_key.verify(bundle.envelope.signatures[0].sig, other)

"""Sigstore bundles (v0.1-v0.3 read, v0.3 written): a signed envelope with what verifies it.

Every attestation is stored as a Sigstore bundle, the format sigstore-python, cosign and
model_signing exchange. Two kinds of verification material occur:

* **keyless** -- a Fulcio certificate and a Rekor transparency-log entry. Verified by
  sigstore-python against a trust root and an expected identity (see
  :mod:`provenance.signing.sigstore`).
* **key** -- ``publicKey.hint``, a label for the signing key: this project's key id, or (in
  bundles for OpenSSF model_signing) the SHA-256 of the key's PEM text. Verified here, against
  the keys a policy trusts; the hint selects a key, it never proves one.

A bundle keeps the exact bytes it was read from; nothing is verified from a re-serialisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from provenance.digest.canonical import loads_strict
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE, DsseSignature, Envelope
from provenance.errors import FormatError, RefusedError
from provenance.signing.keys import PublicKey, SignatureError, Signer
from provenance.statement import Statement

MEDIA_TYPE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        MEDIA_TYPE_V03,
    }
)
MAX_BUNDLE_BYTES = 32 << 20
_TOP_LEVEL = frozenset({"mediaType", "verificationMaterial", "dsseEnvelope", "messageSignature"})
_MATERIAL = frozenset(
    {"publicKey", "certificate", "x509CertificateChain", "tlogEntries", "timestampVerificationData"}
)


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle; ``raw`` is the exact bytes it came from."""

    raw: bytes
    envelope: Envelope | None  # None for a message-signature bundle
    key_hint: str | None  # publicKey.hint for key-signed bundles
    keyless: bool  # carries a certificate (Fulcio) to be verified by sigstore-python

    @property
    def attestation_id(self) -> str:
        """What identifies the attestation: the SHA-256 of what is signed (DSSE's PAE of the
        payload type and payload), whatever signatures or bundle spelling surround it.

        Policies revoke attestations by this id, so it must not change under anything an
        attacker can alter without the key: re-encoding the bundle, duplicating a signature,
        or re-writing an ECDSA signature in its other valid form all leave it unchanged.
        """
        if self.envelope is None:
            return hashlib.sha256(self.raw).hexdigest()
        return hashlib.sha256(self.envelope.signed_bytes()).hexdigest()

    def log_time(self) -> dt.datetime | None:
        """When a transparency log first recorded this (keyless) bundle: the earliest
        ``integratedTime`` of its Rekor entries, or None when it has none (key-signed bundles,
        Rekor v2 entries, which carry signed timestamps instead).

        Only meaningful once the bundle has been verified by sigstore-python, which checks
        each entry's signed promise or inclusion proof: before that it is a claim.
        """
        if not self.keyless:
            return None
        try:
            entries = json.loads(self.raw)["verificationMaterial"].get("tlogEntries", [])
            times = [int(e["integratedTime"]) for e in entries if "integratedTime" in e]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not times:
            return None
        try:
            return dt.datetime.fromtimestamp(min(times), dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None

    @property
    def statement(self) -> Statement:
        """The in-toto statement inside (parsed from the signed payload bytes)."""
        if self.envelope is None or self.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise FormatError("bundle does not carry an in-toto statement")
        return Statement.from_bytes(self.envelope.payload)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "bundle") -> Bundle:
        """Parse a bundle strictly enough to know what it is and what verifies it."""
        if len(data) > MAX_BUNDLE_BYTES:
            raise FormatError(f"{source}: larger than {MAX_BUNDLE_BYTES} bytes")
        document = loads_strict(data, what=source)
        try:
            return cls._from_document(data, document)
        except FormatError as e:
            raise FormatError(f"{source}: {e.message}") from e

    @classmethod
    def _from_document(cls, raw: bytes, document: Any) -> Bundle:
        if not isinstance(document, dict):
            raise FormatError("a bundle is a JSON object")
        # Nothing unsigned may ride along: unknown fields are refused, not ignored.
        if unknown := sorted(set(document) - _TOP_LEVEL):
            raise FormatError(f"unknown bundle field(s) {', '.join(unknown)}")
        if not isinstance(document.get("mediaType"), str) or (
            document["mediaType"] not in MEDIA_TYPES
        ):
            raise FormatError(f"unsupported bundle mediaType {document.get('mediaType')!r}")
        material = document.get("verificationMaterial")
        if not isinstance(material, dict):
            raise FormatError("bundle has no verificationMaterial")
        if unknown := sorted(set(material) - _MATERIAL):
            raise FormatError(f"unknown verificationMaterial field(s) {', '.join(unknown)}")
        kinds = [k for k in ("publicKey", "certificate", "x509CertificateChain") if k in material]
        if len(kinds) != 1:
            raise FormatError("bundle needs exactly one of publicKey, certificate, chain")
        hint = None
        if kinds[0] == "publicKey":
            key = material["publicKey"]
            if (
                not isinstance(key, dict)
                or set(key) != {"hint"}
                or not isinstance(key["hint"], str)
            ):
                raise FormatError("publicKey must hold exactly a string hint")
            hint = key["hint"]
            # A key-signed bundle has no log entry or timestamps to check; carrying some
            # anyway would be unverified material.
            if material.get("tlogEntries", []) != [] or material.get("timestampVerificationData"):
                raise FormatError("a key-signed bundle carries no log entries or timestamps")
        has_envelope, has_message = "dsseEnvelope" in document, "messageSignature" in document
        if has_envelope == has_message:
            raise FormatError("bundle needs exactly one of dsseEnvelope, messageSignature")
        envelope = Envelope.from_json(document["dsseEnvelope"]) if has_envelope else None
        return cls(raw, envelope, hint, keyless=hint is None)

    @classmethod
    def sign_statement(
        cls, statement: Statement, signer: Signer, *, pem_hint: bool = False
    ) -> Bundle:
        """Sign ``statement`` with a key into a v0.3 bundle carrying ``publicKey.hint``.

        The hint (and the DSSE signature's keyid) is the key id, or with ``pem_hint`` the form
        OpenSSF model_signing requires of the bundles it verifies (:attr:`PublicKey.pem_hint`).
        """
        payload = statement.to_bytes()
        envelope = Envelope(payload, IN_TOTO_PAYLOAD_TYPE, ())
        public = signer.public_key
        key_id = public.pem_hint if pem_hint else public.key_id
        signature = DsseSignature(signer.sign(envelope.signed_bytes()), key_id)
        envelope = Envelope(payload, IN_TOTO_PAYLOAD_TYPE, (signature,))
        document = {
            "mediaType": MEDIA_TYPE_V03,
            "verificationMaterial": {"publicKey": {"hint": key_id}, "tlogEntries": []},
            "dsseEnvelope": envelope.to_json(),
        }
        raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        return cls(raw, envelope, key_id, keyless=False)

    def verify_with_key(self, key: PublicKey, *, hint_must_match: bool = True) -> Statement:
        """Verify a key-signed bundle under ``key``; return the statement it signs.

        Refuses a keyless bundle (that is sigstore-python's job), a hint naming another key
        (in either of its forms, see :meth:`PublicKey.named_by`), and any envelope in which a
        signature fails: every signature present must verify, so no unverifiable material
        rides along with a good one.

        Hints and keyids are unauthenticated labels. ``hint_must_match=False`` checks the
        signatures under ``key`` whatever they say -- for a key the caller already trusts,
        when another tool labels keys in a form this one does not compute.
        """
        if self.keyless or self.envelope is None:
            raise RefusedError("bundle is not key-signed: verify it as a Sigstore bundle")
        if hint_must_match and not key.named_by(self.key_hint):
            raise SignatureError(
                f"bundle names key {self.key_hint[:16] if self.key_hint else '?'}, "
                f"not {key.key_id[:16]}"
            )
        signed = self.envelope.signed_bytes()
        for signature in self.envelope.signatures:
            if hint_must_match and signature.keyid and not key.named_by(signature.keyid):
                raise SignatureError(f"signature names key {signature.keyid[:16]}, not the hint's")
            key.verify(signature.sig, signed)
        return self.statement


def sign_checked(statement: Statement, signer: Signer) -> Bundle:
    """Sign with a key, then verify the signature before anyone relies on it: a faulty
    signer (a KMS or HSM returning garbage) is caught here, not by the next verifier."""
    bundle = Bundle.sign_statement(statement, signer)
    bundle.verify_with_key(signer.public_key)
    return bundle

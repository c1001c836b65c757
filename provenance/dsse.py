"""DSSE (Dead Simple Signing Envelope): signed bytes with their type, and nothing else.

A signature covers ``PAE(payloadType, payload)``, the pre-authentication encoding, so a
signature over one payload type can never be replayed as another. The payload is kept as the
exact bytes that were signed.

Spec: https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from provenance.errors import FormatError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding that DSSE signatures are made over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def b64decode_strict(text: Any, what: str) -> bytes:
    """Standard base64 with padding; anything else is refused (no silent skipping)."""
    if not isinstance(text, str):
        raise FormatError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise FormatError(f"{what} is not valid base64") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise FormatError(f"{what} is not canonical base64")
    return data


@dataclass(frozen=True)
class DsseSignature:
    """One signature: its bytes and an optional, unauthenticated key id."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope; see the module docstring."""

    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...]

    def signed_bytes(self) -> bytes:
        """What each signature must verify over."""
        return pae(self.payload_type, self.payload)

    def to_json(self) -> dict[str, Any]:
        """The envelope as it appears in a Sigstore bundle's ``dsseEnvelope``."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"sig": base64.b64encode(s.sig).decode("ascii"), "keyid": s.keyid}
                for s in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, document: Any) -> Envelope:
        """Parse strictly: every field present and well-formed, nothing unknown."""
        if not isinstance(document, dict):
            raise FormatError("DSSE envelope must be a JSON object")
        if unknown := sorted(set(document) - {"payload", "payloadType", "signatures"}):
            raise FormatError(f"DSSE envelope has unknown field(s) {', '.join(unknown)}")
        payload_type = document.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise FormatError("DSSE envelope needs a payloadType")
        signatures = document.get("signatures")
        if not isinstance(signatures, list) or not signatures:
            raise FormatError("DSSE envelope needs at least one signature")
        parsed: list[DsseSignature] = []
        for i, entry in enumerate(signatures):
            if not isinstance(entry, dict) or set(entry) - {"sig", "keyid"}:
                raise FormatError(f"DSSE signature {i} is malformed")
            keyid = entry.get("keyid", "")
            if not isinstance(keyid, str):
                raise FormatError(f"DSSE signature {i}: keyid must be a string")
            parsed.append(
                DsseSignature(b64decode_strict(entry.get("sig"), f"signature {i}"), keyid)
            )
        if len({s.sig for s in parsed}) != len(parsed):
            raise FormatError("DSSE envelope repeats a signature")
        payload = b64decode_strict(document.get("payload"), "DSSE payload")
        return cls(payload, payload_type, tuple(parsed))

"""Sigstore keyless signing and verification, through sigstore-python.

*Verification* checks a bundle's Fulcio certificate chain, its transparency-log (Rekor)
inclusion and signed timestamps against a trust root, then the certificate's identity (SAN)
and OIDC issuer against what the caller expects. It works offline with the trust roots that
sigstore-python ships (production, staging) or a given ``trusted_root.json``; online mode
refreshes the trust root over TUF first, and an unreachable service is a refusal.

*Signing* obtains an OIDC identity token (ambient CI credentials such as GitHub Actions', or
the browser flow), gets a short-lived certificate and logs the signature; it needs the network.

sigstore-python is imported only here, and only when used: it is heavy to import.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.bundle import Bundle
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE
from provenance.errors import FormatError, InputError
from provenance.signing.keys import SignatureError
from provenance.statement import Statement

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

# The Sigstore-specific "other name" SAN type (Fulcio writes usernames there).
_OTHERNAME_OID = "1.3.6.1.4.1.57264.1.7"


class Instance(enum.Enum):
    """Public Sigstore deployments whose trust roots sigstore-python ships."""

    PRODUCTION = "production"
    STAGING = "staging"


@dataclass(frozen=True)
class Identity:
    """Who must have signed: a certificate identity (SAN) and the OIDC issuer that vouched.

    With ``regex``, ``identity`` is a regular expression that must match a SAN in full (it is
    anchored at both ends). The issuer is always matched exactly.
    """

    identity: str
    issuer: str
    regex: bool = False

    def __post_init__(self) -> None:
        if not self.identity or not self.issuer:
            raise InputError("a Sigstore identity needs both an identity and an issuer")
        if self.regex:
            try:
                re.compile(self.identity)
            except re.error as e:
                raise InputError(f"invalid identity pattern {self.identity!r}: {e}") from e

    def matches(self, sans: set[str]) -> bool:
        """True when one of the certificate's SANs is this identity."""
        if self.regex:
            return any(re.fullmatch(self.identity, san) for san in sans)
        return self.identity in sans


class _IdentityPolicy:
    """A sigstore-python verification policy for an :class:`Identity` (exact or pattern)."""

    def __init__(self, expected: Identity) -> None:
        from sigstore.verify import policy

        self._expected = expected
        self._issuer = policy.OIDCIssuer(expected.issuer)

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        self._issuer.verify(cert)
        sans = _sans(cert)
        if not self._expected.matches(sans):
            raise VerificationError(
                f"certificate identity {sorted(sans)} does not match {self._expected.identity!r}"
            )


def _sans(cert: Certificate) -> set[str]:
    """The identities a Fulcio certificate names: emails, URIs and Sigstore other-names."""
    from cryptography.x509 import (
        OtherName,
        RFC822Name,
        SubjectAlternativeName,
        UniformResourceIdentifier,
    )

    names = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    sans = set(names.get_values_for_type(RFC822Name))
    sans.update(names.get_values_for_type(UniformResourceIdentifier))
    sans.update(
        other.value.decode("utf-8", "replace")
        for other in names.get_values_for_type(OtherName)
        if other.type_id.dotted_string == _OTHERNAME_OID
    )
    return sans


_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"  # DER UTF8String
_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"  # raw bytes


def _issuer(cert: Certificate) -> str:
    from cryptography.x509 import ExtensionNotFound, ObjectIdentifier, UnrecognizedExtension

    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            extension = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid)).value
        except ExtensionNotFound:
            continue
        if not isinstance(extension, UnrecognizedExtension):
            continue
        raw = extension.value
        if oid == _ISSUER_V2:  # tag 0x0c, short or long length, then the string
            if raw[:1] != b"\x0c" or len(raw) < 2:
                continue
            length = raw[1]
            start = 2 if length < 0x80 else 2 + (length & 0x7F)
            raw = raw[start:]
        return raw.decode("utf-8", "replace")
    raise SignatureError("the certificate names no OIDC issuer")


def certificate_identity(bundle: Bundle) -> tuple[str, str]:
    """The (identity, issuer) a keyless bundle's certificate names, e.g. to record who signed.

    Read from the bundle, not verified: trust is only ever decided by :func:`verify` against
    an expected identity.
    """
    from sigstore.models import Bundle as SigstoreBundle

    try:
        cert = SigstoreBundle.from_json(bundle.raw).signing_certificate
    except Exception as e:  # sigstore raises several unrelated types for a bad bundle
        raise SignatureError(f"cannot read the bundle's certificate: {e}") from e
    sans = sorted(_sans(cert))
    if not sans:
        raise SignatureError("the certificate names no identity")
    return sans[0], _issuer(cert)


def _verifier(instance: Instance, trust_root: Path | None, offline: bool) -> Any:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    try:
        if trust_root is not None:
            return Verifier(trusted_root=TrustedRoot.from_file(str(trust_root)))
        if instance is Instance.STAGING:
            return Verifier.staging(offline=offline)
        return Verifier.production(offline=offline)
    except (SigstoreError, OSError, ValueError) as e:
        raise SignatureError(f"cannot load the Sigstore trust root: {e}") from e


def verify(
    bundle: Bundle,
    identity: Identity,
    *,
    instance: Instance = Instance.PRODUCTION,
    trust_root: Path | None = None,
    offline: bool = True,
    artifact: bytes | None = None,
) -> bytes | None:
    """Verify a keyless bundle; return the signed payload (None for a message signature).

    A DSSE bundle returns its payload bytes; a message-signature bundle needs ``artifact``,
    the bytes it signs. Anything that does not verify -- chain, log entry, timestamps,
    signature, identity, issuer -- raises :class:`~provenance.signing.keys.SignatureError`.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore.models import InvalidBundle

    if not bundle.keyless:
        raise SignatureError("bundle is key-signed, not keyless: verify it with a public key")
    verifier = _verifier(instance, trust_root, offline)
    policy = _IdentityPolicy(identity)
    if bundle.envelope is None and artifact is None:
        raise InputError("a message-signature bundle is verified against the artifact")
    try:
        parsed = SigstoreBundle.from_json(bundle.raw)
        if bundle.envelope is None:
            verifier.verify_artifact(artifact, parsed, policy)
            payload_type, payload = None, None
        else:
            payload_type, payload = verifier.verify_dsse(parsed, policy)
    except (VerificationError, InvalidBundle, SigstoreError, ValueError) as e:
        raise SignatureError(f"Sigstore verification failed: {e}") from e
    if bundle.envelope is None:
        return None
    if payload_type != bundle.envelope.payload_type or payload != bundle.envelope.payload:
        raise SignatureError("verified envelope differs from the bundle's envelope")
    return bytes(payload)


def verify_statement(bundle: Bundle, identity: Identity, **options: Any) -> Statement:
    """:func:`verify` a keyless in-toto bundle and return its statement."""
    if bundle.envelope is None or bundle.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise FormatError("bundle does not carry an in-toto statement")
    payload = verify(bundle, identity, **options)
    assert payload is not None
    return Statement.from_bytes(payload)


def sign_statement(statement: Statement, *, instance: Instance = Instance.PRODUCTION) -> Bundle:
    """Sign keylessly: ambient CI credentials if present, else the interactive browser flow.

    Needs the network (Fulcio, Rekor, the OIDC provider); every failure is an error.
    """
    from sigstore import dsse
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken, Issuer, detect_credential
    from sigstore.sign import SigningContext

    try:
        config = (
            ClientTrustConfig.staging()
            if instance is Instance.STAGING
            else ClientTrustConfig.production()
        )
        context = SigningContext.from_trust_config(config)
        ambient = detect_credential()
        if ambient is not None:
            token = IdentityToken(ambient)
        else:
            issuer = Issuer(config.signing_config.get_oidc_url())
            token = issuer.identity_token()
        with context.signer(token) as signer:
            signed = signer.sign_dsse(dsse.Statement(statement.to_bytes()))
        return Bundle.from_bytes(signed.to_json().encode(), source="signed bundle")
    except (SigstoreError, OSError) as e:
        raise InputError(f"Sigstore signing failed: {e}") from e

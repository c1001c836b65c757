"""Key pairs: ECDSA P-256 (the default, as in the OpenSSF model-signing spec) and Ed25519.

Signing and verification go through securesystemslib's signer API, so a key held in a file and
one held in a KMS or HSM (``gcpkms:``, ``awskms:``, ``azurekms:``, ``hv:``, ``hsm:`` URIs) are
used the same way. Private keys are PEM PKCS#8, optionally passphrase-encrypted, written with
mode 0600; they never appear in logs or errors.

A key is identified by the SHA-256 of its DER SubjectPublicKeyInfo (its *key id*), which is
what a key-signed bundle's ``publicKey.hint`` carries. OpenSSF model-signing bundles carry
another form instead, the SHA-256 of the PEM text (:attr:`PublicKey.pem_hint`). The hint is only a
label: a signature is trusted because it verifies under a key the policy names, never because of
its hint.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import SIGNER_FOR_URI_SCHEME, CryptoSigner, Signature, SSlibKey
from securesystemslib.signer import Signer as SslibSigner

from provenance.errors import FormatError, InputError, RefusedError, UnsupportedAlgorithmError
from provenance.fsutil import exclusive_create, read_limited

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "PROVENANCE_KEY_PASSPHRASE"  # noqa: S105 - a variable's name, not a secret
MAX_KEY_FILE_BYTES = 64 << 10


class SignatureError(RefusedError):
    """A signature does not verify under the key it was checked against."""


class PassphraseRequiredError(InputError):
    """The private key is encrypted and no passphrase was given."""


class KeyType(enum.Enum):
    """Key algorithms this project creates and accepts."""

    ECDSA_P256 = "ecdsa-p256"
    ED25519 = "ed25519"


def _scheme(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ecdsa-sha2-nistp256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise UnsupportedAlgorithmError(
        f"unsupported key type {type(key).__name__}", hint="use ECDSA P-256 or Ed25519"
    )


@dataclass(frozen=True)
class PublicKey:
    """A verification key, from its PEM SubjectPublicKeyInfo."""

    pem: bytes
    _sslib: SSlibKey = field(init=False, repr=False, compare=False)
    _pem_hint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            key = serialization.load_pem_public_key(self.pem)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise FormatError("not a PEM public key") from e
        scheme = _scheme(key)
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = hashlib.sha256(der).hexdigest()
        object.__setattr__(self, "_sslib", SSlibKey.from_crypto(key, keyid=key_id, scheme=scheme))
        # Re-encoded, not the bytes given: the hint must not depend on line endings or comments.
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        object.__setattr__(self, "_pem_hint", hashlib.sha256(pem).hexdigest())

    @property
    def key_id(self) -> str:
        """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex."""
        return str(self._sslib.keyid)

    @property
    def pem_hint(self) -> str:
        """SHA-256 of the canonical PEM SubjectPublicKeyInfo, lowercase hex: the key hint the
        OpenSSF model_signing tools write, and the one they require when they verify."""
        return self._pem_hint

    def named_by(self, hint: str | None) -> bool:
        """True when ``hint`` names this key in either form (a label, never a proof)."""
        return hint is not None and hint in (self.key_id, self._pem_hint)

    @property
    def sslib(self) -> SSlibKey:
        """The securesystemslib form, for its signer API."""
        return self._sslib

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid over ``data``."""
        try:
            self._sslib.verify_signature(Signature(self.key_id, signature.hex()), data)
        except (UnverifiedSignatureError, VerificationError) as e:
            raise SignatureError(f"signature does not verify under key {self.key_id[:16]}") from e

    @classmethod
    def from_file(cls, path: Path) -> PublicKey:
        """Read a PEM public key file."""
        return cls(_read_key_file(path))


class Signer(Protocol):
    """Anything that signs bytes under a known public key."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def _read_key_file(path: Path) -> bytes:
    return read_limited(path, MAX_KEY_FILE_BYTES, what="key file")


class KeySigner:
    """Signs with a private key held in this process (securesystemslib ``CryptoSigner``)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        self._private = private_key
        pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._public = PublicKey(pem)
        self._signer = CryptoSigner(private_key, self._public.sslib)

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return bytes.fromhex(self._signer.sign(data).signature)

    @classmethod
    def generate(cls, key_type: KeyType = KeyType.ECDSA_P256) -> KeySigner:
        """A new random key pair."""
        if key_type is KeyType.ED25519:
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> KeySigner:
        """Load a PEM PKCS#8 private key, decrypting it with ``passphrase`` if it is encrypted."""
        try:
            key = serialization.load_pem_private_key(data, passphrase)
        except TypeError as e:  # encrypted without a passphrase, or the reverse
            if passphrase is None:
                raise PassphraseRequiredError(
                    "the private key is encrypted and no passphrase was given",
                    hint=f"set {PASSPHRASE_ENV}",
                ) from e
            raise InputError("a passphrase was given but the private key is not encrypted") from e
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InputError("cannot load the private key: wrong passphrase or not a key") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise UnsupportedAlgorithmError(
                f"unsupported private key type {type(key).__name__}",
                hint="use ECDSA P-256 or Ed25519",
            )
        _scheme(key.public_key())
        return cls(key)

    @classmethod
    def from_file(cls, path: Path, passphrase: bytes | None = None) -> KeySigner:
        """Load a private key file; the passphrase defaults to ``$PROVENANCE_KEY_PASSPHRASE``."""
        if passphrase is None and (env := os.environ.get(PASSPHRASE_ENV)):
            passphrase = env.encode("utf-8")
        try:
            if os.stat(path).st_mode & 0o077:
                log.warning("private key %s is readable by other users (chmod 600 it)", path)
        except OSError:
            pass  # reading it below reports the problem
        return cls.from_pem(_read_key_file(path), passphrase)

    def private_pem(self, passphrase: bytes | None = None) -> bytes:
        """PEM PKCS#8, encrypted with the best available scheme when a passphrase is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def save(self, private_path: Path, *, passphrase: bytes | None = None) -> Path:
        """Write the private key (mode 0600) and ``<name>.pub`` beside it; never overwrite.

        Each file is created exclusively, so two processes saving the same name cannot
        overwrite each other or leave the halves of two different pairs.
        """
        public_path = private_path.with_suffix(".pub")
        if public_path.exists():
            raise InputError(f"{public_path} already exists; keys are never overwritten")
        exclusive_create(private_path, self.private_pem(passphrase), mode=0o600)
        try:
            exclusive_create(public_path, self._public.pem, mode=0o644)
        except InputError:
            private_path.unlink()  # ours, just created: do not leave half a pair
            raise
        return public_path


class RemoteSigner:
    """Signs through a securesystemslib signer URI (KMS, Vault, HSM, TKey).

    The private key never leaves its service; the public key must be given (it is what the
    policy trusts, and what the service's signatures are checked against).
    """

    def __init__(self, uri: str, public_key: PublicKey) -> None:
        scheme = uri.partition(":")[0]
        if scheme not in SIGNER_FOR_URI_SCHEME or scheme == "file2":
            known = ", ".join(sorted(s for s in SIGNER_FOR_URI_SCHEME if s != "file2"))
            raise InputError(f"unknown signer URI scheme {scheme!r}", hint=f"known: {known}")
        self._public = public_key
        self._uri = uri
        self._signer: SslibSigner | None = None

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        if self._signer is None:
            try:
                self._signer = SslibSigner.from_priv_key_uri(self._uri, self._public.sslib)
            except Exception as e:  # the backends raise their own SDKs' errors
                raise InputError(f"cannot reach the signer at {self._uri}: {e}") from e
        try:
            signature = self._signer.sign(data)
        except Exception as e:
            raise InputError(f"the signer at {self._uri} failed: {e}") from e
        return bytes.fromhex(signature.signature)

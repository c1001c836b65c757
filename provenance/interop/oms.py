"""OpenSSF Model Signing (OMS) v1.0: sign models so ``model_signing`` verifies them, and verify
the signatures it makes.

A model (one file, or a directory) is hashed file by file with this project's walker -- so its
refusals apply: no symbolic links, devices or names that are not UTF-8 -- into the OMS
statement (:mod:`provenance.predicates.oms`), which is signed into a Sigstore bundle v0.3 with
an ECDSA key. What ``model_signing verify key`` requires of such a bundle, and so what is
written: media type v0.3, ``verificationMaterial`` of exactly ``publicKey.hint`` (the SHA-256 of
the key's PEM text -- a different hint is refused by it as a key mismatch) and no log entries,
a DSSE envelope of payload type ``application/vnd.in-toto+json`` with one signature over the
standard pre-authentication encoding.

Paths left out of a directory model, as ``model_signing`` leaves them out by default: ``.git``,
``.gitattributes``, ``.github`` and ``.gitignore`` at the top, and the signature file when it
lies inside the model. Nested ``.git/`` and ``.provenance/`` directories, which this project's
walker never enters, are left out too and named in the signed ``ignore_paths``, so both tools
hash the same files. All of these are written into the statement, and a verifier leaves out
exactly what the signed statement lists (plus the signature file it is given).

Verification, for :func:`verify_model`: the signature verifies under the given key (the hint
is an unsigned label, so it only improves the message when the signature fails), the statement
is a well-formed OMS v1.0 statement of a kind that can be checked exactly (whole files, SHA-256),
its root digest recomputes from its resources, and the resources are exactly the files on disk:
every added, removed or changed file is named.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provenance.bundle import MAX_BUNDLE_BYTES, Bundle
from provenance.digest.build import build_manifest, digest_path
from provenance.digest.hashing import Progress
from provenance.digest.ignore import BUILTIN_PATTERNS, IgnoreRules
from provenance.digest.manifest import FileEntry
from provenance.errors import InputError, RefusedError, UnreadableError, UnsupportedFileError
from provenance.fsutil import read_limited
from provenance.predicates.oms import (
    SINGLE_FILE,
    ModelSignature,
    OmsResource,
    model_statement,
    parse_statement,
)
from provenance.signing.keys import PublicKey, SignatureError, Signer

DEFAULT_SIGNATURE = Path("model.sig")  # model_signing's default, relative to the working dir
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")  # model_signing's defaults
OMS_KEY_SCHEME = "ecdsa-sha2-nistp256"  # model_signing verifies EC keys; of ours, P-256
_WALKER_SKIPS = frozenset(p.rstrip("/") for p in BUILTIN_PATTERNS)  # never hashed, any depth
_GITIGNORE_SPECIAL = re.compile(r"([\\*?\[\]!# ])")
MAX_NAMES_SHOWN = 10


class ModelMismatchError(RefusedError):
    """The files of a model are not the files its signature lists."""


@dataclass(frozen=True)
class VerifiedModel:
    """A model whose files match a signature that verified; what the signature says."""

    signature: ModelSignature
    bundle: Bundle


def is_single_file(path: Path) -> bool:
    """True for a model that is one regular file, False for a directory; anything else
    (missing, a link -- which model_signing refuses too --, a device) is an error."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError as e:
        raise InputError(f"no such file or directory: {path}") from e
    except OSError as e:
        raise UnreadableError(f"cannot access {path}: {e.strerror}") from e
    if stat.S_ISLNK(mode):
        raise UnsupportedFileError(f"{path} is a symbolic link", hint="name the model itself")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnsupportedFileError(f"{path} is neither a regular file nor a directory")
    return stat.S_ISREG(mode)


def model_name(path: Path) -> str:
    """The subject name model_signing gives a model: the last component of its path."""
    name = path.name
    if not name or name == "..":
        name = os.path.basename(path.resolve())
    return unicodedata.normalize("NFC", name)


def signature_inside(model: Path, signature: Path) -> str | None:
    """The signature's path relative to a directory model, when it lies inside it."""
    if not model.is_dir():
        return None
    try:
        relative = signature.resolve().relative_to(model.resolve())
    except ValueError:
        return None
    if not relative.parts:
        raise InputError(f"the signature {signature} cannot be the model directory itself")
    return unicodedata.normalize("NFC", relative.as_posix())


def _covered(path: str, ignore_paths: Sequence[str]) -> bool:
    """model_signing's rule: a path is left out if it is, or lies under, an ignored path."""
    return any(path == p or path.startswith(p + "/") for p in ignore_paths)


def _pattern(path: str) -> str:
    """``path`` (root-relative) as a gitignore pattern matching exactly it, at the root."""
    return "/" + _GITIGNORE_SPECIAL.sub(r"\\\1", path)


def walker_skips(root: Path, ignore_paths: Sequence[str]) -> list[str]:
    """Directories under ``root`` the walker never hashes (``.git/``, ``.provenance/`` at any
    depth) that ``ignore_paths`` does not already leave out, as root-relative paths."""
    found: list[str] = []
    for directory, subdirectories, _ in os.walk(root):  # links to directories are not entered
        base = os.path.relpath(directory, root)
        kept = []
        for name in sorted(subdirectories):
            relative = unicodedata.normalize("NFC", name if base == "." else f"{base}/{name}")
            relative = relative.replace(os.sep, "/")
            if _covered(relative, ignore_paths):
                continue
            # A link named .git is no directory the walker skips: it refuses it, as
            # model_signing does, so it must not be quietly left out here.
            if name in _WALKER_SKIPS and not os.path.islink(os.path.join(directory, name)):
                found.append(relative)
            else:
                kept.append(name)
        subdirectories[:] = kept
    return found


def hash_model(
    path: Path, ignore_paths: Sequence[str] = (), *, progress: Progress | None = None
) -> tuple[OmsResource, ...]:
    """The OMS resources of the model at ``path``: a file is one resource named ``.``; a
    directory lists its files (``ignore_paths`` left out), by root-relative POSIX path."""
    if is_single_file(path):
        return (OmsResource(SINGLE_FILE, digest_path(path, progress=progress).digest.value),)
    rules = IgnoreRules(BUILTIN_PATTERNS + tuple(_pattern(p) for p in ignore_paths))
    manifest = build_manifest(path, ignore=rules, progress=progress)
    # Empty directories are manifest entries but not OMS resources; links are refused above.
    return tuple(
        OmsResource(e.path, e.digest) for e in manifest.entries if isinstance(e, FileEntry)
    )


def sign_model(
    path: Path, signer: Signer, *, signature: Path, progress: Progress | None = None
) -> Bundle:
    """Hash the model at ``path`` and sign its OMS statement; ``signature`` is where the
    bundle will be written (left out of the model when it lies inside it).

    The bundle is verified under the signer's public key before it is returned, so a signer
    that produced a bad signature is caught here.
    """
    if signer.public_key.sslib.scheme != OMS_KEY_SCHEME:
        raise InputError(
            "OpenSSF model signatures need an ECDSA P-256 key (model_signing cannot verify "
            f"{signer.public_key.sslib.scheme})",
            hint="provenance key generate NAME --type ecdsa-p256",
        )
    ignore = list(GIT_PATHS)
    if is_single_file(path):
        if signature.resolve() == path.resolve():
            raise InputError(f"the signature {signature} would overwrite the model")
    else:
        if (inside := signature_inside(path, signature)) is not None:
            ignore.append(inside)
        ignore += walker_skips(path, ignore)
    resources = hash_model(path, ignore, progress=progress)
    if not resources:
        raise InputError(f"{path} holds no files to sign")
    statement = model_statement(model_name(path), resources, ignore_paths=ignore)
    bundle = Bundle.sign_statement(statement, signer, pem_hint=True)
    bundle.verify_with_key(signer.public_key)
    return bundle


def read_signature(path: Path) -> Bundle:
    """Read a signature file (a Sigstore bundle); nothing about it is verified yet."""
    data = read_limited(path, MAX_BUNDLE_BYTES, what="signature")
    return Bundle.from_bytes(data, source=str(path))


def _names(label: str, names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
    return f"{label} {shown}{more}"


def compare(expected: Sequence[OmsResource], actual: Sequence[OmsResource]) -> str | None:
    """None if the two lists name the same files with the same digests, else what differs."""
    old, new = dict(expected), dict(actual)
    changed = sorted(n for n in old.keys() & new.keys() if old[n] != new[n])
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    parts = [
        _names(label, names)
        for label, names in (("changed", changed), ("added", added), ("removed", removed))
        if names
    ]
    return "; ".join(parts) if parts else None


def verify_model(
    path: Path,
    bundle: Bundle,
    key: PublicKey,
    *,
    signature: Path | None = None,
    progress: Progress | None = None,
) -> VerifiedModel:
    """Verify that ``bundle`` is an OMS signature by ``key`` over exactly the model at ``path``.

    ``signature`` is where the bundle was read from: inside a directory model it is left out.
    Raises :class:`~provenance.signing.keys.SignatureError` or another
    :class:`~provenance.errors.RefusedError` for a signature that does not hold,
    :class:`ModelMismatchError` naming the files that differ, and an
    :class:`~provenance.errors.InputError` for malformed or unreadable input.
    """
    try:
        statement = bundle.verify_with_key(key, hint_must_match=False)
    except SignatureError as e:
        if key.named_by(bundle.key_hint):
            raise
        hint = (bundle.key_hint or "?")[:16]
        raise SignatureError(
            f"not signed by this public key ({key.key_id[:16]}): the bundle names key {hint}",
            hint="verify with the public key of the signer",
        ) from e
    signed = parse_statement(statement)
    is_file = is_single_file(path)
    if signed.single_file and not is_file:
        raise RefusedError(f"the signature is of a single file, and {path} is a directory")
    if not signed.single_file and is_file:
        raise RefusedError(f"the signature is of a directory, and {path} is a file")
    ignore = list(signed.ignore_paths)
    if not is_file:
        if signature is not None and (inside := signature_inside(path, signature)) is not None:
            ignore.append(inside)
        unchecked = [
            r.name
            for r in signed.resources
            if any(part in _WALKER_SKIPS for part in r.name.split("/")[:-1])
        ]
        unchecked += walker_skips(path, ignore)
        if unchecked:
            raise RefusedError(
                _names("cannot check files inside .git/ or .provenance/ directories:", unchecked),
                hint="sign the model without them (model_signing --ignore-paths)",
            )
    actual = hash_model(path, ignore, progress=progress)
    if is_file and actual != signed.resources:
        raise ModelMismatchError(
            f"{path} does not match its signature: its sha256 is {actual[0].digest}, "
            f"the signature's is {signed.resources[0].digest}"
        )
    if differences := compare(signed.resources, actual):
        raise ModelMismatchError(f"{path} does not match its signature: {differences}")
    return VerifiedModel(signed, bundle)


__all__ = [
    "DEFAULT_SIGNATURE",
    "GIT_PATHS",
    "ModelMismatchError",
    "VerifiedModel",
    "compare",
    "hash_model",
    "is_single_file",
    "model_name",
    "read_signature",
    "sign_model",
    "signature_inside",
    "verify_model",
    "walker_skips",
]

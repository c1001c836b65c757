"""What several commands share: the project, how to name a subject, how to sign."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.digest import Digest, Manifest
    from provenance.ledger import Ledger, VerifiedBy
    from provenance.project import Project
    from provenance.signing.keys import KeySigner, Signer
    from provenance.statement import Statement

DEFAULT_KEY = "default"
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def print_json(document: Any) -> None:
    """Stable, readable JSON on standard output."""
    print(json.dumps(document, indent=2, ensure_ascii=False))


def project_and_ledger() -> tuple[Project, Ledger]:
    """The project around the working directory and its ledger (which must exist)."""
    from provenance.ledger import Ledger
    from provenance.project import require_project

    project = require_project()
    if not project.ledger_path.is_file():
        raise InputError(
            f"{project.state_dir} has no ledger", hint="run 'provenance init' to create one"
        )
    return project, Ledger(project.ledger_path)


def subject(text: str) -> tuple[Digest, Manifest | None]:
    """``text`` as a digest (``sha256:<hex>``, or bare hex) or, failing that, a path to hash.

    For a directory the manifest it was hashed into comes back too, so that callers needing
    its files do not hash it a second time.
    """
    from provenance.digest import Digest, digest_path
    from provenance.errors import Error

    if not text:
        raise UsageError("an empty subject names nothing", hint="give a digest or a path")
    if ":" in text or re.fullmatch(r"[0-9a-fA-F]{64}", text):
        try:
            return Digest.parse(text), None
        except Error:
            if not Path(text).exists():
                raise
    result = digest_path(Path(text))
    return result.digest, result.manifest


def subject_digest(text: str) -> Digest:
    """The digest :func:`subject` names."""
    return subject(text)[0]


def check_key_name(name: str) -> str:
    """Key names become file names: a plain name, no path."""
    if not KEY_NAME.fullmatch(name):
        raise UsageError(f"invalid key name {name!r}", hint="use letters, digits, '.', '_', '-'")
    return name


def add_signing_options(parser: argparse.ArgumentParser) -> None:
    """--key / --public-key / --sigstore, for commands that sign."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--key",
        metavar="FILE|URI",
        help="private key file, or a KMS/HSM signer URI (default: the project's default key)",
    )
    group.add_argument("--sigstore", action="store_true", help="sign keylessly (needs network)")
    parser.add_argument(
        "--public-key", type=Path, metavar="FILE", help="the public key of a signer URI"
    )


SignFunction = Callable[["Statement"], "tuple[Bundle, VerifiedBy]"]


def sign(
    statement: Statement, args: argparse.Namespace, project: Project
) -> tuple[Bundle, VerifiedBy]:
    """Sign ``statement`` as the options say; return the bundle and what verifies it."""
    return prepare_signer(args, project)(statement)


def prepare_signer(args: argparse.Namespace, project: Project) -> SignFunction:
    """The signing function the options name, with its key loaded now.

    Loading first matters for long commands: a missing key or a wrong passphrase is reported
    before a training run starts, not after it ends. Key-signed bundles are verified again
    under the public key before they are returned: a signer that produced a bad signature is
    caught here, not by the next verifier.
    """
    from provenance.ledger import KeylessSigner

    if args.sigstore:
        from provenance.signing import sigstore

        def keyless(statement: Statement) -> tuple[Bundle, VerifiedBy]:
            bundle = sigstore.sign_statement(statement)
            identity, issuer = sigstore.certificate_identity(bundle)
            sigstore.verify(bundle, sigstore.Identity(identity, issuer), offline=False)
            return bundle, KeylessSigner(identity, issuer)

        return keyless
    signer = load_signer(args.key, args.public_key, project)
    from provenance.bundle import sign_checked

    return lambda statement: (sign_checked(statement, signer), signer.public_key)


def load_signer(spec: str | None, public_key: Path | None, project: Project | None) -> Signer:
    """The key signer ``--key`` names: a private key file, a KMS/HSM signer URI (with
    ``--public-key``), or by default the project's ``keys/default.key``."""
    from provenance.signing.keys import PublicKey, RemoteSigner

    if spec is None:
        path = project.keys_dir / f"{DEFAULT_KEY}.key" if project is not None else None
        if path is None or not path.is_file():
            raise UsageError(
                "no --key given and the project has no default key",
                hint="give --key FILE, or run 'provenance key generate default'",
            )
        return _load_key(path)
    if re.match(r"^[a-z][a-z0-9+.-]*:", spec) and not Path(spec).exists():
        if public_key is None:
            raise UsageError("a signer URI needs --public-key FILE")
        return RemoteSigner(spec, PublicKey.from_file(public_key))
    if public_key is not None:
        raise UsageError("--public-key is only for a signer URI")
    return _load_key(Path(spec))


def _load_key(path: Path) -> KeySigner:
    """A private key file; asks for the passphrase on a terminal when the key needs one."""
    import getpass

    from provenance.signing.keys import KeySigner, PassphraseRequiredError

    try:
        return KeySigner.from_file(path)
    except PassphraseRequiredError:
        if not sys.stdin.isatty():
            raise
        passphrase = getpass.getpass(f"passphrase for {path}: ")
        return KeySigner.from_file(path, passphrase.encode("utf-8"))


def write_out(data: bytes, output: Path | None) -> None:
    """To a file (atomically) or standard output."""
    from provenance.fsutil import atomic_write

    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write(output, data)


def reference_time(text: str | None) -> dt.datetime | None:
    """``--at TIME`` (RFC 3339 with a zone) as a datetime; None for now."""
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time") from e
    if parsed.tzinfo is None:
        raise UsageError(f"--at {text!r} needs a time zone (e.g. Z)")
    return parsed


def open_evidence(bundle: Path | None) -> tuple[Any, Ledger | None]:
    """Evidence from ``--bundle`` (a release or export file), else from the project's ledger,
    which is returned too so that the caller closes it."""
    from provenance.verify.evidence import BundleFileEvidence, LedgerEvidence

    if bundle is not None:
        return BundleFileEvidence(bundle), None
    _, ledger = project_and_ledger()
    return LedgerEvidence(ledger), ledger


def add_evidence_options(parser: argparse.ArgumentParser) -> None:
    """--bundle, --at, --offline: where evidence comes from and how it is judged."""
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE.jsonl",
        help="evidence from this file ('provenance release' or 'ledger export') instead of "
        "the ledger",
    )
    parser.add_argument(
        "--at", metavar="TIME", help="judge ages at this RFC 3339 time (default: now)"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="verify Sigstore bundles against the trust roots shipped with sigstore-python, "
        "without refreshing them (otherwise an unreachable TUF repository is a refusal)",
    )

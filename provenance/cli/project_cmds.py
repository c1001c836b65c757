"""``provenance init``, ``provenance key generate`` and ``provenance key list``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from provenance.cli.common import DEFAULT_KEY, check_key_name, print_json
from provenance.errors import EXIT_OK, InputError, UsageError

STARTER_POLICY = """\
# ml-provenance policy: who is trusted to attest what.
# Written by 'provenance init'. Nothing is trusted unless it is listed here.
version: 1
roots:
  project:
    # The key 'provenance init' generated for this project (its id: {key_id}).
    key: keys/{key_name}.pub
rules:
  dataset:
    # Datasets must carry a dataset attestation signed by the project key.
    require:
      - predicateType: https://ml-provenance.dev/attestation/dataset/v1
        signedBy: [project]
  model:
    # Trained models must carry training provenance from 'provenance run' (SLSA v1, the
    # training buildType) signed by the project key; the datasets and environment it names
    # are then verified in turn.
    require:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy: [project]
        conditions:
          - predicate.buildDefinition.buildType == "https://ml-provenance.dev/buildtypes/training/v1"
  environment:
    # A training environment named by provenance (its SBOM digest) must carry its SBOM
    # signed by the project key ('provenance env sbom').
    require:
      - predicateType: https://cyclonedx.org/bom
        signedBy: [project]
# Training provenance recorded from uncommitted or unversioned code is refused; set to true
# only while experimenting.
allowDirty: false
"""


# Private keys must never be committed, and the ledger changes with every attestation (it
# would make every work tree dirty); the policy and public keys are meant to be reviewed.
STATE_GITIGNORE = """\
# Written by 'provenance init'.
keys/*.key
ledger.db*
ledger.head*
cache/
"""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add init and key sub-commands."""
    init = commands.add_parser(
        "init",
        parents=[common],
        help="create .provenance/ here: ledger, a key pair, a starter policy",
        description="Create a project in the working directory: .provenance/ with an empty "
        "ledger, a P-256 key pair (keys/default.key, encrypted when "
        "PROVENANCE_KEY_PASSPHRASE is set) and policy.yaml trusting that key. An existing "
        "project is never overwritten.",
    )
    init.add_argument("--no-key", action="store_true", help="do not generate a key pair")
    init.add_argument("--key-type", choices=["ecdsa-p256", "ed25519"], default="ecdsa-p256")
    init.set_defaults(handler=run_init)

    key = commands.add_parser("key", help="generate or list the project's keys")
    actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        parents=[common],
        help="create a key pair in .provenance/keys/",
        description="Create NAME.key (mode 0600; encrypted when PROVENANCE_KEY_PASSPHRASE is "
        "set) and NAME.pub in the project's keys directory. Existing keys are never "
        "overwritten.",
    )
    generate.add_argument("name", metavar="NAME")
    generate.add_argument("--type", choices=["ecdsa-p256", "ed25519"], default="ecdsa-p256")
    generate.set_defaults(handler=run_key_generate)
    listing = actions.add_parser("list", parents=[common], help="list the project's keys")
    listing.add_argument("--format", choices=["text", "json"], default="text")
    listing.set_defaults(handler=run_key_list)


def _passphrase() -> bytes | None:
    from provenance.signing.keys import PASSPHRASE_ENV

    value = os.environ.get(PASSPHRASE_ENV)
    if value == "":
        raise UsageError(
            f"{PASSPHRASE_ENV} is set but empty",
            hint="unset it to write an unencrypted key, or give a passphrase",
        )
    return value.encode("utf-8") if value else None


def _generate(keys_dir: Path, name: str, key_type: str) -> str:
    from provenance.signing.keys import KeySigner, KeyType

    signer = KeySigner.generate(KeyType(key_type))
    keys_dir.mkdir(parents=True, exist_ok=True)
    signer.save(keys_dir / f"{name}.key", passphrase=_passphrase())
    return signer.public_key.key_id


def run_init(args: argparse.Namespace) -> int:
    """Create a project in the working directory."""
    from provenance.fsutil import atomic_write
    from provenance.ledger import Ledger
    from provenance.project import Project

    project = Project(Path.cwd())
    try:
        project.state_dir.mkdir()
    except FileExistsError as e:
        raise InputError(
            f"{project.state_dir} already exists; a project is never overwritten"
        ) from e
    except OSError as e:
        raise InputError(f"cannot create {project.state_dir}: {e.strerror}") from e
    project.keys_dir.mkdir()
    atomic_write(project.state_dir / ".gitignore", STATE_GITIGNORE.encode())
    Ledger(project.ledger_path).close()
    print(f"created {project.state_dir}")
    print(f"  ledger  {project.ledger_path}")
    if not args.no_key:
        key_id = _generate(project.keys_dir, DEFAULT_KEY, args.key_type)
        policy = STARTER_POLICY.format(key_id=key_id, key_name=DEFAULT_KEY)
        atomic_write(project.state_dir / "policy.yaml", policy.encode())
        print(f"  key     {project.keys_dir / DEFAULT_KEY}.key (id {key_id[:16]})")
        print(f"  policy  {project.state_dir / 'policy.yaml'} (trusts that key)")
    return EXIT_OK


def run_key_generate(args: argparse.Namespace) -> int:
    """Create a named key pair in the project."""
    from provenance.project import require_project

    project = require_project()
    name = check_key_name(args.name)
    key_id = _generate(project.keys_dir, name, args.type)
    print(f"{project.keys_dir / name}.key  id {key_id}")
    return EXIT_OK


def run_key_list(args: argparse.Namespace) -> int:
    """List the project's public keys and whether their private halves are present."""
    from provenance.project import require_project
    from provenance.signing.keys import PublicKey

    project = require_project()
    keys = []
    for public in sorted(project.keys_dir.glob("*.pub")):
        key = PublicKey.from_file(public)
        keys.append(
            {
                "name": public.stem,
                "id": key.key_id,
                "type": key.sslib.scheme,
                "private": public.with_suffix(".key").is_file(),
            }
        )
    if args.format == "json":
        print_json(keys)
    else:
        for k in keys:
            private = "private+public" if k["private"] else "public only"
            print(f"{k['name']:<16} {k['type']:<20} {k['id']}  ({private})")
        if not keys:
            print("no keys (run 'provenance key generate NAME')")
    return EXIT_OK

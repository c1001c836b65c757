"""Fuzz targets: every parser of untrusted input, and what reads its result, as ``bytes -> None``.

Each target feeds its bytes to one parser (and to the code that consumes what it returns) and
lets exceptions escape: the contract under test is that only :class:`provenance.errors.Error`
subclasses ever do -- a malformed input is an error with a one-line diagnostic (exit 2) or a
refusal (exit 1), never a ``KeyError``, a ``RecursionError`` or an unbounded allocation (the
CLI's exit 3). :func:`run` applies the contract. The hypothesis tests in this directory and
``bench/fuzz.py`` (atheris, or hypothesis for longer) share these targets and seeds; the list
is documented in ``README.md`` beside this file.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from packaging.version import Version

from provenance.bundle import Bundle
from provenance.deps import osv
from provenance.deps.record import parse_record as parse_record_file
from provenance.digest.canonical import loads_strict
from provenance.digest.manifest import Manifest
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE, DsseSignature, Envelope
from provenance.errors import Error
from provenance.guard.pickle_scan import scan_bytes
from provenance.policy.load import parse_policy
from provenance.policy.model import Policy
from provenance.predicates.dataset import DATASET_PREDICATE, parents_of
from provenance.predicates.oms import parse_statement, vouched_digests
from provenance.predicates.training import source_of
from provenance.signing.keys import KeySigner
from provenance.statement import Statement
from provenance.verify.core import inputs_of, signed_time, verify
from provenance.verify.evidence import JsonLinesEvidence

Target = Callable[[bytes], None]
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class EscapedError(AssertionError):
    """An exception that is not a :class:`provenance.errors.Error` escaped a target."""


def run(target: Target, data: bytes) -> None:
    """Call ``target``; documented errors are fine, anything else fails (with its cause)."""
    try:
        target(data)
    except Error as e:
        text = e.diagnostics()
        if "\n" in text:
            raise EscapedError(f"a diagnostic of more than one line: {text!r}") from e
    except Exception as e:
        raise EscapedError(f"{type(e).__name__} escaped: {e}"[:2000]) from e


# -- the targets -----------------------------------------------------------------------


def target_loads_strict(data: bytes) -> None:
    loads_strict(data, what="fuzz")
    loads_strict(data, what="fuzz", allow_floats=True)


def _consume(statement: Statement) -> None:
    """What the verifier, ledger and reports do with a statement once it is parsed."""
    statement.to_bytes()
    for subject in statement.subjects:
        subject.digests()
    vouched_digests(statement)
    signed_time(statement)
    inputs_of(statement)
    source_of(statement)
    if statement.predicate_type == DATASET_PREDICATE:
        parents_of(statement)
    if statement.predicate_type == "https://model_signing/signature/v1.0":
        parse_statement(statement)


def target_statement(data: bytes) -> None:
    _consume(Statement.from_bytes(data))


def target_bundle(data: bytes) -> None:
    bundle = Bundle.from_bytes(data)
    assert isinstance(bundle.attestation_id, str)
    bundle.log_time()
    if bundle.envelope is not None and bundle.envelope.payload_type == IN_TOTO_PAYLOAD_TYPE:
        _consume(bundle.statement)
    if not bundle.keyless:
        bundle.verify_with_key(_signer().public_key)


def target_manifest(data: bytes) -> None:
    manifest = Manifest.from_bytes(data)
    assert manifest.root_digest.value
    manifest.diff(manifest)
    seed = _seed_manifest()
    if seed.algorithm is manifest.algorithm:
        seed.diff(manifest)


def target_evidence(data: bytes) -> None:
    evidence = JsonLinesEvidence(data, source="fuzz")
    for manifest in evidence.manifests():
        evidence.manifest(manifest.root_digest)
    policy = _policy()
    for digests in list(evidence._by_subject)[:8]:
        verify(digests, evidence, policy, at=AT)


def target_signed_statement(data: bytes) -> None:
    """Any payload, *validly signed* by a key the policy trusts, judged by the verifier: the
    code behind the signature check (conditions, inputs, clean source, OMS, SBOM
    consistency, ages) must refuse or pass, never crash, whatever the signed bytes say."""
    signer = _signer()
    envelope = Envelope(data, IN_TOTO_PAYLOAD_TYPE, ())
    signature = DsseSignature(signer.sign(envelope.signed_bytes()), signer.public_key.key_id)
    envelope = Envelope(data, IN_TOTO_PAYLOAD_TYPE, (signature,))
    line = json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": signer.public_key.key_id}},
            "dsseEnvelope": envelope.to_json(),
        }
    ).encode()
    evidence = JsonLinesEvidence(line + b"\n" + _seed_release(), source="fuzz")
    policy = _policy()
    for digest in list(evidence._by_subject)[:8]:
        verify(digest, evidence, policy, at=AT)


def target_policy(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    with tempfile.TemporaryDirectory() as base:
        parse_policy(text, base=Path(base))


def target_pickle(data: bytes) -> None:
    result = scan_bytes(data)
    assert result.format in {"zip", "npy", "tar", "safetensors", "pickle", "unknown"}


def target_osv(data: bytes) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return  # the database reader refuses it as OsvError before parse_record
    record = osv.parse_record(document, what="fuzz")
    record.description()
    record.severities()
    for affected in record.affected:
        name = affected.canonical_name
        osv.fixed_versions([record], name)
        for version in ("0", "1.0", "2.0.post1"):
            osv.affects(record, name, Version(version))


def target_record(data: bytes) -> None:
    for entry in parse_record_file(data, what="RECORD"):
        assert entry.path
        assert entry.size is None or entry.size >= 0


TARGETS: Mapping[str, Target] = {
    "loads_strict": target_loads_strict,
    "statement": target_statement,
    "bundle": target_bundle,
    "manifest": target_manifest,
    "evidence": target_evidence,
    "signed_statement": target_signed_statement,
    "policy": target_policy,
    "pickle": target_pickle,
    "osv": target_osv,
    "record": target_record,
}


# -- seeds -----------------------------------------------------------------------------


@cache
def _signer() -> KeySigner:
    """A fixed Ed25519 key, so that runs are reproducible (Ed25519 signs deterministically)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return KeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


@cache
def _world() -> tuple[dict[str, bytes], bytes, Manifest]:
    """Valid statements (by role), a release and its manifest, signed with the fixed key."""
    from tests.adversarial.world import build_world

    with tempfile.TemporaryDirectory() as root:
        world = build_world(Path(root), _signer())
        statements = {role: st.to_bytes() for role, st in world.statements.items()}
        return statements, world.release, world.manifest


def _seed_release() -> bytes:
    return _world()[1]


def _seed_manifest() -> Manifest:
    return _world()[2]


@cache
def _policy() -> Policy:
    from tests.adversarial.world import load_policy_for

    return load_policy_for(_signer())


def _pickles() -> list[bytes]:
    state = {"weights": [1.0, 2.0], "layers": ("a", "b"), "step": 3}
    seeds = [pickle.dumps(state, protocol=p) for p in range(6)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(state, protocol=2))
        archive.writestr("archive/data/0", b"\x00" * 16)
    seeds.append(buffer.getvalue())
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    seeds.append(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 8)
    meta = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    seeds.append(len(meta).to_bytes(8, "little") + meta + b"\0" * 4)
    seeds.append(b"cos\nsystem\n(S'echo hi'\ntR.")
    return seeds


def warm_up() -> None:
    """Build the seeds and the policy now. Compiling CEL raises the interpreter's recursion
    limit once (celpy does), which hypothesis must not see happen inside a test."""
    _world()
    _policy()


def seeds(name: str) -> list[bytes]:  # noqa: PLR0911
    """Valid (or nearly valid) inputs for target ``name``, for mutation-based fuzzing."""
    statements, release, manifest = _world()
    lines = release.splitlines()
    if name in ("loads_strict", "statement", "signed_statement"):
        return list(statements.values())
    if name == "bundle":
        return [line for line in lines if b"dsseEnvelope" in line]
    if name == "manifest":
        return [manifest.canonical_bytes]
    if name == "evidence":
        return [release, b"\n".join(lines[:2])]
    if name == "policy":
        from tests.adversarial.world import POLICY, policy_text

        return [policy_text(_signer()).encode(), POLICY.encode()]
    if name == "pickle":
        return _pickles()
    if name == "osv":
        found = [p.read_bytes() for p in sorted((FIXTURES / "osv").glob("*.json"))]
        return found or [b'{"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": []}']
    if name == "record":
        return [
            b"pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
            b"pkg-1.0.dist-info/RECORD,,\n"
            b'"../../bin/x",sha512=' + base64.urlsafe_b64encode(b"\0" * 64).rstrip(b"=") + b",12\n"
        ]
    raise KeyError(name)


def json_documents(name: str) -> list[Any]:
    """The seeds of a JSON target as documents, for structure-aware mutation."""
    found = []
    for seed in seeds(name):
        for line in seed.splitlines() or [seed]:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


JSON_TARGETS = frozenset(
    {"loads_strict", "statement", "signed_statement", "bundle", "manifest", "osv"}
)

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
import contextlib
import datetime as dt
import io
import json
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from packaging.version import Version

from provenance.bundle import Bundle
from provenance.deps import osv
from provenance.deps.record import parse_record as parse_record_file
from provenance.digest.algorithms import Digest
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
from provenance.statement import Statement, check_json
from provenance.verify.core import inputs_of, signed_time, verify
from provenance.verify.evidence import JsonLinesEvidence

if TYPE_CHECKING:
    from provenance.guard.dataset import VerifiedDataset
    from provenance.ledger import Ledger
    from provenance.screen.samples import Samples
    from provenance.screen.schema import Schema

Target = Callable[[bytes], None]
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class EscapedError(AssertionError):
    """An exception that is not a :class:`provenance.errors.Error` escaped a target."""


def run(target: Target, data: bytes) -> None:
    """Call ``target``; documented errors are fine, anything else fails (with its cause).

    A warning counts as an exception, as under ``pytest -W error``: bytes that make a parser
    warn (numpy's overflow in a cast, a legacy header) are bytes its code did not expect, and
    the long runs must fail on them as the CI run does.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
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
    evidence = JsonLinesEvidence(_signed_line(data) + b"\n" + _seed_release(), source="fuzz")
    policy = _policy()
    for digest in list(evidence._by_subject)[:8]:
        verify(digest, evidence, policy, at=AT)


def _signed_line(payload: bytes) -> bytes:
    """A key-signed bundle (one JSON line) of ``payload``, signed with the fixed key."""
    signer = _signer()
    envelope = Envelope(payload, IN_TOTO_PAYLOAD_TYPE, ())
    signature = DsseSignature(signer.sign(envelope.signed_bytes()), signer.public_key.key_id)
    envelope = Envelope(payload, IN_TOTO_PAYLOAD_TYPE, (signature,))
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": signer.public_key.key_id}},
            "dsseEnvelope": envelope.to_json(),
        }
    ).encode()


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


# -- screening and evaluation ------------------------------------------------------------

TABLE_SCHEMA = b"""\
version: 1
format: table
label: label
labels: [a, b]
nullValues: ["", NA]
columns:
  n: {type: int, min: -1000, max: 1000}
  x: {type: float, min: -100, max: 100, nulls: true}
  flag: {type: bool}
  colour: {type: category, values: [red, green]}
  note: {type: string, nulls: true}
  label: {type: category, values: [a, b]}
checks:
  drift: {bins: 4}
"""
ARRAYS_SCHEMA = b"""\
version: 1
format: arrays
labels: ["0", "1", "2"]
array: {shape: [2, 2], dtype: [uint8, float32], min: 0, max: 255}
npz: {features: x, labels: y}
"""
FOLDERS_SCHEMA = b"""\
version: 1
format: folders
labels: ["0", "1"]
array: {shape: [2, 2], dtype: uint8, min: 0, max: 255, nulls: false}
splits: [train]
checks:
  trigger_patterns: {windows: [1, 2], min_count: 2}
  outliers: {z: 3, iqr: 2.5, perClass: false}
"""
EVALUATED = Digest.parse("sha256:" + "e" * 64)  # the model being evaluated (never a baseline)


@cache
def _schema(text: bytes) -> Schema:
    from provenance.screen.schema import read_schema

    return read_schema(text, source="fuzz schema")


@contextlib.contextmanager
def _dataset(files: Mapping[str, bytes]) -> Iterator[VerifiedDataset]:
    """``files`` written to a temporary directory, behind a hash-on-read handle."""
    from provenance.digest.build import build_manifest
    from provenance.guard.dataset import VerifiedDataset

    with tempfile.TemporaryDirectory() as base:
        root = Path(base)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        yield VerifiedDataset.from_manifest(root, build_manifest(root, workers=1))


def _consume_samples(samples: Samples, schema: Schema) -> None:
    """What screening does first with what a reader returns: consistency, the schema check,
    and the drift profile (which travels in the attestation, so it must be valid JSON)."""
    from provenance.screen.drift import build_profile, check_drift, check_profile
    from provenance.screen.validation import check_schema

    n = len(samples)
    assert samples.numeric.shape == (n, len(samples.numeric_names)), samples.numeric.shape
    assert len(samples.files) == len(samples.rows) == len(samples.keys) == n
    assert samples.labels is None or samples.labels.shape == (n,)
    assert all(v.index is None or 0 <= v.index < n for v in samples.violations)
    check_schema(samples, schema.checks["schema"])
    profile = build_profile(samples, int(schema.checks["drift"].options["bins"]))
    check_json(profile, "the screening profile")
    check_drift(samples, schema.checks["drift"], check_profile(profile), "itself")


def target_screen_schema(data: bytes) -> None:
    """The schema file's bytes, then the schema judging a small valid dataset."""
    from provenance.screen.engine import load_samples
    from provenance.screen.schema import read_schema

    schema = read_schema(data, source="fuzz")
    for spec in schema.checks.values():
        spec.judge(0.5)
        check_json(spec.thresholds(), "thresholds")
    files = {"t.csv": _seed_csv()} if schema.format == "table" else {}
    if schema.format == "arrays":
        files = {"x.npz": _seed_npz()}
    if schema.format == "folders":
        files = {f"train/{i % 2}/{i}.npy": _npy(i) for i in range(4)}
    with _dataset(files) as handle:
        _consume_samples(load_samples(handle, schema), schema)


def _screen_table(name: str, data: bytes) -> None:
    from provenance.screen.tables import load_table

    schema = _schema(TABLE_SCHEMA)
    with _dataset({name: data, "b.csv": _seed_csv()}) as handle:
        _consume_samples(load_table(handle, schema), schema)


def target_screen_csv(data: bytes) -> None:
    _screen_table("a.csv", data)


def target_screen_parquet(data: bytes) -> None:
    _screen_table("a.parquet", data)


def target_screen_arrays(data: bytes) -> None:
    """A ``.npy``/``.npz`` file in the ``arrays`` layout, then as one sample of ``folders``."""
    from provenance.screen.arrays import load_array, load_arrays

    load_array(data, "fuzz")
    name = "x.npz" if data.startswith(b"PK") else "x.npy"
    schema = _schema(ARRAYS_SCHEMA)
    with _dataset({name: data, "y.npz": _seed_npz()}) as handle:
        _consume_samples(load_arrays(handle, schema), schema)
    schema = _schema(FOLDERS_SCHEMA)
    with _dataset({"train/0/a.npy": data, "train/1/b.npy": _npy(1)}) as handle:
        _consume_samples(load_arrays(handle, schema), schema)


def target_npy_decoder(data: bytes) -> None:
    """An evaluation sample's bytes (a ``.npy`` array) through the default decoder."""
    import torch

    from provenance.evaluate.data import DefaultDecoder

    tensor, label = DefaultDecoder.for_files(["0/a.npy", "1/x.npy"], ("0", "1"))(data, "1/x.npy")
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert label == 1


def target_drift_profile(data: bytes) -> None:
    """A reference profile (the JSON a screening attestation signs) judging a dataset."""
    from provenance.screen.drift import check_drift, check_profile

    profile = check_profile(loads_strict(data, what="profile", allow_floats=True))
    samples = _seed_samples()
    check_drift(samples, _schema(TABLE_SCHEMA).checks["drift"], profile, "fuzz")


def target_screening(data: bytes) -> None:
    """A screening statement read back: its summary in reports, its profile for drift."""
    from provenance.report.lineage import _summary, clean
    from provenance.screen.drift import check_drift, check_profile

    statement = Statement.from_bytes(data)
    for key, value in _summary(statement):
        clean(key, 40)
        clean(value, 160)
    profile = statement.to_json()["predicate"].get("profile")  # as `screen --reference` does
    if profile is not None:
        reference = check_profile(profile)
        check_drift(_seed_samples(), _schema(TABLE_SCHEMA).checks["drift"], reference, "fuzz")


class _OneEntry:
    """A ledger entry (``seq``, ``parsed()``) holding one bundle."""

    def __init__(self, bundle: Bundle) -> None:
        self.seq = 1
        self.bundle = bundle

    def parsed(self) -> Bundle:
        return self.bundle


class _OneEntryLedger:
    """What :func:`find_baseline` asks of a ledger: its evaluation entries."""

    def __init__(self, bundle: Bundle) -> None:
        self.entries = [_OneEntry(bundle)]

    def find(self, subject: Digest | None = None, predicate_type: str | None = None) -> list[Any]:
        return list(self.entries)


def target_evaluation(data: bytes) -> None:
    """A signed evaluation statement: the predicate reader, the baseline lookup and regression
    (trusting the fixed key), the report's summary and the ML-BOM's figures."""
    from provenance.evaluate.baseline import find_baseline, regression, trusted_for_evaluations
    from provenance.evaluate.metrics import Metrics, confusion_matrix, metrics_from_confusion
    from provenance.interop.mlbom import flatten_metrics
    from provenance.predicates.evaluation import model_name_of, read_evaluation
    from provenance.report.lineage import _summary, clean

    statement = Statement.from_bytes(data)
    for key, value in _summary(statement):
        clean(key, 40)
        clean(value, 160)
    flatten_metrics(statement.predicate.get("metrics"))
    name = model_name_of(statement)
    if name is None:
        return
    record = read_evaluation(statement)
    Metrics.from_json(record.metrics, what="fuzz")
    ledger = cast("Ledger", _OneEntryLedger(Bundle.from_bytes(_signed_line(data))))
    trusted = trusted_for_evaluations(_policy())
    baseline = find_baseline(ledger, model_name=name, model=EVALUATED, trusted=trusted)
    if record.model == EVALUATED:
        assert baseline is None  # an evaluation of the same model is never its baseline
    current = metrics_from_confusion(confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3))
    result = regression(current, baseline)
    check_json(result.to_json(), "regression")
    if baseline is not None:
        check_json(baseline.to_json(), "baseline")
        assert result.has_baseline


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
    "screen_schema": target_screen_schema,
    "screen_csv": target_screen_csv,
    "screen_parquet": target_screen_parquet,
    "screen_arrays": target_screen_arrays,
    "npy_decoder": target_npy_decoder,
    "drift_profile": target_drift_profile,
    "screening": target_screening,
    "evaluation": target_evaluation,
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


def _npy_bytes(array: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy(i: int) -> bytes:
    """One 2x2 uint8 sample for the folders layout."""
    import numpy as np

    return _npy_bytes(np.arange(4, dtype=np.uint8).reshape(2, 2) * (i + 1))


@cache
def _seed_npy() -> bytes:
    import numpy as np

    return _npy_bytes(np.linspace(0, 200, 12, dtype=np.float32).reshape(3, 2, 2))


def _npz(compressed: bool, **arrays: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


@cache
def _seed_npz() -> bytes:
    import numpy as np

    x = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    return _npz(False, x=x, y=np.array([0, 1, 2]))


def _arrays() -> list[bytes]:
    import numpy as np

    x = np.arange(16, dtype=np.uint8).reshape(4, 2, 2)
    return [
        _seed_npy(),
        _npy(3),
        _seed_npz(),
        _npz(True, x=x, y=np.array(["0", "1", "2", "2"])),
        _npz(False, x=x.astype(np.float32), y=np.array([[0], [1], [2], [2]])),
        _npy_bytes(np.array([[1.0, np.nan], [np.inf, -1.0]], dtype=np.float64)),
        _npy_bytes(np.zeros((2, 2), dtype=">i4")),
        _npy_bytes(np.array([[1 + 2j, 0], [3, 4j]], dtype=np.complex64)),
        _npy_bytes(np.array([[True, False], [False, True]])),
        _npy_bytes(np.array([[1.5, 2], [3, 65504]], dtype=np.float16)),
        _npy_bytes(np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])),
        _npz(False, x=np.array(["2026-01-01"] * 3, dtype="M8[D]"), y=np.array(["a", "b", "c"])),
    ]


_CSV_ROWS = [
    "n,x,flag,colour,note,label",
    "1,0.5,true,red,,a",
    "2,NA,false,green,hello,b",
    '3,-7.25,1,red,"quoted, with comma",a',
    "1,0.5,true,red,,a",
    "1000,99.9,no,green,x,b",
    "-4,1e-3,yes,red,NA,b",
]


@cache
def _seed_csv() -> bytes:
    return ("\r\n".join(_CSV_ROWS) + "\r\n").encode()


def parquet_bytes(columns: Mapping[str, Any], **options: Any) -> bytes:
    """A Parquet file of ``columns`` (pyarrow arrays), written with ``options``."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    pq.write_table(pa.table(dict(columns)), buffer, **options)
    return buffer.getvalue()


def _parquets() -> list[bytes]:
    import pyarrow as pa

    columns = {
        "n": pa.array([1, 2, 3, None], pa.int64()),
        "x": pa.array([0.5, None, -7.25, float("nan")], pa.float64()),
        "flag": pa.array([True, False, True, None]),
        "colour": pa.array(["red", "green", "red", "red"]).dictionary_encode(),
        "note": pa.array(["", "hello", None, "x"], pa.string()),
        "label": pa.array(["a", "b", "a", "b"]),
    }
    variants: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({"compression": "zstd", "row_group_size": 2}, {}),
        (
            {"compression": "snappy", "use_dictionary": False},
            {
                "when": pa.array([0, 1, 2, 3], pa.timestamp("s")),
                "day": pa.array([0, 1, 2, 3], pa.date32()),
                "n": pa.array([1, 2, 3, 4], pa.int8()),
            },
        ),
    ]
    return [parquet_bytes({**columns, **extra}, **options) for options, extra in variants]


@cache
def _seed_samples() -> Samples:
    """The seed CSV read as the table schema says: what reference profiles are judged with."""
    from provenance.screen.tables import load_table

    with _dataset({"a.csv": _seed_csv()}) as handle:
        return load_table(handle, _schema(TABLE_SCHEMA))


def _profiles() -> list[bytes]:
    from provenance.screen.arrays import load_arrays
    from provenance.screen.drift import build_profile

    found = [json.dumps(build_profile(_seed_samples(), 4)).encode()]
    with _dataset({"x.npz": _seed_npz()}) as handle:
        samples = load_arrays(handle, _schema(ARRAYS_SCHEMA))
    found.append(json.dumps(build_profile(samples, 10)).encode())
    return found


def _screenings() -> list[bytes]:
    from provenance.predicates.screening import screening_statement

    statements = _world()[0]
    dataset = Digest.parse("sha256:" + "d" * 64)
    profiled = screening_statement(
        dataset,
        name="table",
        predicate={
            "result": "WARNED",
            "tool": "ml-provenance fuzz",
            "schemaDigest": "sha256:" + "5" * 64,
            "dataset": {"name": "table", "format": "table", "samples": 6},
            "checks": {
                "schema": {"result": "WARNED", "metric": 0.5, "flagged": 3},
                "drift": {"result": "PASSED", "metric": 0.01, "flagged": 0},
            },
            "skipped": {"backdoor": "not asked for (--backdoor)"},
            "sanitize": {"count": 0},
            "attestedAt": "2026-03-01T12:00:00Z",
            "profile": json.loads(_profiles()[0]),
        },
    )
    return [statements["figures"], statements["verdict"], profiled.to_bytes()]


def _evaluations() -> list[bytes]:
    from provenance.evaluate.metrics import confusion_matrix, metrics_from_confusion
    from provenance.predicates.evaluation import evaluation_statement

    metrics = metrics_from_confusion(confusion_matrix([0, 1, 2, 2, 1], [0, 1, 2, 1, 1], 3))
    previous = Digest.parse("sha256:" + "a" * 64)
    found = [_world()[0]["evaluation"]]
    for model in (previous, EVALUATED):
        statement = evaluation_statement(
            model=model,
            model_name="model.bin",
            dataset=Digest.parse("sha256:" + "d" * 64),
            dataset_name="digits",
            dataset_path="test",
            metrics=metrics.to_json(),
            probe={"method": "corner-patch/v1", "collapse": 0.1, "suspected": False},
            baseline={
                "model": "sha256:" + "b" * 64,
                "attestation": "sha256:" + "c" * 64,
                "dataset": None,
                "evaluatedAt": "2026-01-01T00:00:00Z",
                "metrics": metrics.to_json(),
            },
            regression={"hasBaseline": True, "accuracy": 0.0, "worstClassRecall": -0.5},
            evaluated_at="2026-03-01T12:00:00Z",
            tools={"ml-provenance": "fuzz"},
            loader="model:load",
        )
        found.append(statement.to_bytes())
    return found


def warm_up() -> None:
    """Build the seeds and the policy now. Compiling CEL raises the interpreter's recursion
    limit once (celpy does), which hypothesis must not see happen inside a test."""
    _world()
    _policy()
    _seed_samples()
    import torch  # noqa: F401 - the decoder's first import is slow; not inside a test


def _schemas() -> list[bytes]:
    examples = Path(__file__).resolve().parents[2] / "examples" / "digits" / "schema.yaml"
    return [TABLE_SCHEMA, ARRAYS_SCHEMA, FOLDERS_SCHEMA, examples.read_bytes()]


def _csvs() -> list[bytes]:
    return [_seed_csv(), _seed_csv().replace(b"\r\n", b"\n"), b"\xef\xbb\xbf" + _seed_csv()]


_SCREEN_SEEDS: Mapping[str, Callable[[], list[bytes]]] = {
    "screen_schema": _schemas,
    "screen_csv": _csvs,
    "screen_parquet": _parquets,
    "screen_arrays": _arrays,
    "npy_decoder": _arrays,
    "drift_profile": _profiles,
    "screening": _screenings,
    "evaluation": _evaluations,
}


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
    if name in _SCREEN_SEEDS:
        return _SCREEN_SEEDS[name]()
    raise KeyError(name)


def json_documents(name: str) -> list[Any]:
    """The seeds of a JSON (or YAML) target as documents, for structure-aware mutation."""
    if name in YAML_TARGETS:
        import yaml

        return [yaml.safe_load(seed) for seed in seeds(name)]
    found = []
    for seed in seeds(name):
        for line in seed.splitlines() or [seed]:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


YAML_TARGETS = frozenset({"screen_schema"})  # JSON is YAML: mutated as JSON documents
JSON_TARGETS = frozenset(
    {
        "loads_strict",
        "statement",
        "signed_statement",
        "bundle",
        "manifest",
        "osv",
        "drift_profile",
        "screening",
        "evaluation",
        *YAML_TARGETS,
    }
)

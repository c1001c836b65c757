"""The attack catalogue: one test per attack on the chain, saying what the verifier catches.

Every test starts from the same valid chain (``world.py``: dataset, screening, environment,
training provenance, model signature, evaluation, all required by the policy) and changes it
the way an attacker would. Where the verifier does *not* refuse something, the test says so in
its docstring and asserts what it does instead, so that the limit is documented and pinned.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import struct
import tracemalloc
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from provenance.bundle import MEDIA_TYPE_V03, Bundle
from provenance.digest import Algorithm, Digest, build_manifest
from provenance.digest.manifest import Manifest
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE, DsseSignature, Envelope
from provenance.errors import Error, FormatError, UnsafePathError
from provenance.guard.pickle_scan import scan_bytes
from provenance.policy.model import Policy
from provenance.predicates.dataset import dataset_statement
from provenance.predicates.oms import OMS_PREDICATE
from provenance.predicates.training import SLSA_PROVENANCE_V1, Material
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
from provenance.verify.core import Report, verify
from provenance.verify.evidence import JsonLinesEvidence
from tests.adversarial.campaign import judge_cli
from tests.adversarial.world import (
    AT,
    DATA,
    POLICY,
    World,
    build_world,
    load_policy_for,
    screening_statements,
    training,
)
from tests.conftest import make_tree

OUTSIDER = KeySigner.generate()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


# -- helpers ---------------------------------------------------------------------------------


def sign_payload(
    payload: bytes,
    signer: KeySigner,
    *,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    signed_type: str | None = None,
    hint: str | None = None,
) -> bytes:
    """A bundle line signing ``payload`` exactly as given. ``signed_type`` signs the PAE of
    another payload type than the envelope states; ``hint`` labels the key otherwise."""
    label = hint if hint is not None else signer.public_key.key_id
    pae = Envelope(payload, signed_type or payload_type, ()).signed_bytes()
    envelope = Envelope(payload, payload_type, (DsseSignature(signer.sign(pae), label),))
    document = {
        "mediaType": MEDIA_TYPE_V03,
        "verificationMaterial": {"publicKey": {"hint": label}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_json(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign(statement: Statement, signer: KeySigner) -> bytes:
    return Bundle.sign_statement(statement, signer).raw


def release(world: World, *, drop: tuple[str, ...] = (), add: tuple[bytes, ...] = ()) -> bytes:
    """The world's release without the lines of the roles in ``drop``, plus ``add``."""
    dropped = {world.bundles[role].raw for role in drop}
    lines = [line for line in world.lines if line not in dropped]
    return b"".join(line + b"\n" for line in [*lines, *add])


def judged(world: World, digest: Digest, data: bytes, policy: Policy | None = None) -> Report:
    return verify(digest, JsonLinesEvidence(data), policy or world.policy, at=AT)


def failures(report: Report) -> list[str]:
    return [f"{node.digest.value[:8]}: {check.detail}" for node, check in report.root.failures()]


def failed_nodes(report: Report) -> set[Digest]:
    return {node.digest for node, _ in report.root.failures()}


def cli_error(world: World, tmp_path: Path, data: bytes, target: Path | None = None) -> str:
    """Run ``provenance verify`` on a release holding ``data``: it must exit 2 with one line."""
    path = tmp_path / "release.jsonl"
    path.write_bytes(data)
    code, err = judge_cli(target or world.model, path, world)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


# -- rollback --------------------------------------------------------------------------------


def older_dataset(world: World, root: Path) -> tuple[Digest, list[bytes]]:
    """Version 1 of the dataset: one file differs; attested and screened under the same name,
    by the same trusted key, before version 2 -- all of it valid."""
    data = make_tree(root / "data-v1", {**DATA, "train/1.csv": b"x,label\n3,1\n4,0\n"})
    manifest = build_manifest(data, workers=1)
    statement = dataset_statement(manifest, name="digits", attested_at="2026-01-01T00:00:00Z")
    figures, verdict = screening_statements(manifest.root_digest, "digits")
    return manifest.root_digest, [sign(s, world.signer) for s in (statement, figures, verdict)]


def test_rollback_an_older_attested_dataset_replayed_for_the_model_is_refused(
    world: World, tmp_path: Path
) -> None:
    """Rollback: dataset v1 and v2 are both validly attested under the name "digits"; the
    training provenance names v2 by digest. Replaying v1's attestations in place of v2's
    leaves v2 -- the dataset the model names -- unattested, and the model is refused.

    What the verifier does *not* catch: v1 on its own verifies (``verify data-v1`` passes),
    because it *was* validly attested and names are labels, not identities; a training run
    gated on v1 (``provenance run --material data-v1``) is allowed and records v1's digest in
    its provenance, so the model it produces names v1 and no one can pass it off as trained on
    v2. To stop v1 from being used at all, revoke its attestation (or set a ``maxAge``): then
    v1 is refused and v2 still passes, as asserted below.
    """
    v1, v1_lines = older_dataset(world, tmp_path)
    rolled_back = release(world, drop=("dataset", "figures", "verdict"), add=tuple(v1_lines))
    report = judged(world, world.model_digest, rolled_back)
    assert not report.trusted
    assert failed_nodes(report) == {world.dataset}  # the v2 the provenance names
    # v1 itself verifies: the documented limit ...
    assert judged(world, v1, rolled_back).trusted
    # ... closed by revoking its attestation, which leaves v2 and the model untouched.
    v1_id = Bundle.from_bytes(v1_lines[0]).attestation_id
    revoking = load_policy_for(
        world.signer, POLICY + f"revoked:\n  attestations: ['sha256:{v1_id}']\n"
    )
    both = release(world, add=tuple(v1_lines))
    assert not judged(world, v1, both, revoking).trusted
    assert judged(world, world.model_digest, both, revoking).trusted


def test_rollback_training_provenance_naming_v1_does_not_vouch_for_v2(
    world: World, tmp_path: Path
) -> None:
    """The other direction: provenance (validly signed) of a run on v1 says nothing about v2,
    and a model's chain always follows the digests its own provenance signs."""
    v1, v1_lines = older_dataset(world, tmp_path)
    old_run = training(world.model_digest, (Material("data", v1),), world.environment)
    data = release(world, drop=("training",), add=(*v1_lines, sign(old_run, world.signer)))
    report = judged(world, world.model_digest, data)
    assert report.trusted  # the model's chain is now v1's, entirely valid ...
    assert next(n.digest for n in report.root.inputs) == v1  # ... and the report says so
    assert world.dataset not in {n.digest for n in report.root.inputs}


# -- subjects, predicate types, envelopes, signatures ---------------------------------------


def test_subject_swap_in_a_signed_statement_is_refused(world: World) -> None:
    """The training provenance re-pointed at another checkpoint (payload edited, signature
    kept) fails its signature; re-signed by an outsider, it is not the project's."""
    other = Digest.of_bytes(Algorithm.SHA256, b"a poisoned checkpoint")
    statement = world.statements["training"]
    swapped = replace(statement, subjects=(ResourceDescriptor.for_digest(other, name="model.bin"),))
    document = json.loads(world.bundles["training"].raw)
    document["dsseEnvelope"]["payload"] = base64.b64encode(swapped.to_bytes()).decode()
    edited = json.dumps(document).encode()
    report = judged(world, other, release(world, add=(edited,)))
    assert not report.trusted
    assert any("does not verify" in f for f in failures(report))
    report = judged(world, other, release(world, add=(sign(swapped, OUTSIDER),)))
    assert any("not project's key" in f for f in failures(report))
    # The genuine checkpoint is untouched by either.
    assert judged(world, world.model_digest, release(world, add=(edited,))).trusted


def test_predicate_type_confusion_a_dataset_predicate_under_the_slsa_type(world: World) -> None:
    """The project key signs a dataset predicate typed as SLSA provenance about the model (a
    confused signer). Typed SLSA, it is judged as training provenance: it carries no signed
    build time for maxAge and, without the policy's maxAge, its conditions fail."""
    confused = Statement(
        world.statements["training"].subjects,
        SLSA_PROVENANCE_V1,
        world.statements["dataset"].predicate,
    )
    data = release(world, drop=("training",), add=(sign(confused, world.signer),))
    report = judged(world, world.model_digest, data)
    assert not report.trusted
    assert failures(report) == [
        f"{world.model_digest.value[:8]}: attestation carries no signed time, so its age "
        "cannot be checked against maxAge"
    ]
    ageless = load_policy_for(world.signer, POLICY.replace("        maxAge: 365d\n", ""))
    report = judged(world, world.model_digest, data, ageless)
    assert not report.trusted
    assert any("condition false: predicate.buildDefinition" in f for f in failures(report))


def test_predicate_type_confusion_a_dataset_claiming_to_be_a_model_too(world: World) -> None:
    """A validly signed SLSA statement naming the *dataset* gives it a second kind: every kind
    its attestations claim is judged, so it cannot escape to the weaker rule."""
    as_model = training(world.dataset, (), world.environment)
    report = judged(world, world.dataset, release(world, add=(sign(as_model, world.signer),)))
    assert not report.trusted
    assert report.root.kind == "dataset+model"
    assert any(OMS_PREDICATE in f for f in failures(report))


def test_predicate_type_confusion_figures_under_the_test_result_type(world: World) -> None:
    figures = world.statements["figures"]
    confused = Statement(
        figures.subjects, "https://in-toto.io/attestation/test-result/v0.1", figures.predicate
    )
    data = release(world, drop=("verdict",), add=(sign(confused, world.signer),))
    report = judged(world, world.dataset, data)
    assert not report.trusted
    assert any("configuration.exists" in f for f in failures(report))


def test_dsse_payload_type_mismatch(world: World, tmp_path: Path) -> None:
    """The signature covers the payload type (DSSE's PAE): a signature made over the payload
    as ``application/json`` does not verify for the envelope that says in-toto. An envelope
    honestly typed otherwise carries no statement: the release is refused as malformed."""
    payload = world.statements["training"].to_bytes()
    retyped = sign_payload(payload, world.signer, signed_type="application/json")
    data = release(world, drop=("training",), add=(retyped,))
    report = judged(world, world.model_digest, data)
    assert not report.trusted
    assert any("does not verify" in f for f in failures(report))
    honest = sign_payload(payload, world.signer, payload_type="application/json")
    err = cli_error(world, tmp_path, release(world, add=(honest,)))
    assert "does not carry an in-toto statement" in err


def test_a_signature_over_another_payload_is_refused(world: World) -> None:
    document = json.loads(world.bundles["training"].raw)
    other = json.loads(world.bundles["dataset"].raw)
    document["dsseEnvelope"]["signatures"] = other["dsseEnvelope"]["signatures"]
    data = release(world, drop=("training",), add=(json.dumps(document).encode(),))
    report = judged(world, world.model_digest, data)
    assert not report.trusted
    assert any("signature does not verify" in f for f in failures(report))


def test_key_id_and_hint_confusion(world: World) -> None:
    """Hints and keyids are unsigned labels that select a key, never prove one.

    An outsider's bundle labelled with the project's key id is refused (it does not verify
    under that key). Conversely the project's own bundle relabelled with the outsider's id
    still verifies: the verifier tries the trusted key whatever the label says (other tools
    write other forms of key id), so relabelling changes nothing signed -- and, asserted
    last, it does not dodge a revocation of the key either.
    """
    payload = world.statements["training"].to_bytes()
    project_id = world.signer.public_key.key_id
    forged = sign_payload(payload, OUTSIDER, hint=project_id)
    report = judged(world, world.model_digest, release(world, drop=("training",), add=(forged,)))
    assert not report.trusted
    assert any("does not verify under project's key" in f for f in failures(report))

    relabelled = json.loads(world.bundles["training"].raw)
    relabelled["verificationMaterial"]["publicKey"]["hint"] = OUTSIDER.public_key.key_id
    relabelled["dsseEnvelope"]["signatures"][0]["keyid"] = OUTSIDER.public_key.key_id
    data = release(world, drop=("training",), add=(json.dumps(relabelled).encode(),))
    assert judged(world, world.model_digest, data).trusted

    revoked = load_policy_for(world.signer, POLICY + f"revoked:\n  keys: [{project_id}]\n")
    report = judged(world, world.model_digest, data, revoked)
    assert not report.trusted
    assert any("is revoked" in f for f in failures(report))


@pytest.mark.parametrize(
    "where",
    ["statement", "predicate", "subject-digest", "bundle", "envelope"],
)
def test_duplicate_keys_are_refused_wherever_they_are(
    world: World, tmp_path: Path, where: str
) -> None:
    """A document two parsers read differently must not be accepted by either: a duplicate
    key -- even one a trusted key signed -- makes the release malformed (exit 2)."""
    canonical = world.statements["training"].to_bytes().decode()
    model = world.model_digest.value
    if where == "statement":  # a second predicateType: first-wins and last-wins parsers differ
        payload = canonical[:-1] + f',"predicateType":"{OMS_PREDICATE}"}}'
    elif where == "predicate":
        payload = canonical.replace('"buildDefinition":{', '"buildDefinition":{"buildType":"x",')
    elif where == "subject-digest":
        payload = canonical.replace(
            f'"sha256":"{model}"', f'"sha256":"{"0" * 64}","sha256":"{model}"'
        )
    else:
        payload = canonical
    line = sign_payload(payload.encode(), world.signer)
    if where == "bundle":
        line = line[:-1] + b',"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'
    elif where == "envelope":
        line = line.replace(b'"payloadType":', b'"payloadType":"application/json","payloadType":')
    assert line != sign_payload(canonical.encode(), world.signer) or where == "none"
    err = cli_error(world, tmp_path, release(world, drop=("training",), add=(line,)))
    assert "duplicate JSON object key" in err


def test_a_non_canonical_payload_is_accepted_as_signed(world: World) -> None:
    """This project signs RFC 8785 canonical JSON, but verifies the exact bytes that were
    signed: another tool's valid, non-canonical statement (spaced, keys unsorted) signed by a
    trusted key is accepted. Its attestation id is the hash of *those* bytes, so revoking the
    canonical form's id does not revoke it (a re-signing needs the key, and is revoked by
    its own id, or by revoking the key)."""
    document = world.statements["training"].to_json()
    spaced = json.dumps(dict(reversed(list(document.items()))), indent=2).encode()
    assert spaced != world.statements["training"].to_bytes()
    line = sign_payload(spaced, world.signer)
    data = release(world, drop=("training",), add=(line,))
    assert judged(world, world.model_digest, data).trusted
    canonical_id = world.bundles["training"].attestation_id
    assert Bundle.from_bytes(line).attestation_id != canonical_id
    revoking = load_policy_for(
        world.signer, POLICY + f"revoked:\n  attestations: ['sha256:{canonical_id}']\n"
    )
    assert judged(world, world.model_digest, data, revoking).trusted


def test_an_attestation_for_another_algorithms_digest_vouches_for_nothing_else(
    world: World, tmp_path: Path
) -> None:
    """Digests are (algorithm, value) pairs: the SHA-256 of the model relabelled as blake3,
    or named only by sha1, is not the model's SHA-256; a dataset attested by its blake3 root
    digest verifies by that digest only."""
    sha = world.model_digest.value
    for label in ({"blake3": sha}, {"sha1": sha[:40]}, {"md5": sha[:32]}):
        statement = replace(
            world.statements["training"],
            subjects=(ResourceDescriptor(label, name="model.bin"),),
        )
        data = release(world, drop=("training",), add=(sign(statement, world.signer),))
        report = judged(world, world.model_digest, data)
        assert not report.trusted, label
        assert any(f"no {SLSA_PROVENANCE_V1} attestation" in f for f in failures(report))
    blake = build_manifest(world.data, algorithm=Algorithm.BLAKE3, workers=1)
    statement = dataset_statement(blake, name="digits", attested_at="2026-02-01T00:00:00Z")
    figures, verdict = screening_statements(blake.root_digest, "digits")
    lines = tuple(sign(s, world.signer) for s in (statement, figures, verdict))
    data = release(world, drop=("dataset", "figures", "verdict"), add=lines)
    assert judged(world, blake.root_digest, data).trusted
    assert not judged(world, world.dataset, data).trusted  # the same files, by SHA-256


# -- size and depth ------------------------------------------------------------------------


def peak_bytes(action: object) -> int:
    """The peak of Python allocations while ``action()`` runs (tracemalloc)."""
    tracemalloc.start()
    try:
        with contextlib.suppress(Error):
            action()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_100k_deep_release_line_is_a_clear_error_in_bounded_memory(
    world: World, tmp_path: Path
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    err = cli_error(world, tmp_path, release(world, add=(deep,)))
    assert "nested too deeply" in err
    assert peak_bytes(lambda: JsonLinesEvidence(deep)) < 64 << 20
    # A statement nested past the limit, validly signed, is refused the same way.
    nested: object = "x"
    for _ in range(100):
        nested = [nested]
    statement = world.statements["dataset"].to_json()
    statement["predicate"]["description"] = nested
    line = sign_payload(json.dumps(statement).encode(), world.signer)
    assert "nested more than 64 levels" in cli_error(world, tmp_path, release(world, add=(line,)))


def test_a_2_gib_release_file_is_refused_without_reading_it(world: World, tmp_path: Path) -> None:
    """Found by this catalogue: the reader used to read a gigabyte (twice over, when joining)
    before saying the file was too large."""
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as handle:
        handle.truncate(2 << 30)  # sparse: no disk space used
    code, err = judge_cli(world.model, huge, world)
    assert code == 2 and "is larger than" in err
    from provenance.verify.evidence import BundleFileEvidence

    assert peak_bytes(lambda: BundleFileEvidence(huge)) < 16 << 20


def test_huge_claimed_sizes_allocate_nothing(world: World) -> None:
    """A pickle opcode claiming a 2 GiB bytes object, an integer of 5,000 digits in a release,
    a manifest entry claiming a 2 GiB file: each is an error or a finding, read in bounded
    memory (nothing is allocated from a claimed size)."""
    claim = b"\x80\x04\x8e" + struct.pack("<Q", 2 << 30) + b"tiny"
    result = scan_bytes(claim)
    assert result.findings
    assert peak_bytes(lambda: scan_bytes(claim)) < 16 << 20
    with pytest.raises(FormatError, match="unreadable value"):
        JsonLinesEvidence(b'{"mediaType": ' + b"9" * 5000 + b"}\n")
    entries = json.loads(world.manifest.canonical_bytes)
    entries["entries"][0]["size"] = 2 << 30
    claimed = Manifest.from_bytes(json.dumps(entries).encode())
    assert claimed.total_bytes > 2 << 30
    assert claimed.root_digest != world.dataset  # and so it is not the attested dataset


# -- paths -----------------------------------------------------------------------------------


def manifest_with(world: World, entry: Mapping[str, object]) -> bytes:
    document = json.loads(world.manifest.canonical_bytes)
    document["entries"] = sorted([*document["entries"], entry], key=lambda e: str(e["path"]))
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "path", ["../escape.csv", "/etc/passwd", "a/./b.csv", "a//b.csv", "a\\b.csv", "a\x00b"]
)
def test_path_traversal_in_a_manifest_is_refused(world: World, tmp_path: Path, path: str) -> None:
    entry = {"type": "file", "path": path, "size": 1, "digest": "0" * 64}
    with pytest.raises(UnsafePathError):
        Manifest.from_bytes(manifest_with(world, entry))
    err = cli_error(world, tmp_path, release(world, add=(manifest_with(world, entry),)))
    assert "path" in err


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "sub/../../x"])
def test_symlinks_leaving_the_root_are_refused(world: World, target: str) -> None:
    entry = {"type": "symlink", "path": "link", "target": target}
    with pytest.raises(UnsafePathError, match=r"outside the root|escapes"):
        Manifest.from_bytes(manifest_with(world, entry))


def test_a_symlink_in_a_dataset_is_refused_not_followed(world: World, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "data", DATA)
    (data / "train" / "0.csv").unlink()
    (data / "train" / "0.csv").symlink_to("/etc/hostname")
    err = cli_error(world, tmp_path, world.release, target=data)
    assert "link" in err


def test_an_oms_signature_naming_a_path_outside_the_model_vouches_for_nothing(
    world: World,
) -> None:
    oms = world.statements["oms"].to_json()
    oms["predicate"]["resources"][0]["name"] = "../model.bin"
    line = sign_payload(json.dumps(oms).encode(), world.signer)
    report = judged(world, world.model_digest, release(world, drop=("oms",), add=(line,)))
    assert not report.trusted
    assert any(f"no {OMS_PREDICATE} attestation" in f for f in failures(report))


# -- names -----------------------------------------------------------------------------------


def test_case_colliding_names_are_distinct_entries_and_a_rename_is_refused(
    world: World, tmp_path: Path
) -> None:
    """Manifest paths are POSIX names compared by their bytes: ``README.md`` and ``readme.md``
    are two entries (a manifest may list both; a case-insensitive file system could not hold
    that directory, so it would never hash to the attested digest). Renaming a file to
    another case changes the root digest: refused, the diff naming both spellings."""
    both = manifest_with(
        world, {"type": "file", "path": "readme.md", "size": 0, "digest": "0" * 64}
    )
    assert {"README.md", "readme.md"} <= {e.path for e in Manifest.from_bytes(both).entries}
    data = make_tree(tmp_path / "data", DATA)
    (data / "README.md").rename(data / "readme.md")
    evidence = JsonLinesEvidence(world.release)
    local = build_manifest(data, workers=1)
    assert not verify(local.root_digest, evidence, world.policy, at=AT).trusted
    diff = world.manifest.diff(local)
    assert (diff.added, diff.removed) == (("readme.md",), ("README.md",))


def test_unicode_confusable_and_unnormalised_names(world: World, tmp_path: Path) -> None:
    """A file renamed to a confusable name (Cyrillic ``\\u0430`` for Latin ``a``) is another name:
    refused, and the diff lists both -- which print alike, a limit of showing names as they
    are (``display`` escapes only unprintable names). A manifest path not in NFC is refused:
    the same name typed on two systems must be one entry."""
    data = make_tree(tmp_path / "data", DATA)
    confusable = "tr\u0430in"  # Cyrillic a
    (data / "train").rename(data / confusable)
    local = build_manifest(data, workers=1)
    assert not verify(
        local.root_digest, JsonLinesEvidence(world.release), world.policy, at=AT
    ).trusted
    diff = world.manifest.diff(local)
    assert set(diff.added) == {f"{confusable}/0.csv", f"{confusable}/1.csv"}
    assert set(diff.removed) == {"train/0.csv", "train/1.csv"}
    nfd = manifest_with(
        world, {"type": "file", "path": "e\u0301.csv", "size": 0, "digest": "0" * 64}
    )
    with pytest.raises(UnsafePathError, match="NFC"):
        Manifest.from_bytes(nfd)


def test_pickle_scan_refuses_a_checkpoint_that_runs_code() -> None:
    """Not the chain, but the gate behind it: a checkpoint whose pickle names ``os.system``
    is a finding even when its chain verifies (``provenance.torch.load`` scans before it
    loads)."""

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    assert any(
        "os.system" in f or "posix.system" in f
        for f in scan_bytes(pickle.dumps(Exploit())).findings
    )

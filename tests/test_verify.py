"""The verifier's refusal matrix: each broken chain refused for its own reason, valid ones pass."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest, Manifest, build_manifest
from provenance.errors import FormatError
from provenance.policy.load import PolicyError, parse_policy
from provenance.predicates.dataset import dataset_statement
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
from provenance.verify.core import Report, closest_attested, verify
from tests.conftest import make_tree

DATASET = "https://ml-provenance.dev/attestation/dataset/v1"
SCREEN = "https://example.com/screening/v1"
REQ = "\n      - predicateType: x\n        signedBy: [owner]"


class Memory:
    """Evidence held in memory: the same interface the ledger and bundle files offer."""

    def __init__(self, bundles: Iterable[Bundle] = (), manifests: Iterable[Manifest] = ()):
        self.bundles = list(bundles)
        self._manifests = {m.root_digest: m for m in manifests}

    def about(self, digest: Digest) -> list[Bundle]:
        return [b for b in self.bundles if b.statement.names(digest)]

    def manifest(self, digest: Digest) -> Manifest | None:
        return self._manifests.get(digest)

    def manifests(self) -> list[Manifest]:
        return list(self._manifests.values())


OWNER = KeySigner.generate()
TRAINER = KeySigner.generate()
OUTSIDER = KeySigner.generate()


def policy(extra: str = "", *, require: str | None = None) -> str:
    require = (
        require
        or f"""
      - predicateType: {DATASET}
        signedBy: [owner]"""
    )
    return f"""
version: 1
roots:
  owner:
    pem: |
{_indent(OWNER.public_key.pem.decode(), 6)}
  trainer:
    pem: |
{_indent(TRAINER.public_key.pem.decode(), 6)}
rules:
  dataset:
    require:{require}
{extra}"""


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.strip().splitlines())


def load(text: str):  # type: ignore[no-untyped-def]
    return parse_policy(text, base=Path("."))


def digest(n: int) -> Digest:
    return Digest(Algorithm.SHA256, f"{n:064x}")


def dataset(
    d: Digest, signer: KeySigner, parents: tuple[Digest, ...] = (), **extra: object
) -> Bundle:
    predicate = {"name": "d", "parents": [{"digest": p.as_dict()} for p in parents], **extra}
    statement = Statement(
        (ResourceDescriptor.for_digest(d, name=f"d{d.value[-2:]}"),), DATASET, predicate
    )
    return Bundle.sign_statement(statement, signer)


def failures(report: Report) -> list[str]:
    return [f"{n.digest.value[-4:]}: {c.detail}" for n, c in report.root.failures()]


def test_a_signed_chain_is_trusted() -> None:
    chain = Memory([dataset(digest(1), OWNER, (digest(2),)), dataset(digest(2), OWNER)])
    report = verify(digest(1), chain, load(policy()))
    assert report.trusted, failures(report)
    assert [n.digest for n in report.root.inputs] == [digest(2)]


def test_unsigned_dataset_is_refused() -> None:
    report = verify(digest(1), Memory(), load(policy()))
    assert not report.trusted
    assert failures(report) == ["0001: no attestation names this artifact"]


def test_untrusted_signer_is_refused() -> None:
    report = verify(digest(1), Memory([dataset(digest(1), OUTSIDER)]), load(policy()))
    assert not report.trusted
    assert "not owner's key" in failures(report)[0]


def test_trusted_signer_in_the_wrong_role_is_refused() -> None:
    # The trainer is a trusted root, but datasets must come from the data owner.
    report = verify(digest(1), Memory([dataset(digest(1), TRAINER)]), load(policy()))
    assert not report.trusted
    assert "not owner's key" in failures(report)[0]


def test_revoked_key_and_revoked_attestation_are_refused() -> None:
    bundle = dataset(digest(1), OWNER)
    revoked_key = policy(f"revoked:\n  keys: [{OWNER.public_key.key_id}]")
    report = verify(digest(1), Memory([bundle]), load(revoked_key))
    assert "revoked" in failures(report)[0]
    revoked_attestation = policy(f"revoked:\n  attestations: ['sha256:{bundle.attestation_id}']")
    report = verify(digest(1), Memory([bundle]), load(revoked_attestation))
    assert "is revoked" in failures(report)[0]


def test_cel_conditions_must_hold_and_errors_are_false() -> None:
    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
        conditions: ['predicate.license == "MIT"']"""
    good = dataset(digest(1), OWNER, license="MIT")
    assert verify(digest(1), Memory([good]), load(policy(require=requirement))).trusted
    bad = dataset(digest(2), OWNER, license="GPL")
    report = verify(digest(2), Memory([bad]), load(policy(require=requirement)))
    assert "condition false" in failures(report)[0]
    missing = dataset(digest(3), OWNER)  # no license field at all: an error, not a pass
    assert not verify(digest(3), Memory([missing]), load(policy(require=requirement))).trusted


def test_missing_attestation_three_levels_down_is_refused() -> None:
    chain = Memory(
        [
            dataset(digest(1), OWNER, (digest(2),)),
            dataset(digest(2), OWNER, (digest(3),)),
            dataset(digest(3), OWNER, (digest(4),)),
        ]
    )
    report = verify(digest(1), chain, load(policy()))
    assert not report.trusted
    assert failures(report) == ["0004: no attestation names this artifact"]
    assert report.root.inputs[0].inputs[0].inputs[0].digest == digest(4)


def test_a_cycle_is_refused() -> None:
    chain = Memory(
        [dataset(digest(1), OWNER, (digest(2),)), dataset(digest(2), OWNER, (digest(1),))]
    )
    report = verify(digest(1), chain, load(policy()))
    assert not report.trusted
    assert failures(report) == ["0001: this artifact is among its own inputs"]


def test_depth_is_bounded() -> None:
    chain = Memory([dataset(digest(n), OWNER, (digest(n + 1),)) for n in range(1, 10)])
    report = verify(digest(1), chain, load(policy("maxDepth: 3")))
    assert any("deeper than maxDepth 3" in f for f in failures(report))


def test_every_failure_is_collected() -> None:
    chain = Memory([dataset(digest(1), OWNER, (digest(2), digest(3)))])
    report = verify(digest(1), chain, load(policy()))
    assert failures(report) == [
        "0002: no attestation names this artifact",
        "0003: no attestation names this artifact",
    ]


def test_threshold_needs_distinct_signers() -> None:
    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner, trainer]
        threshold: 2"""
    one = Memory([dataset(digest(1), OWNER)])
    assert not verify(digest(1), one, load(policy(require=requirement))).trusted
    both = Memory([dataset(digest(1), OWNER), dataset(digest(1), TRAINER)])
    assert verify(digest(1), both, load(policy(require=requirement))).trusted


def test_a_required_predicate_that_is_absent_is_a_failure_not_a_skip() -> None:
    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
      - predicateType: {SCREEN}
        signedBy: [owner]"""
    report = verify(
        digest(1), Memory([dataset(digest(1), OWNER)]), load(policy(require=requirement))
    )
    assert failures(report) == [f"0001: no {SCREEN} attestation"]


def test_changed_added_and_removed_files_are_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a.csv": b"1", "b.csv": b"2", "c.csv": b"3"})
    manifest = build_manifest(root)
    attested = Bundle.sign_statement(dataset_statement(manifest, name="d"), OWNER)
    evidence = Memory([attested], [manifest])
    (root / "a.csv").write_bytes(b"poison")
    (root / "b.csv").unlink()
    (root / "extra.csv").write_bytes(b"")
    local = build_manifest(root)
    assert not verify(local.root_digest, evidence, load(policy())).trusted
    closest = closest_attested(local, evidence)
    assert closest is not None
    assert closest[0] == manifest
    changes = closest[1]
    assert (changes.added, changes.removed, changes.changed) == (
        ("extra.csv",),
        ("b.csv",),
        ("a.csv",),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nroots: {}\nrules: {}", "at least one trust root"),
        ("version: 2\nroots: {a: {pem: x}}\nrules: {}", "unsupported policy version"),
        (policy("unknown: 1"), "unknown key"),
        (
            policy(require="\n      - predicateType: x\n        signedBy: [nobody]"),
            "which roots does not define",
        ),
        (policy(require="\n      - predicateType: x\n        signedBy: []"), "non-empty list"),
        (
            policy(require=REQ + "\n        threshold: 2"),
            "threshold",
        ),
        (
            policy(require=REQ + "\n        conditions: ['true']"),
            "checks nothing",
        ),
        (
            policy(require=REQ + "\n        conditions: ['1 == 1']"),
            "checks nothing",
        ),
        (
            policy(require=REQ + "\n        conditions: ['predicate.x ==']"),
            "does not compile",
        ),
        ("version: 1\nversion: 1\nroots: {}\nrules: {}", "duplicate key"),
        ("version: 1\nroots: [", "not valid YAML"),
        (policy().replace("rules:\n  dataset:", "rules:\n  weights:"), "unknown kind"),
        (
            "version: 1\nroots: {a: {pem: 'not a key'}}\nrules: {dataset: {require: []}}",
            "not a PEM",
        ),
        (policy(require=" []"), "at least one requirement"),
    ],
)
def test_malformed_policies_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load(text)


def test_policy_errors_are_format_errors() -> None:
    assert issubclass(PolicyError, FormatError)


def test_shipped_policies_load(tmp_path: Path) -> None:
    from provenance.policy.load import load_policy

    shipped = sorted((Path(__file__).resolve().parents[1] / "policies").rglob("*.yaml"))
    assert [p.name for p in shipped] == [
        "default.yaml",
        "github-keyless-trainer.yaml",
        "two-party.yaml",
        "strict.yaml",
    ]
    for path in shipped:
        loaded = load_policy(path)
        assert {"dataset", "model"} <= set(loaded.rules), path


def test_bundle_evidence_round_trip(tmp_path: Path) -> None:
    from provenance.verify.evidence import BundleFileEvidence

    bundle = dataset(digest(1), OWNER)
    (tmp_path / "e.jsonl").write_bytes(bundle.raw + b"\n")
    evidence = BundleFileEvidence(tmp_path / "e.jsonl")
    assert verify(digest(1), evidence, load(policy())).trusted
    (tmp_path / "bad.jsonl").write_text(json.dumps({"mediaType": "x"}) + "\n")
    with pytest.raises(FormatError, match="neither a bundle nor a manifest"):
        BundleFileEvidence(tmp_path / "bad.jsonl")


def test_the_two_party_example_keeps_roles_apart(tmp_path: Path) -> None:
    from provenance.policy.load import load_policy

    shipped = Path(__file__).resolve().parents[1] / "policies" / "examples" / "two-party.yaml"
    (tmp_path / "examples").mkdir()
    (tmp_path / "keys").mkdir()
    (tmp_path / "examples" / "two-party.yaml").write_text(shipped.read_text())
    (tmp_path / "keys" / "data-owner.pub").write_bytes(OWNER.public_key.pem)
    (tmp_path / "keys" / "trainer.pub").write_bytes(TRAINER.public_key.pem)
    two_party = load_policy(tmp_path / "examples" / "two-party.yaml")
    by_owner = Memory([dataset(digest(1), OWNER, license="CC0-1.0")])
    assert verify(digest(1), by_owner, two_party).trusted
    by_trainer = Memory([dataset(digest(1), TRAINER, license="CC0-1.0")])
    assert "not data-owner's key" in failures(verify(digest(1), by_trainer, two_party))[0]
    unlicensed = Memory([dataset(digest(1), OWNER)])
    assert not verify(digest(1), unlicensed, two_party).trusted


FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "sigstore"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded Sigstore bundles not at {FIXTURES}")
def test_a_chain_mixing_key_signed_and_sigstore_nodes(tmp_path: Path) -> None:
    """Our key-signed dataset derives from an artifact whose provenance is a real Sigstore
    bundle (SLSA, signed keylessly by GitHub Actions); the policy trusts that identity."""
    from provenance.verify.evidence import BundleFileEvidence

    keyless = json.loads((FIXTURES / "valid-v0.3.intoto.sigstore").read_bytes())
    hello = Digest.parse("sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd")
    ours = dataset(digest(1), OWNER, (hello,))
    (tmp_path / "chain.jsonl").write_bytes(
        ours.raw + b"\n" + json.dumps(keyless, separators=(",", ":")).encode() + b"\n"
    )
    generator = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
        "generator_generic_slsa3.yml@refs/heads/main"
    )
    text = policy(
        extra="""  model:
    require:
      - predicateType: https://slsa.dev/provenance/v0.2
        signedBy: [slsa-generator]"""
    ).replace(
        "rules:",
        f"""  slsa-generator:
    sigstore:
      identity: {generator}
      issuer: https://token.actions.githubusercontent.com
rules:""",
    )
    report = verify(digest(1), BundleFileEvidence(tmp_path / "chain.jsonl"), load(text))
    assert report.trusted, failures(report)
    leaf = report.root.inputs[0]
    assert (leaf.digest, leaf.kind) == (hello, "model")
    # The same chain under a policy trusting another identity is refused at the leaf.
    other = text.replace(generator, generator.replace("slsa-framework", "someone-else"))
    refused = verify(digest(1), BundleFileEvidence(tmp_path / "chain.jsonl"), load(other))
    assert not refused.trusted
    assert failures(refused)[0].startswith("7bbd: not signed by slsa-generator")


def test_shipped_policies_match_the_published_schema() -> None:
    import jsonschema
    import yaml

    folder = Path(__file__).resolve().parents[1] / "policies"
    schema = json.loads((folder / "policy.schema.json").read_text())
    for path in sorted(folder.rglob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "roots": {}, "rules": {}}, schema)


def test_ages_are_measured_from_a_signed_time() -> None:
    import datetime as dt

    requirement = f"\n      - predicateType: {DATASET}\n        signedBy: [owner]"
    aged = policy(require=requirement + "\n        maxAge: 30d")
    made = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    fresh = Memory([dataset(digest(1), OWNER, attestedAt="2026-01-01T00:00:00Z")])
    assert verify(digest(1), fresh, load(aged), at=made + dt.timedelta(days=29)).trusted
    report = verify(digest(1), fresh, load(aged), at=made + dt.timedelta(days=31))
    assert "31 days old, older than maxAge" in failures(report)[0]
    future = verify(digest(1), fresh, load(aged), at=made - dt.timedelta(days=1))
    assert "after the reference time" in failures(future)[0]
    undated = Memory([dataset(digest(1), OWNER)])
    assert "no signed time" in failures(verify(digest(1), undated, load(aged)))[0]
    # A policy-wide default applies to every requirement.
    assert not verify(digest(1), undated, load(policy("maxAge: 1d"))).trusted
    with pytest.raises(PolicyError, match="positive duration"):
        load(policy("maxAge: 0d"))
    with pytest.raises(PolicyError, match="positive duration"):
        load(policy("maxAge: 1 week"))


def test_an_artifact_claiming_two_kinds_must_satisfy_both_rules() -> None:
    # The data owner's dataset attestation must not let a "model" skip the trainer's provenance.
    both_rules = policy(
        extra="""  model:
    require:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy: [trainer]"""
    )
    model_as_dataset = Memory([dataset(digest(1), OWNER)])
    assert verify(digest(1), model_as_dataset, load(both_rules)).trusted  # only a dataset
    slsa = Statement(
        (ResourceDescriptor.for_digest(digest(1)),), "https://slsa.dev/provenance/v1", {"x": 1}
    )
    claimed_model = Memory([dataset(digest(1), OWNER), Bundle.sign_statement(slsa, OUTSIDER)])
    report = verify(digest(1), claimed_model, load(both_rules))
    assert not report.trusted
    assert report.root.kind == "dataset+model"
    assert "not trainer's key" in failures(report)[0]


def test_revocation_survives_respelled_signatures() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    bundle = dataset(digest(1), OWNER)
    revoked = load(policy(f"revoked:\n  attestations: ['sha256:{bundle.attestation_id}']"))
    document = json.loads(bundle.raw)
    signature = document["dsseEnvelope"]["signatures"][0]
    r, s = decode_dss_signature(base64.b64decode(signature["sig"]))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256
    signature["sig"] = base64.b64encode(encode_dss_signature(r, order - s)).decode()
    malleated = Bundle.from_bytes(json.dumps(document).encode())
    malleated.verify_with_key(OWNER.public_key)  # still a valid signature...
    assert malleated.attestation_id == bundle.attestation_id  # ...of the same attestation
    assert not verify(digest(1), Memory([malleated]), revoked).trusted
    document["dsseEnvelope"]["signatures"].append(dict(signature))
    with pytest.raises(FormatError, match="repeats a signature"):
        Bundle.from_bytes(json.dumps(document).encode())


@pytest.mark.parametrize(
    "condition",
    ["true || predicate.x == 1", "size(subject) >= 0", "has(predicate.x) || !has(predicate.x)"],
)
def test_conditions_true_of_an_empty_attestation_are_refused(condition: str) -> None:
    with pytest.raises(PolicyError, match="checks nothing"):
        load(policy(require=REQ.replace("x", DATASET) + f"\n        conditions: ['{condition}']"))


def test_two_roots_for_one_key_cannot_make_a_threshold() -> None:
    text = policy(require=REQ.replace("[owner]", "[owner, again]") + "\n        threshold: 2")
    text = text.replace(
        "  trainer:\n",
        "  again:\n    pem: |\n" + _indent(OWNER.public_key.pem.decode(), 6) + "\n  trainer:\n",
    )
    with pytest.raises(PolicyError, match="same key"):
        load(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\n? [a]\n: 1\nroots: {}\nrules: {}", "scalar"),
        (policy(require="\n      - predicateType: x\n        signedBy: [[owner]]"), "strings"),
        ("version: true\nroots: {}\nrules: {}", "unsupported policy version"),
        ("version: 1.0\nroots: {}\nrules: {}", "unsupported policy version"),
    ],
)
def test_odd_policies_are_refused_not_crashed_on(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load(text)


def test_inputs_with_malformed_digests_are_failures_and_sources_are_not_inputs() -> None:
    bad = Statement(
        (ResourceDescriptor.for_digest(digest(1)),),
        DATASET,
        {"parents": [{"digest": {"sha256": "A" * 64}}]},
    )
    report = verify(digest(1), Memory([Bundle.sign_statement(bad, OWNER)]), load(policy()))
    assert not report.trusted
    assert any("not a sha256 digest" in f for f in failures(report))
    with_sources = dataset(digest(2), OWNER, sources=[{"uri": "x", "digest": digest(9).as_dict()}])
    assert verify(digest(2), Memory([with_sources]), load(policy())).trusted


def test_rich_markup_in_names_is_shown_not_interpreted() -> None:
    import io

    from provenance.verify.render import render_text

    statement = Statement(
        (ResourceDescriptor.for_digest(digest(1), name="[/] [bold]x"),), DATASET, {"parents": []}
    )
    report = verify(digest(1), Memory([Bundle.sign_statement(statement, OWNER)]), load(policy()))
    out = io.StringIO()
    render_text(report, out)
    assert "[/] [bold]x" in out.getvalue()


def test_required_evidence_that_names_no_inputs_is_accepted() -> None:
    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
      - predicateType: {SCREEN}
        signedBy: [owner]
        conditions: ['predicate.result == "PASSED"']"""
    screening = Bundle.sign_statement(
        Statement((ResourceDescriptor.for_digest(digest(1)),), SCREEN, {"result": "PASSED"}),
        OWNER,
    )
    evidence = Memory([dataset(digest(1), OWNER), screening])
    report = verify(digest(1), evidence, load(policy(require=requirement)))
    assert report.trusted, failures(report)


class LyingIndex(Memory):
    """Evidence whose index returns every bundle for every digest."""

    def about(self, digest: Digest) -> list[Bundle]:
        return list(self.bundles)


def test_a_statement_that_does_not_name_the_artifact_says_nothing_about_it() -> None:
    report = verify(digest(1), LyingIndex([dataset(digest(2), OWNER)]), load(policy()))
    assert failures(report) == ["0001: no attestation names this artifact"]


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded Sigstore bundles not at {FIXTURES}")
def test_keyless_ages_are_measured_from_the_transparency_log(tmp_path: Path) -> None:
    """The SLSA v0.2 predicate of the real bundle carries no finish time; its Rekor entry's
    integrated time (2024-10-25T03:12:16Z, verified with the bundle) is what maxAge measures."""
    import datetime as dt

    from provenance.verify.evidence import BundleFileEvidence

    keyless = (FIXTURES / "valid-v0.3.intoto.sigstore").read_bytes()
    (tmp_path / "chain.jsonl").write_bytes(json.dumps(json.loads(keyless)).encode() + b"\n")
    hello = Digest.parse("sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd")
    generator = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
        "generator_generic_slsa3.yml@refs/heads/main"
    )
    text = f"""
version: 1
roots:
  slsa-generator:
    sigstore:
      identity: {generator}
      issuer: https://token.actions.githubusercontent.com
rules:
  model:
    require:
      - predicateType: https://slsa.dev/provenance/v0.2
        signedBy: [slsa-generator]
        maxAge: 1d
"""
    evidence = BundleFileEvidence(tmp_path / "chain.jsonl")
    logged = dt.datetime(2024, 10, 25, 3, 12, 16, tzinfo=dt.timezone.utc)
    fresh = verify(hello, evidence, load(text), at=logged + dt.timedelta(hours=12))
    assert fresh.trusted, failures(fresh)
    stale = verify(hello, evidence, load(text), at=logged + dt.timedelta(days=30))
    assert "30 days old, older than maxAge" in failures(stale)[0]


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("predicate.accuracy >= 0.95", 1, True),  # canonical JSON signs 1.0 as 1
        ("predicate.accuracy >= 0.95", 0.9, False),
        ("predicate.accuracy == 1.0", 1, True),
        ("predicate.accuracy == 1", 1.0, True),
        ("predicate.accuracy in [0.5, 1.0]", 1, True),
        ("predicate.accuracy > 0", 0.25, True),
        ("double(predicate.accuracy) >= 0.95", 1, True),
    ],
)
def test_attestation_numbers_are_json_numbers_in_conditions(
    condition: str, value: float, holds: bool
) -> None:
    from provenance.policy.load import parse_policy

    text = policy(
        require=f"""
      - predicateType: {DATASET}
        signedBy: [owner]
        conditions: ['{condition}']"""
    )
    loaded = parse_policy(text, base=Path("."))
    (requirement,) = loaded.rules["dataset"].requirements
    assert requirement.conditions[0].holds({"accuracy": value}, []) is holds


def _signed(subject: Digest, predicate_type: str, predicate: Mapping[str, object]) -> Bundle:
    statement = Statement((ResourceDescriptor.for_digest(subject),), predicate_type, predicate)
    return Bundle.sign_statement(statement, OWNER)


SCREEN_PASSED = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
      - predicateType: {SCREEN}
        signedBy: [owner]
        conditions: ['predicate.result == "PASSED"']"""


def test_a_signers_newer_result_supersedes_its_older_one() -> None:
    passed = _signed(digest(1), SCREEN, {"result": "PASSED"})
    failed = _signed(digest(1), SCREEN, {"result": "FAILED"})
    base = [dataset(digest(1), OWNER)]
    later_failure = verify(
        digest(1), Memory([*base, passed, failed]), load(policy(require=SCREEN_PASSED))
    )
    assert "condition false" in failures(later_failure)[0]
    later_pass = verify(
        digest(1), Memory([*base, failed, passed]), load(policy(require=SCREEN_PASSED))
    )
    assert later_pass.trusted, failures(later_pass)


def test_signed_times_order_results_before_evidence_order() -> None:
    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
        conditions: ['predicate.license == "MIT"']"""
    newer = dataset(digest(1), OWNER, license="GPL", attestedAt="2026-11-02T00:00:00Z")
    older = dataset(digest(1), OWNER, license="MIT", attestedAt="2026-11-01T00:00:00Z")
    report = verify(digest(1), Memory([newer, older]), load(policy(require=requirement)))
    assert "condition false" in failures(report)[0]  # the newer (GPL) one decides


def test_different_checks_about_one_subject_do_not_supersede_each_other() -> None:
    test_result = "https://in-toto.io/attestation/test-result/v0.1"

    def result(check: str, outcome: str) -> Bundle:
        return _signed(
            digest(1),
            test_result,
            {"result": outcome, "configuration": [{"uri": check}], "passedTests": []},
        )

    requirement = f"""
      - predicateType: {DATASET}
        signedBy: [owner]
      - predicateType: {test_result}
        signedBy: [owner]
        conditions:
          - 'predicate.configuration.exists(c, c.uri == "https://example.com/a")'
          - 'predicate.result == "PASSED"'"""
    evidence = Memory(
        [
            dataset(digest(1), OWNER),
            result("https://example.com/a", "PASSED"),
            result("https://example.com/b", "FAILED"),
        ]
    )
    report = verify(digest(1), evidence, load(policy(require=requirement)))
    assert report.trusted, failures(report)


def test_an_environment_sbom_must_hash_to_its_subject() -> None:
    from provenance.digest.canonical import canonical_json

    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
    right = Digest.of_bytes(Algorithm.SHA256, canonical_json(bom))
    text = policy(
        extra="""  environment:
    require:
      - predicateType: https://cyclonedx.org/bom
        signedBy: [owner]"""
    )
    good = Memory([_signed(right, "https://cyclonedx.org/bom", bom)])
    assert verify(right, good, load(text)).trusted
    wrong = Memory([_signed(digest(9), "https://cyclonedx.org/bom", bom)])
    report = verify(digest(9), wrong, load(text))
    assert "not the digest of the SBOM it carries" in failures(report)[0]


def test_inputs_named_only_by_location_are_refused_unless_they_are_package_urls() -> None:
    def provenance_naming(*dependencies: Mapping[str, object]) -> Bundle:
        return _signed(
            digest(1),
            "https://slsa.dev/provenance/v1",
            {
                "buildDefinition": {
                    "buildType": "https://example.com/b",
                    "resolvedDependencies": list(dependencies),
                }
            },
        )

    text = policy(
        extra="""  model:
    require:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy: [owner]"""
    )
    package = {"uri": "pkg:pypi/numpy@2.0.0", "annotations": {"role": "environment"}}
    assert verify(digest(1), Memory([provenance_naming(package)]), load(text)).trusted
    bucket = {"uri": "s3://bucket/poisoned.parquet"}
    report = verify(digest(1), Memory([provenance_naming(bucket)]), load(text))
    assert "names no digest" in failures(report)[0]


def test_a_key_revoked_by_its_model_signing_hint_is_revoked() -> None:
    bundle = dataset(digest(1), OWNER)
    text = policy(f"revoked:\n  keys: [{OWNER.public_key.pem_hint}]")
    assert "revoked" in failures(verify(digest(1), Memory([bundle]), load(text)))[0]

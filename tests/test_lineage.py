"""The lineage graph as a unit: built from a report and evidence held in memory -- cycles,
unknown predicate types, unsigned evidence, no policy -- and drawn without surprises."""

from __future__ import annotations

import io
from pathlib import Path

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest, Manifest
from provenance.policy.load import parse_policy
from provenance.policy.model import Policy
from provenance.report.html import AuditContext, lineage_svg, render_html
from provenance.report.lineage import build_lineage, clean, unverified_report
from provenance.report.tree import render_tree
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
from provenance.verify.core import verify

DATASET = "https://ml-provenance.dev/attestation/dataset/v1"
OWNER = KeySigner.generate()
OUTSIDER = KeySigner.generate()
CONTEXT = AuditContext("x", None, None, None, "memory", "now", "tests")


class Memory:
    def __init__(self, *bundles: Bundle) -> None:
        self.bundles = list(bundles)

    def about(self, digest: Digest) -> list[Bundle]:
        return [b for b in self.bundles if b.statement.names(digest)]

    def manifest(self, digest: Digest) -> Manifest | None:
        return None

    def manifests(self) -> list[Manifest]:
        return []


def digest(n: int) -> Digest:
    return Digest(Algorithm.SHA256, f"{n:064x}")


def policy() -> Policy:
    pem = "\n".join("      " + line for line in OWNER.public_key.pem.decode().strip().splitlines())
    text = f"""
version: 1
roots:
  owner:
    pem: |
{pem}
rules:
  dataset:
    require:
      - predicateType: {DATASET}
        signedBy: [owner]
"""
    return parse_policy(text, base=Path("."))


def dataset(d: Digest, parents: tuple[Digest, ...] = (), signer: KeySigner = OWNER) -> Bundle:
    predicate = {
        "name": f"d{d.value[-1]}",
        "parents": [{"digest": p.as_dict()} for p in parents],
        "sources": [{"uri": f"https://example.org/{d.value[-1]}"}],
    }
    statement = Statement(
        (ResourceDescriptor.for_digest(d, name=f"d{d.value[-1]}"),), DATASET, predicate
    )
    return Bundle.sign_statement(statement, signer)


def other(
    d: Digest, predicate_type: str, predicate: dict[str, object], signer: KeySigner
) -> Bundle:
    statement = Statement((ResourceDescriptor.for_digest(d),), predicate_type, predicate)
    return Bundle.sign_statement(statement, signer)


def test_a_cycle_is_drawn_once_and_refused() -> None:
    evidence = Memory(dataset(digest(1), (digest(2),)), dataset(digest(2), (digest(1),)))
    report = verify(digest(1), evidence, policy())
    assert not report.trusted
    lineage = build_lineage(report, evidence, policy())
    artifacts = [n for n in lineage.nodes.values() if n.role == "artifact"]
    assert len(artifacts) == 2  # one node per digest, however often the tree repeats it
    verdicts = {n.digest: n.verdict for n in artifacts}
    # 1 is refused where the walk meets it again (a cycle); 2 only through its input, 1.
    assert verdicts == {str(digest(1)): "refused", str(digest(2)): "input-refused"}
    ids = {n.digest: n.id for n in artifacts}
    one, two = ids[str(digest(1))], ids[str(digest(2))]
    assert (two, one) in lineage.edges and (one, two) in lineage.edges
    assert "acyclic chain" in [f.requirement for f in lineage.failures]
    assert "<svg" in lineage_svg(lineage)
    stream = io.StringIO()
    render_tree(lineage, stream)
    assert "(shown above)" in stream.getvalue()


def test_unknown_and_unsigned_evidence_is_shown_generically() -> None:
    evidence = Memory(
        dataset(digest(1)),
        other(
            digest(1),
            "https://example.org/attestation/fairness/v3",
            {"score": 0.91, "groups": ["a", "b"], "details": {"x": 1}},
            OWNER,
        ),
        other(digest(1), "https://example.org/attestation/label-audit/v1", {"ok": True}, OUTSIDER),
    )
    report = verify(digest(1), evidence, policy())
    assert report.trusted
    lineage = build_lineage(report, evidence, policy())
    evidence_nodes = {n.title: n for n in lineage.nodes.values() if n.role == "evidence"}
    assert set(evidence_nodes) == {"fairness v3", "label-audit v1"}
    fairness = evidence_nodes["fairness v3"]
    assert fairness.verdict == "trusted"
    assert dict(fairness.attestations[0].summary) == {
        "details": "{x}",
        "groups": "2 item(s)",
        "score": "0.91",
    }
    audit = evidence_nodes["label-audit v1"]
    assert audit.verdict == "unverified"
    assert audit.attestations[0].note == "no root of the policy verifies this signature"
    assert [n.title for n in lineage.nodes.values() if n.role == "source"] == [
        "https://example.org/1"
    ]
    page = render_html(lineage, policy(), CONTEXT)
    assert "TRUSTED" in page and "fairness v3" in page


def test_without_a_policy_nothing_is_judged() -> None:
    evidence = Memory(dataset(digest(1), (digest(2),)), dataset(digest(2), signer=OUTSIDER))
    report = unverified_report(digest(1), evidence)
    lineage = build_lineage(report, evidence, None)
    assert lineage.trusted is None
    assert {n.verdict for n in lineage.nodes.values() if n.role == "artifact"} == {"unverified"}
    assert len([n for n in lineage.nodes.values() if n.role == "artifact"]) == 2
    page = render_html(lineage, None, CONTEXT)
    assert "NOT VERIFIED (no policy)" in page and "No policy was applied" in page


def test_clean_makes_any_text_one_bounded_printable_line() -> None:
    assert clean("a\nb\x1b[31mc\u202ed") == "a\\nb\\x1b[31mc\\u202ed"
    assert len(clean("x" * 1000)) == 300
    assert clean(None) == "null" and clean(True) == "true" and clean([1, 2]) == "2 item(s)"

"""provenance audit (one self-contained HTML page) and show --tree (the same lineage in a
terminal), over a real chain; the lineage graph and its layout as units."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from provenance.report.html import COLOURS
from provenance.report.layout import layers, place
from tests.chain_helpers import (
    SAFE_TAGS,
    Chain,
    attest_test_result,
    attestation_id,
    build_chain,
    cli,
    page_structure,
)

DATASET = "https://ml-provenance.dev/attestation/dataset/v1"


@pytest.fixture
def chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Chain:
    return build_chain(tmp_path / "proj", monkeypatch, capsys)


def revoking_policy(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The project's policy with the dataset attestation revoked: the dataset is refused."""
    revoked = attestation_id(capsys, DATASET)
    policy = tmp_path / "revoked.yaml"
    policy.write_text(
        chain.policy.read_text().replace("keys/default.pub", str(chain.public_key))
        + f"revoked:\n  attestations: ['{revoked}']\n"
    )
    return policy


def test_a_trusted_model_gets_a_self_contained_page(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attest_test_result(capsys, "data", "PASSED")  # screening of the dataset
    attest_test_result(capsys, "model.bin", "PASSED")  # evaluation of the model
    report = tmp_path / "report.html"
    code, out, err = cli(
        capsys, "audit", "model.bin", "--policy", str(chain.policy), "--html", str(report)
    )
    assert code == 0, err
    assert out.startswith("TRUSTED: wrote the audit report")
    page = report.read_text()
    structure = page_structure(page)
    assert structure.tags <= SAFE_TAGS  # no script, no link, no img, no iframe
    assert not [a for a in structure.attributes if "http" in a and "w3.org" not in a]
    assert "@import" not in structure.style and "url(" not in structure.style
    assert "default-src 'none'" in page  # the browser is told to load nothing either
    assert page.count("<svg") >= 2 and "TRUSTED" in page
    for text in (
        "training run",
        "digits",
        "model.bin",
        "https://example.org/digits.tar",  # the dataset's source
        "screening",
        "evaluation",
        "model signature (OMS)",
        "clean source (allowDirty: false)",
        "Python distribution(s)",
        "commit ",
        "signature verifies under root project",
    ):
        assert text in page, text
    assert COLOURS["trusted"][0] in page
    assert f'fill="{COLOURS["refused"][0]}"' not in page
    assert "Failures (0)" in page and "None: every requirement holds" in page


def test_a_refused_model_page_names_every_failure(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attest_test_result(capsys, "model.bin", "FAILED")
    policy = revoking_policy(chain, tmp_path, capsys)
    report = tmp_path / "report.html"
    code, out, _ = cli(capsys, "audit", "model.bin", "--policy", str(policy), "--html", str(report))
    assert code == 1
    assert out.startswith("REFUSED") and "is revoked" in out
    page = report.read_text()
    assert "REFUSED: 1 failed check(s)" in page
    assert f'fill="{COLOURS["refused"][0]}"' in page  # the dataset, and the failed evaluation
    assert f'fill="{COLOURS["input-refused"][0]}"' in page  # the model: its input is refused
    assert f'fill="{COLOURS["trusted"][0]}"' in page  # the training step is still signed
    assert "revoked by the policy" in page and "result FAILED" in page
    assert "needs a valid attestation from 1 of project" in page  # the hint
    assert "revoked:" in page  # the policy file as applied

    code, out, _ = cli(
        capsys,
        "audit",
        "model.bin",
        "--policy",
        str(policy),
        "--html",
        str(report),
        "--format",
        "json",
    )
    document = json.loads(out)
    assert code == 1 and document["trusted"] is False and document["html"] == str(report)
    (failure,) = document["failures"]
    assert "is revoked" in failure["found"]


def test_an_auditor_renders_the_page_from_a_release_alone(
    chain: Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = tmp_path / "model.provenance.jsonl"
    assert cli(capsys, "release", "model.bin", "-o", str(release))[0] == 0
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(chain.model, auditor / "model.bin")
    shutil.copy(release, auditor / release.name)
    chain.portable_policy(auditor)
    monkeypatch.chdir(auditor)
    code, _, err = cli(
        capsys,
        "audit",
        "model.bin",
        "--policy",
        "policy.yaml",
        "--bundle",
        release.name,
        "--html",
        "audit.html",
    )
    assert code == 0, err
    page = (auditor / "audit.html").read_text()
    assert "RELEASE" in page and "model.provenance.jsonl" in page
    assert "attestations: 3" in page


def test_show_tree_prints_the_same_lineage(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attest_test_result(capsys, "data", "PASSED")
    code, out, _ = cli(capsys, "show", "model.bin", "--tree", "--policy", str(chain.policy))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("✔ model model.bin sha256:")
    assert lines[-1] == "TRUSTED"
    for text in ("step training run", "dataset digits", "source https://example.org/digits.tar"):
        assert text in out
    assert out.index("training run") < out.index("dataset digits") < out.index("screening")

    # The JSON form is the lineage graph; its nodes and edges match the page's.
    code, out, _ = cli(
        capsys, "show", "model.bin", "--lineage", "--policy", str(chain.policy), "--format", "json"
    )
    graph = json.loads(out)
    roles = sorted(n["role"] for n in graph["nodes"])
    assert roles == sorted(
        ["artifact", "artifact", "step", "source", "code", "environment", "evidence"]
    )
    assert graph["trusted"] is True and graph["root"] == "n0"
    ids = {n["id"] for n in graph["nodes"]}
    assert all(a in ids and b in ids for a, b in graph["edges"])

    # Without a policy nothing is judged, and the tree says so.
    code, out, _ = cli(capsys, "show", "model.bin", "--tree")
    assert code == 0 and "not verified: give --policy" in out and "✔" not in out

    # Refused under a policy: exit 1, marks on the refused nodes.
    policy = revoking_policy(chain, tmp_path, capsys)
    code, out, _ = cli(capsys, "show", "model.bin", "--tree", "--policy", str(policy))
    assert code == 1 and "✘ dataset digits" in out and out.rstrip().endswith("1 failed check(s)")


def test_show_keeps_its_listing_and_refuses_lineage_options_without_tree(
    chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", "model.bin", "--format", "json")
    assert code == 0 and set(json.loads(out)) == {"subject", "attestations"}
    code, _, err = cli(capsys, "show", "model.bin", "--policy", str(chain.policy))
    assert code == 2 and "--tree" in err
    (chain.root / "other.bin").write_bytes(b"unattested")
    code, out, _ = cli(capsys, "show", "other.bin", "--tree")
    assert code == 1


def test_layers_are_deterministic_and_pull_sources_next_to_their_consumers() -> None:
    ids = ["model", "train", "data", "source", "code", "eval"]
    edges = [
        ("train", "model"),
        ("data", "train"),
        ("source", "data"),
        ("code", "train"),
        ("model", "eval"),
    ]
    layer = layers(ids, edges)
    assert layer == {"source": 0, "data": 1, "code": 1, "train": 2, "model": 3, "eval": 4}
    heights = dict.fromkeys(ids, 40.0)
    first = place(ids, edges, heights)
    assert first == place(ids, edges, heights)
    boxes = first.boxes
    assert boxes["source"].x < boxes["data"].x < boxes["train"].x < boxes["model"].x
    assert boxes["code"].x == boxes["data"].x and boxes["code"].y != boxes["data"].y
    # A cycle (hostile evidence can describe one) is laid out, not looped on.
    cyclic = place(["a", "b"], [("a", "b"), ("b", "a")], {"a": 10.0, "b": 10.0})
    assert cyclic.layers == {"a": 0, "b": 1}


def test_hostile_names_cannot_break_out_of_svg_text(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signer (even a trusted one) picks every string: the page shows them as text."""
    predicate = tmp_path / "p.json"
    predicate.write_text(
        json.dumps(
            {
                "note": '"/><script>alert(1)</script><text x="',
                "style": "</style><style>*{display:none}</style>",
                "long": "A" * 5000,
            }
        )
    )
    code, _, err = cli(
        capsys,
        "attest",
        "model.bin",
        "--predicate-type",
        'https://example.org/"><svg onload=alert(1)>/v1',
        "--predicate",
        str(predicate),
        "--name",
        "</title><script>x</script>",
    )
    assert code == 0, err
    report = tmp_path / "report.html"
    code, _, err = cli(
        capsys, "audit", "model.bin", "--policy", str(chain.policy), "--html", str(report)
    )
    assert code == 0, err
    page = report.read_text()
    structure = page_structure(page)
    assert structure.tags <= SAFE_TAGS
    assert not [a for a in structure.attributes if "alert" in a or "<" in a or '"' in a]
    assert "display:none" not in structure.style
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert max(len(m) for m in re.findall(r"A+", page)) <= 300  # bounded, not 5000

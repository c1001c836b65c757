"""provenance release: a portable file of a model's whole chain that verifies with no ledger, to
the same verdict; refusals; tampered and hostile release files are refused or shown as data."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from provenance.bundle import Bundle
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
from tests.chain_helpers import SAFE_TAGS, Chain, attestation_id, build_chain, cli, page_structure

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "attest" / "release.schema.json").read_text()
)
DATASET = "https://ml-provenance.dev/attestation/dataset/v1"
EVALUATION = "https://ml-provenance.dev/attestation/evaluation/v1"


@pytest.fixture
def chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Chain:
    return build_chain(tmp_path / "proj", monkeypatch, capsys)


def verdict(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code, out, err = cli(capsys, "verify", *argv, "--format", "json")
    assert code in (0, 1), err
    report = json.loads(out)
    return code, {
        "trusted": report["trusted"],
        "root": report["root"],
        "failures": report["failures"],
    }


def auditor_dir(tmp_path: Path, chain: Chain, release: Path, extra: str = "") -> Path:
    """An empty directory (no project above it) holding the model, the release and a policy."""
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(chain.model, auditor / "model.bin")
    shutil.copy(release, auditor / release.name)
    chain.portable_policy(auditor, extra)
    assert not any((p / ".provenance").exists() for p in (auditor, *auditor.parents))
    return auditor


@pytest.mark.parametrize("refused", [False, True], ids=["trusted", "refused"])
def test_the_release_gives_the_same_verdict_with_no_ledger(
    chain: Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    refused: bool,
) -> None:
    policy = chain.policy
    if refused:
        policy = tmp_path / "strict.yaml"
        text = chain.policy.read_text().replace("keys/default.pub", str(chain.public_key))
        text = text.replace(
            "      - predicateType: https://slsa.dev/provenance/v1\n        signedBy: [project]\n",
            "      - predicateType: https://slsa.dev/provenance/v1\n        signedBy: [project]\n"
            f"      - predicateType: {EVALUATION}\n        signedBy: [project]\n",
        )
        policy.write_text(text)
    release = tmp_path / "model.provenance.jsonl"
    code, out, err = cli(capsys, "release", "model.bin", "-o", str(release))
    assert code == 0, err
    assert "3 attestation(s) and 1 manifest(s)" in out
    with_ledger = verdict(capsys, "model.bin", "--policy", str(policy))
    assert with_ledger[0] == (1 if refused else 0)

    auditor = auditor_dir(tmp_path, chain, release)
    if refused:
        shutil.copy(policy, auditor / "policy.yaml")
    monkeypatch.chdir(auditor)
    offline = verdict(
        capsys, "model.bin", "--policy", "policy.yaml", "--bundle", "model.provenance.jsonl"
    )
    assert offline == with_ledger


def test_the_release_holds_the_chain_and_its_manifests(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "r.jsonl"
    code, out, err = cli(
        capsys,
        "release",
        "model.bin",
        "-o",
        str(release),
        "--policy",
        str(chain.policy),
        "--format",
        "json",
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["trusted"] is True
    assert document["sha256"] == hashlib.sha256(release.read_bytes()).hexdigest()
    lines = [json.loads(line) for line in release.read_bytes().splitlines()]
    kinds = [line["mediaType"] for line in lines]
    assert kinds.count("application/vnd.dev.sigstore.bundle.v0.3+json") == 3
    assert kinds[-1] == "application/vnd.ml-provenance.manifest.v1+json"
    types = {
        json.loads(base64.b64decode(line["dsseEnvelope"]["payload"]))["predicateType"]
        for line in lines
        if "dsseEnvelope" in line
    }
    assert types == {
        DATASET,
        "https://slsa.dev/provenance/v1",
        "https://model_signing/signature/v1.0",
    }
    # The exact signed bundles of the ledger, byte for byte.
    code, out, _ = cli(capsys, "ledger", "export")
    assert set(out.encode().splitlines()) == set(release.read_bytes().splitlines())


def test_nothing_attested_is_not_released(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (chain.root / "other.bin").write_bytes(b"never attested")
    code, _, err = cli(capsys, "release", "other.bin", "-o", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert "nothing in the ledger attests" in err
    assert not (tmp_path / "r.jsonl").exists()
    # a dataset is released too: it has a chain of its own
    assert cli(capsys, "release", "data", "-o", str(tmp_path / "d.jsonl"))[0] == 0


def test_a_release_that_does_not_verify_is_not_written(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = attestation_id(capsys, DATASET)
    policy = tmp_path / "revoked.yaml"
    policy.write_text(
        chain.policy.read_text().replace("keys/default.pub", str(chain.public_key))
        + f"revoked:\n  attestations: ['{revoked}']\n"
    )
    out_file = tmp_path / "r.jsonl"
    code, _, err = cli(capsys, "release", "model.bin", "-o", str(out_file), "--policy", str(policy))
    assert code == 1
    assert "does not verify" in err and "nothing written" in err
    assert "is revoked" in err  # the failures are shown
    assert not out_file.exists()
    # without --policy the same chain is released (it is evidence; the verifier judges it)
    assert cli(capsys, "release", "model.bin", "-o", str(out_file))[0] == 0


def test_a_tampered_line_is_refused_cleanly(
    chain: Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = tmp_path / "model.provenance.jsonl"
    assert cli(capsys, "release", "model.bin", "-o", str(release))[0] == 0
    lines = release.read_bytes().splitlines()
    auditor = auditor_dir(tmp_path, chain, release)
    monkeypatch.chdir(auditor)

    # 1. A signed payload edited (the dataset renamed): its signature no longer verifies.
    first = json.loads(lines[0])
    statement = json.loads(base64.b64decode(first["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == DATASET
    statement["predicate"]["name"] = "digits-poisoned"
    first["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered = auditor / "tampered.jsonl"
    tampered.write_bytes(b"\n".join([json.dumps(first).encode(), *lines[1:]]) + b"\n")
    code, out, err = cli(
        capsys, "verify", "model.bin", "--policy", "policy.yaml", "--bundle", str(tampered)
    )
    assert code == 1 and "REFUSED" in out
    assert "signature does not verify" in out
    assert "Traceback" not in err

    # 2. A line cut short: not JSON. Exit 2, one line, no traceback.
    broken = auditor / "broken.jsonl"
    broken.write_bytes(b"\n".join([lines[0][:-20], *lines[1:]]) + b"\n")
    code, out, err = cli(
        capsys, "verify", "model.bin", "--policy", "policy.yaml", "--bundle", str(broken)
    )
    assert code == 2 and out == ""
    assert err.startswith("provenance: error:") and err.count("\n") == 1
    assert "broken.jsonl:1" in err

    # 3. The model swapped for other bytes: nothing in the release names it.
    (auditor / "model.bin").write_bytes(b"other weights")
    code, out, _ = cli(
        capsys, "verify", "model.bin", "--policy", "policy.yaml", "--bundle", str(release)
    )
    assert code == 1 and "no attestation names this artifact" in out


def test_hostile_content_in_a_release_is_only_data(
    chain: Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = tmp_path / "model.provenance.jsonl"
    assert cli(capsys, "release", "model.bin", "-o", str(release))[0] == 0
    model_digest = hashlib.sha256(chain.model.read_bytes()).hexdigest()
    # Signed by a key nobody trusts, naming the model, full of paths, markup and escapes.
    hostile = Statement(
        (
            ResourceDescriptor(
                {"sha256": model_digest}, name="../../../../tmp/evil\x1b[31m<script>x</script>"
            ),
        ),
        "https://example.org/x<script>/v1",
        {
            "path": "../../../etc/passwd",
            "html": "<img src=x onerror=alert(1)>",
            "ansi": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
            "css": "red;background:url(https://evil.example/x)",
        },
    )
    bundle = Bundle.sign_statement(hostile, KeySigner.generate())
    auditor = auditor_dir(tmp_path, chain, release)
    with (auditor / release.name).open("ab") as handle:
        handle.write(bundle.raw + b"\n")
    monkeypatch.chdir(auditor)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    code, out, err = cli(
        capsys, "verify", "model.bin", "--policy", "policy.yaml", "--bundle", release.name
    )
    assert code == 0, out + err  # an untrusted extra attestation changes nothing

    code, out, _ = cli(
        capsys,
        "show",
        "model.bin",
        "--tree",
        "--policy",
        "policy.yaml",
        "--bundle",
        release.name,
    )
    assert code == 0
    assert "\x1b" not in out and "\\x1b" in out  # shown escaped, never sent to the terminal
    assert "no root of the policy verifies this signature" in out

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
    structure = page_structure(page)
    assert structure.tags <= SAFE_TAGS, structure.tags - SAFE_TAGS
    assert not [v for v in structure.attributes if "evil" in v or "<" in v or "alert" in v]
    assert "evil" not in structure.style
    assert "\x1b" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown as text
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert set(after) - set(before) == {Path("auditor/audit.html")}
    assert not Path("/tmp/evil").exists()

    # A manifest whose paths climb out of the dataset is refused when the file is read.
    bad_manifest = {
        "algorithm": "sha256",
        "entries": [{"digest": "0" * 64, "path": "../escape", "size": 1, "type": "file"}],
        "ignore": [".git/", ".provenance/"],
        "mediaType": "application/vnd.ml-provenance.manifest.v1+json",
    }
    (auditor / "evil.jsonl").write_text(json.dumps(bad_manifest) + "\n")
    code, _, err = cli(
        capsys, "verify", "model.bin", "--policy", "policy.yaml", "--bundle", "evil.jsonl"
    )
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_sigstore_signs_a_release_statement(
    chain: Chain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--sigstore, with Sigstore itself replaced (it needs the network and an OIDC identity):
    the statement signed names the release file's bytes and matches the published schema."""
    from provenance.signing import sigstore

    signed: list[Statement] = []
    stand_in = KeySigner.generate()

    def sign_statement(statement: Statement, **_: object) -> Bundle:
        signed.append(statement)
        return Bundle.sign_statement(statement, stand_in)

    monkeypatch.setattr(sigstore, "sign_statement", sign_statement)
    monkeypatch.setattr(
        sigstore, "certificate_identity", lambda _b: ("ci@example.org", "https://issuer.example")
    )
    monkeypatch.setattr(sigstore, "verify", lambda *_a, **_k: None)
    release = tmp_path / "model.provenance.jsonl"
    code, out, err = cli(
        capsys,
        "release",
        "model.bin",
        "-o",
        str(release),
        "--policy",
        str(chain.policy),
        "--sigstore",
    )
    assert code == 0, err
    assert "signed by ci@example.org (https://issuer.example)" in out
    assert "sigstore verify identity" in out
    (statement,) = signed
    document = statement.to_json()
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert document["subject"][0] == {
        "name": "model.provenance.jsonl",
        "digest": {"sha256": hashlib.sha256(release.read_bytes()).hexdigest()},
    }
    assert len(document["predicate"]["attestations"]) == 3
    saved = Bundle.from_bytes((tmp_path / "model.provenance.jsonl.sigstore.json").read_bytes())
    assert saved.statement == statement
    code, out, _ = cli(capsys, "log", "--format", "json")
    assert (
        json.loads(out)[-1]["predicateType"] == "https://ml-provenance.dev/attestation/release/v1"
    )


def test_usage_errors(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "release", "model.bin", "-o", str(tmp_path / "r"), "--staging")[0] == 2
    assert cli(capsys, "release", "model.bin", "-o", str(tmp_path / "r"), "--offline")[0] == 2


@pytest.mark.online
@pytest.mark.skipif(os.environ.get("PROVENANCE_ONLINE_TESTS") != "1", reason="needs the network")
def test_keyless_release_signing(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real keyless signing (staging): needs the network and an OIDC identity (ambient CI
    credentials, or a browser)."""
    release = tmp_path / "model.provenance.jsonl"
    code, _, err = cli(
        capsys, "release", "model.bin", "-o", str(release), "--sigstore", "--staging"
    )
    assert code == 0, err
    bundle = Bundle.from_bytes((tmp_path / "model.provenance.jsonl.sigstore.json").read_bytes())
    assert bundle.keyless
    assert (
        bundle.statement.subjects[0].digest["sha256"]
        == hashlib.sha256(release.read_bytes()).hexdigest()
    )

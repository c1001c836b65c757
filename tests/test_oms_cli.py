"""``provenance model sign/verify`` end to end, and OMS signatures standing in a verified chain.

model_signing runs as its own CLI here (a subprocess), so its defaults -- ``model.sig`` in the
working directory, the key hint it checks -- are the ones exercised.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance.bundle import Bundle
from provenance.cli import main
from provenance.signing.keys import KeySigner, PublicKey
from provenance.statement import ResourceDescriptor, Statement
from tests.test_oms import write_keys

pytest.importorskip("model_signing")

OMS = "https://model_signing/signature/v1.0"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ms_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def policy_text(key: str = "keys/key.pub", *, revoked: str | None = None) -> str:
    text = f"""version: 1
roots:
  releaser:
    key: {key}
rules:
  model:
    require:
      - predicateType: {OMS}
        signedBy: [releaser]
"""
    if revoked:
        text += f"revoked:\n  keys: [{revoked}]\n"
    return text


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory (no project) with a key pair, a checkpoint, a model and a policy."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    write_keys(tmp_path / "keys")
    (tmp_path / "ckpt.pt").write_bytes(b"\x80\x02 weights " * 64)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x01" * 300)
    (tmp_path / "model" / "config.json").write_bytes(b"{}")
    (tmp_path / "policy.yaml").write_text(policy_text())
    return tmp_path


def test_sign_then_model_signing_cli_verifies(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem")
    assert code == 0, err
    assert "ckpt.pt (1 file, signature model.sig, not recorded)" in out
    assert (work / "model.sig").is_file()  # model_signing's default name and place
    result = ms_cli(
        "verify", "key", "ckpt.pt", "--signature", "model.sig", "--public_key", "keys/key.pub",
        cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    code, out, _ = run(
        capsys,
        "model",
        "verify",
        "ckpt.pt",
        "--signature",
        "model.sig",
        "--public-key",
        "keys/key.pub",
    )
    assert code == 0 and out.startswith("verified: ckpt.pt matches its signature (1 file")


def test_model_signing_cli_signs_then_we_verify_and_both_refuse_a_change(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ms_cli(
        "sign", "key", "model", "--private_key", "keys/key.pem", "--signature", "m.sig", cwd=work
    )
    assert result.returncode == 0, result.stderr
    verify = ("model", "verify", "model", "--signature", "m.sig", "--public-key", "keys/key.pub")
    code, out, err = run(capsys, *verify)
    assert code == 0, err
    code, out, _ = run(capsys, *verify, "--format", "json")
    report = json.loads(out)
    assert report["verified"] is True
    assert [f["name"] for f in report["files"]] == ["config.json", "weights.bin"]

    (work / "model" / "weights.bin").write_bytes(b"\x02" * 300)
    (work / "model" / "extra.py").write_bytes(b"import os")
    code, out, err = run(capsys, *verify)
    assert code == 1
    assert "changed weights.bin; added extra.py" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    code, out, _ = run(capsys, *verify, "--format", "json")
    assert code == 1 and "weights.bin" in json.loads(out)["reason"]
    result = ms_cli(
        "verify", "key", "model", "--signature", "m.sig", "--public_key", "keys/key.pub", cwd=work
    )
    assert result.returncode != 0
    assert "Signature mismatch" in result.stderr


def test_a_removed_file_is_named(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "model", "sign", "model", "--key", "keys/key.pem")[0] == 0
    (work / "model" / "config.json").unlink()
    code, _, err = run(
        capsys,
        "model",
        "verify",
        "model",
        "--signature",
        "model.sig",
        "--public-key",
        "keys/key.pub",
    )
    assert code == 1 and "removed config.json" in err


def test_a_wrong_public_key_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_keys(work / "keys", "other")
    assert run(capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem")[0] == 0
    code, _, err = run(
        capsys,
        "model",
        "verify",
        "ckpt.pt",
        "--signature",
        "model.sig",
        "--public-key",
        "keys/other.pub",
    )
    assert code == 1 and "not signed by this public key" in err


def _wrong_predicate(signature: Path) -> bytes:
    signer = KeySigner.from_file(Path("keys/key.pem"))
    other = Statement((ResourceDescriptor({"sha256": "a" * 64}, name="m"),), "https://x/y", {})
    return Bundle.sign_statement(other, signer, pem_hint=True).raw


def _tampered_payload(signature: Path) -> bytes:
    document = json.loads(signature.read_bytes())
    payload = base64.b64decode(document["dsseEnvelope"]["payload"]).replace(b"ckpt.pt", b"ckpt.PT")
    document["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("corrupt", "code", "message"),
    [
        (lambda s: s.read_bytes()[: len(s.read_bytes()) // 2], 2, "not valid JSON"),
        (lambda s: b"not json at all", 2, "JSON"),
        (lambda s: b"", 2, "JSON"),
        (lambda s: b'{"mediaType": "application/json"}', 2, "mediaType"),
        (_wrong_predicate, 1, "not an OpenSSF model signature"),
        (_tampered_payload, 1, "does not verify"),
    ],
)
def test_a_corrupt_signature_is_one_line_and_no_traceback(
    corrupt: Callable[[Path], bytes],
    code: int,
    message: str,
    work: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem")[0] == 0
    signature = work / "model.sig"
    signature.write_bytes(corrupt(signature))
    got, out, err = run(
        capsys,
        "model",
        "verify",
        "ckpt.pt",
        "--signature",
        "model.sig",
        "--public-key",
        "keys/key.pub",
    )
    assert got == code, err
    assert message in err
    assert err.startswith("provenance: error: ") and err.count("\n") == 1
    assert "Traceback" not in err + out


def test_missing_inputs_are_exit_two(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "model",
        "verify",
        "ckpt.pt",
        "--signature",
        "none.sig",
        "--public-key",
        "keys/key.pub",
    )
    assert code == 2 and "none.sig" in err
    code, _, err = run(capsys, "model", "sign", "ckpt.pt")
    assert code == 2 and "no --key" in err
    code, _, err = run(capsys, "model", "sign", "missing.pt", "--key", "keys/key.pem")
    assert code == 2 and "missing.pt" in err
    before = (work / "ckpt.pt").read_bytes()
    code, _, err = run(
        capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem", "--signature", "ckpt.pt"
    )
    assert code == 2 and "overwrite" in err
    assert (work / "ckpt.pt").read_bytes() == before


# -- an OMS signature as a checkpoint's attestation under a policy -------------------------------


def test_our_signature_stands_in_the_chain_until_the_checkpoint_changes(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem")[0] == 0
    verify = ("verify", "ckpt.pt", "--policy", "policy.yaml", "--bundle", "model.sig")
    code, out, _ = run(capsys, *verify)
    assert code == 0, out
    assert out.strip().endswith("TRUSTED")
    (work / "ckpt.pt").write_bytes(b"poisoned")
    code, out, _ = run(capsys, *verify)
    assert code == 1
    assert "no attestation names this artifact" in out


def test_a_model_signing_signature_stands_in_the_chain(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ms_cli(
        "sign", "key", "ckpt.pt", "--private_key", "keys/key.pem", "--signature", "ms.sig", cwd=work
    )
    assert result.returncode == 0, result.stderr
    # Evidence is JSON Lines: the bundle on one line (its signed payload is unchanged).
    line = json.dumps(json.loads((work / "ms.sig").read_bytes()), separators=(",", ":"))
    (work / "evidence.jsonl").write_text(line + "\n")
    verify = ("verify", "ckpt.pt", "--policy", "policy.yaml", "--bundle", "evidence.jsonl")
    code, out, _ = run(capsys, *verify)
    assert code == 0, out
    code, out, _ = run(capsys, *verify, "--format", "json")
    assert json.loads(out)["trusted"] is True

    key_id = PublicKey.from_file(work / "keys" / "key.pub").key_id
    (work / "revoked.yaml").write_text(policy_text(revoked=key_id))
    code, out, _ = run(
        capsys, "verify", "ckpt.pt", "--policy", "revoked.yaml", "--bundle", "evidence.jsonl"
    )
    assert code == 1 and "is revoked" in out

    (work / "ckpt.pt").write_bytes(b"changed")
    assert run(capsys, *verify)[0] == 1


def test_a_hint_naming_no_key_does_not_decide(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint is unsigned: a label naming no known key neither passes nor fails a bundle."""
    assert run(capsys, "model", "sign", "ckpt.pt", "--key", "keys/key.pem")[0] == 0
    document = json.loads((work / "model.sig").read_bytes())
    document["verificationMaterial"]["publicKey"]["hint"] = "f" * 64
    document["dsseEnvelope"]["signatures"][0]["keyid"] = "f" * 64
    (work / "relabelled.jsonl").write_text(json.dumps(document) + "\n")
    verify = ("verify", "ckpt.pt", "--bundle", "relabelled.jsonl", "--policy")
    assert run(capsys, *verify, "policy.yaml")[0] == 0
    write_keys(work / "keys", "other")
    (work / "other.yaml").write_text(policy_text("keys/other.pub"))
    code, out, _ = run(capsys, *verify, "other.yaml")
    assert code == 1 and "signed by key ffffffffffffffff, not releaser's key" in out


def test_a_directory_signature_does_not_vouch_for_one_of_its_files(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "model", "sign", "model", "--key", "keys/key.pem")[0] == 0
    code, out, _ = run(
        capsys, "verify", "model/weights.bin", "--policy", "policy.yaml", "--bundle", "model.sig"
    )
    assert code == 1 and "no attestation names this artifact" in out


def test_in_a_project_the_signature_is_recorded_and_verified_from_the_ledger(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init")[0] == 0
    code, out, err = run(capsys, "model", "sign", "ckpt.pt")  # the project's default key
    assert code == 0, err
    assert "ledger entry 1" in out
    assert run(capsys, "ledger", "check")[0] == 0
    code, out, _ = run(capsys, "show", "ckpt.pt", "--format", "json")
    assert code == 0 and json.loads(out)["attestations"][0]["predicateType"] == OMS
    (work / "project.yaml").write_text(policy_text(".provenance/keys/default.pub"))
    code, out, _ = run(capsys, "verify", "ckpt.pt", "--policy", "project.yaml")
    assert code == 0, out
    code, out, _ = run(capsys, "model", "sign", "ckpt.pt", "--signature", "again.sig")
    assert code == 0 and "already in the ledger" in out
    code, out, _ = run(capsys, "model", "sign", "model", "--no-ledger")
    assert code == 0 and "not recorded" in out
    assert run(capsys, "ledger", "check")[0] == 0
    # A model_signing signature, verified on import under a trusted key despite its hint form.
    result = ms_cli(
        "sign", "key", "model", "--private_key", "keys/key.pem", "--signature", "ms.sig", cwd=work
    )
    assert result.returncode == 0, result.stderr
    code, out, err = run(capsys, "ledger", "import", "ms.sig", "--trust-key", "keys/key.pub")
    assert code == 0, out + err
    assert run(capsys, "ledger", "check")[0] == 0
    exported = work / "chain.jsonl"
    assert run(capsys, "ledger", "export", "--for", "ckpt.pt", "-o", str(exported))[0] == 0
    code, out, _ = run(
        capsys, "verify", "ckpt.pt", "--policy", "project.yaml", "--bundle", str(exported)
    )
    assert code == 0, out

"""OpenSSF model signing (OMS v1.0) interop, both ways, against the real model_signing package.

Ours signs and model_signing verifies; model_signing signs and ours verifies; after a change to
the model both refuse. Keys and models are generated here; model_signing runs in-process
(its documented ``signing``/``verifying`` API) and, where its CLI defaults matter, as its CLI.
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
from provenance.errors import FormatError, RefusedError
from provenance.interop.oms import (
    ModelMismatchError,
    hash_model,
    read_signature,
    sign_model,
    verify_model,
)
from provenance.predicates.oms import (
    OMS_PREDICATE,
    OmsResource,
    UnsupportedModelSignatureError,
    model_statement,
    parse_statement,
    root_digest,
    vouched_digests,
)
from provenance.signing.keys import KeySigner, KeyType, PublicKey, SignatureError
from provenance.statement import ResourceDescriptor, Statement
from tests.conftest import make_tree

model_signing = pytest.importorskip("model_signing")

MODEL = {
    "config.json": b'{"layers": 2}\n',
    "weights/a.bin": b"\x00\x01\x02" * 100,
    "weights/b.bin": b"\x03" * 7,
    "a.txt": b"sorted after a/ by model_signing",
    "a/b": b"nested",
    "empty": None,
    ".gitignore": b"*.tmp\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
}


def write_keys(directory: Path, name: str = "key") -> tuple[Path, Path]:
    """An EC P-256 pair as PEM files, as model_signing expects them (PKCS#8, SPKI)."""
    signer = KeySigner.generate(KeyType.ECDSA_P256)
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / f"{name}.pem", directory / f"{name}.pub"
    private.write_bytes(signer.private_pem())
    private.chmod(0o600)
    public.write_bytes(signer.public_key.pem)
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_keys(tmp_path / "keys")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "model", MODEL)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"PK\x03\x04 a checkpoint " * 50)
    return path


def ms_sign(model: Path, signature: Path, private: Path) -> None:
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[signature.name])
    ).sign(model, signature)


def ms_verify(model: Path, signature: Path, public: Path) -> None:
    """model_signing's verification (raises ValueError when it refuses)."""
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        model, signature
    )


def ms_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def our_sign(model: Path, signature: Path, private: Path) -> None:
    bundle = sign_model(model, KeySigner.from_file(private), signature=signature)
    signature.write_bytes(bundle.raw)


def our_verify(model: Path, signature: Path, public: Path) -> None:
    verify_model(model, read_signature(signature), PublicKey.from_file(public), signature=signature)


Signer = Callable[[Path, Path, Path], None]
SIGNERS: dict[str, Signer] = {"ours": our_sign, "model_signing": ms_sign}


# -- both ways ------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_by", list(SIGNERS))
@pytest.mark.parametrize("kind", ["directory", "file"])
def test_each_tool_verifies_the_others_signature(
    signed_by: str, kind: str, model: Path, checkpoint: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    target = model if kind == "directory" else checkpoint
    signature = target.parent / f"{kind}.sig"
    SIGNERS[signed_by](target, signature, private)
    ms_verify(target, signature, public)
    our_verify(target, signature, public)


def test_both_tools_compute_the_same_statement(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, _ = keys
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    our_sign(model, ours, private)
    ms_sign(model, theirs, private)
    a, b = read_signature(ours).statement, read_signature(theirs).statement
    assert a.subjects == b.subjects  # same name, same root digest
    assert a.predicate["resources"] == b.predicate["resources"]  # same files, same order
    names = [r["name"] for r in a.predicate["resources"]]
    assert names == ["a/b", "a.txt", "config.json", "weights/a.bin", "weights/b.bin"]
    assert set(a.predicate["serialization"]["ignore_paths"]) >= {".git", ".gitignore"}


def test_single_file_resource_is_dot_and_root_is_the_digest_of_its_digest(
    checkpoint: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    import hashlib

    signature = tmp_path / "ckpt.sig"
    ms_sign(checkpoint, signature, keys[0])
    statement = read_signature(signature).statement
    file_digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert statement.predicate["resources"] == (
        {"name": ".", "algorithm": "sha256", "digest": file_digest},
    )
    root = hashlib.sha256(bytes.fromhex(file_digest)).hexdigest()
    assert statement.subjects[0].digest["sha256"] == root
    assert statement.subjects[0].name == "ckpt.pt"
    assert [d.value for d in vouched_digests(statement)] == [file_digest]


def test_hints_are_model_signings_form(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    key = PublicKey.from_file(public)
    for name, sign in SIGNERS.items():
        signature = tmp_path / f"{name}.sig"
        sign(model, signature, private)
        bundle = read_signature(signature)
        assert bundle.key_hint == key.pem_hint != key.key_id
        document = json.loads(signature.read_bytes())
        assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert document["verificationMaterial"] == {
            "publicKey": {"hint": key.pem_hint},
            "tlogEntries": [],
        }
        assert document["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


# -- the model_signing CLI and its defaults ----------------------------------------------------


def test_model_signing_cli_accepts_ours_with_a_signature_inside_the_model(
    model: Path, keys: tuple[Path, Path]
) -> None:
    from provenance.cli import main

    private, public = keys
    signature = model / "model.sig"
    assert (
        main(["model", "sign", str(model), "--key", str(private), "--signature", str(signature)])
        == 0
    )
    result = ms_cli(
        "verify", "key", ".", "--signature", "model.sig", "--public_key", str(public), cwd=model
    )
    assert result.returncode == 0, result.stderr
    assert "Verification succeeded" in result.stdout


def test_ours_accepts_the_model_signing_cli_default_signature(
    model: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from provenance.cli import main

    private, public = keys
    result = ms_cli("sign", "key", ".", "--private_key", str(private), cwd=model)
    assert result.returncode == 0, result.stderr
    assert (model / "model.sig").is_file()  # its default: model.sig in the working directory
    code = main(
        [
            "model",
            "verify",
            str(model),
            "--signature",
            str(model / "model.sig"),
            "--public-key",
            str(public),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("verified:")


# -- refusals ---------------------------------------------------------------------------------


def _change(model: Path) -> str:
    (model / "weights" / "b.bin").write_bytes(b"poisoned")
    return "changed weights/b.bin"


def _add(model: Path) -> str:
    (model / "weights" / "backdoor.bin").write_bytes(b"extra")
    return "added weights/backdoor.bin"


def _remove(model: Path) -> str:
    (model / "config.json").unlink()
    return "removed config.json"


@pytest.mark.parametrize("signed_by", list(SIGNERS))
@pytest.mark.parametrize("tamper", [_change, _add, _remove])
def test_both_tools_refuse_a_changed_model(
    signed_by: str,
    tamper: Callable[[Path], str],
    model: Path,
    tmp_path: Path,
    keys: tuple[Path, Path],
) -> None:
    private, public = keys
    signature = tmp_path / "model.sig"
    SIGNERS[signed_by](model, signature, private)
    expected = tamper(model)
    with pytest.raises(ValueError, match="Signature mismatch"):
        ms_verify(model, signature, public)
    with pytest.raises(ModelMismatchError) as caught:
        our_verify(model, signature, public)
    assert expected in caught.value.message


@pytest.mark.parametrize("signed_by", list(SIGNERS))
def test_both_tools_refuse_a_changed_checkpoint(
    signed_by: str, checkpoint: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    signature = tmp_path / "ckpt.sig"
    SIGNERS[signed_by](checkpoint, signature, private)
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="Signature mismatch"):
        ms_verify(checkpoint, signature, public)
    with pytest.raises(ModelMismatchError, match=r"ckpt\.pt does not match its signature"):
        our_verify(checkpoint, signature, public)


@pytest.mark.parametrize("signed_by", list(SIGNERS))
def test_a_wrong_public_key_is_refused(
    signed_by: str, model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, _ = keys
    _, other = write_keys(tmp_path / "other")
    signature = tmp_path / "model.sig"
    SIGNERS[signed_by](model, signature, private)
    with pytest.raises(ValueError, match="Key mismatch"):
        ms_verify(model, signature, other)
    with pytest.raises(SignatureError, match="not signed by this public key"):
        our_verify(model, signature, other)


def test_a_forged_signature_under_the_right_hint_is_refused(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    _, public = keys
    attacker_private, _ = write_keys(tmp_path / "attacker")
    signature = tmp_path / "model.sig"
    our_sign(model, signature, attacker_private)
    document = json.loads(signature.read_bytes())
    document["verificationMaterial"]["publicKey"]["hint"] = PublicKey.from_file(public).pem_hint
    signature.write_text(json.dumps(document))
    with pytest.raises(SignatureError, match="does not verify"):
        our_verify(model, signature, public)


def test_a_signature_from_another_key_with_no_matching_hint_still_verifies_under_the_right_key(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """The hint is an unsigned label: a wrong one cannot make a good signature bad."""
    private, public = keys
    signature = tmp_path / "model.sig"
    our_sign(model, signature, private)
    document = json.loads(signature.read_bytes())
    document["verificationMaterial"]["publicKey"]["hint"] = "0" * 64
    signature.write_text(json.dumps(document))
    our_verify(model, signature, public)


def test_nested_git_directories_are_left_out_by_both(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    make_tree(model, {"vendor/.git/config": b"[core]\n", ".provenance/cache/x": b"state"})
    signature = tmp_path / "model.sig"
    our_sign(model, signature, private)
    ignored = read_signature(signature).statement.predicate["serialization"]["ignore_paths"]
    assert {"vendor/.git", ".provenance"} <= set(ignored)
    ms_verify(model, signature, public)
    our_verify(model, signature, public)


def test_files_the_walker_never_hashes_cannot_be_vouched_for(
    model: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    make_tree(model, {"vendor/.git/config": b"[core]\n"})
    signature = tmp_path / "model.sig"
    ms_sign(model, signature, private)  # model_signing hashes vendor/.git/config
    with pytest.raises(RefusedError, match=r"cannot check files inside \.git/"):
        our_verify(model, signature, public)


def test_kind_mismatch_is_refused(
    model: Path, checkpoint: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    signature = tmp_path / "ckpt.sig"
    our_sign(checkpoint, signature, private)
    with pytest.raises(RefusedError, match="single file"):
        our_verify(model, signature, public)


def test_ed25519_keys_cannot_make_oms_signatures(model: Path, tmp_path: Path) -> None:
    from provenance.errors import InputError

    with pytest.raises(InputError, match="ECDSA P-256"):
        sign_model(model, KeySigner.generate(KeyType.ED25519), signature=tmp_path / "m.sig")


# -- the predicate, without files ------------------------------------------------------------


def _resources() -> list[OmsResource]:
    return [
        OmsResource("b", "b" * 64),
        OmsResource("a.txt", "a" * 64),
        OmsResource("a/b", "c" * 64),
    ]


def test_statements_we_build_parse_and_list_resources_in_model_signing_order() -> None:
    statement = model_statement("m", _resources(), ignore_paths=[".git", "model.sig"])
    signature = parse_statement(statement)
    assert [r.name for r in signature.resources] == ["a/b", "a.txt", "b"]
    assert signature.root == root_digest(signature.resources)
    assert vouched_digests(statement) == ()  # several files: nothing beyond the subject


def _with(statement: Statement, **changes: object) -> Statement:
    document = statement.to_json()
    predicate = document["predicate"]
    for key, value in changes.items():
        if key in ("method", "hash_type", "allow_symlinks", "shard_size", "ignore_paths"):
            predicate["serialization"][key] = value
        else:
            predicate[key] = value
    return Statement.from_bytes(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"method": "shards", "shard_size": 1000}, UnsupportedModelSignatureError, "method"),
        ({"hash_type": "blake2"}, UnsupportedModelSignatureError, "hash type"),
        ({"shard_size": 10}, UnsupportedModelSignatureError, "shard_size"),
        ({"allow_symlinks": "no"}, FormatError, "allow_symlinks"),
        ({"ignore_paths": ["../outside"]}, FormatError, "escapes"),
        ({"resources": []}, RefusedError, "no files"),
        (
            {"resources": [{"name": "x", "algorithm": "sha256", "digest": "A" * 64}]},
            FormatError,
            "malformed",
        ),
        (
            {"resources": [{"name": "/etc/passwd", "algorithm": "sha256", "digest": "a" * 64}]},
            FormatError,
            "absolute",
        ),
    ],
)
def test_malformed_or_unsupported_statements_are_refused(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    statement = _with(model_statement("m", _resources()), **changes)
    with pytest.raises(error, match=message):
        parse_statement(statement)
    assert vouched_digests(statement) == ()


def test_an_inconsistent_root_digest_is_refused_and_indexes_nothing() -> None:
    good = model_statement("ckpt.pt", [OmsResource(".", "d" * 64)])
    assert len(vouched_digests(good)) == 1
    document = good.to_json()
    document["subject"][0]["digest"]["sha256"] = "e" * 64
    bad = Statement.from_bytes(json.dumps(document).encode())
    with pytest.raises(RefusedError, match="inconsistent"):
        parse_statement(bad)
    assert vouched_digests(bad) == ()


def test_another_predicate_type_is_refused() -> None:
    other = Statement((ResourceDescriptor({"sha256": "a" * 64}, name="m"),), "https://x/y", {})
    with pytest.raises(RefusedError, match="not an OpenSSF model signature") as caught:
        parse_statement(other)
    assert OMS_PREDICATE in str(caught.value.hint)


def test_hash_model_matches_model_signing_hashing(model: Path) -> None:
    theirs = model_signing.hashing.Config().hash(model)
    expected = [(r.identifier, r.digest.digest_hex) for r in theirs.resource_descriptors()]
    ours = hash_model(model, [".git", ".gitattributes", ".github", ".gitignore"])
    assert sorted(ours) == sorted(expected)


def test_payload_is_what_dsse_signs(model: Path, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    signature = tmp_path / "model.sig"
    our_sign(model, signature, private)
    document = json.loads(signature.read_bytes())
    payload = base64.b64decode(document["dsseEnvelope"]["payload"])
    assert Bundle.from_bytes(signature.read_bytes()).envelope is not None
    assert json.loads(payload)["predicateType"] == OMS_PREDICATE
    assert read_signature(signature).verify_with_key(PublicKey.from_file(public))


def test_a_signature_with_pattern_characters_inside_the_model_is_left_out_exactly(
    model: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    (model / "model [1]*.sig.bak").write_bytes(b"not the signature: must stay in")
    signature = model / "model [1]*.sig"
    our_sign(model, signature, private)
    statement = read_signature(signature).statement
    assert "model [1]*.sig" in statement.predicate["serialization"]["ignore_paths"]
    assert "model [1]*.sig.bak" in [r["name"] for r in statement.predicate["resources"]]
    ms_verify(model, signature, public)
    our_verify(model, signature, public)

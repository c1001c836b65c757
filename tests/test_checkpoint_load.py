"""provenance.torch.load: verified, scanned, then loaded with weights_only -- or refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from provenance.bundle import Bundle
from provenance.digest import digest_path
from provenance.errors import RefusedError
from provenance.policy.load import parse_policy
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement

torch = pytest.importorskip("torch")
import provenance.torch  # noqa: E402 - needs torch, which is optional

TRAINER = KeySigner.generate()
OTHER = KeySigner.generate()
MARKER = Path("/tmp/provenance-load-marker-must-not-exist")


def policy() -> Any:
    pem = "\n".join("      " + line for line in TRAINER.public_key.pem.decode().splitlines())
    return parse_policy(
        f"""
version: 1
roots:
  trainer:
    pem: |
{pem}
rules:
  model:
    require:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy: [trainer]
""",
        base=Path("."),
    )


def provenance_for(path: Path, signer: KeySigner) -> bytes:
    statement = Statement(
        (ResourceDescriptor.for_digest(digest_path(path).digest, name=path.name),),
        "https://slsa.dev/provenance/v1",
        {"buildDefinition": {"buildType": "https://example.com/train", "resolvedDependencies": []}},
    )
    return Bundle.sign_statement(statement, signer).raw + b"\n"


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {MARKER}",))


def test_a_verified_clean_checkpoint_loads(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(4.0)}, path)
    (tmp_path / "chain.jsonl").write_bytes(provenance_for(path, TRAINER))
    state = provenance.torch.load(path, policy=policy(), bundle=tmp_path / "chain.jsonl")
    assert torch.equal(state["w"], torch.arange(4.0))


def test_unattested_or_wrongly_signed_checkpoints_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    (tmp_path / "none.jsonl").write_bytes(b"")
    with pytest.raises(RefusedError, match="no attestation names this artifact"):
        provenance.torch.load(path, policy=policy(), bundle=tmp_path / "none.jsonl")
    (tmp_path / "other.jsonl").write_bytes(provenance_for(path, OTHER))
    with pytest.raises(RefusedError, match="not trainer's key"):
        provenance.torch.load(path, policy=policy(), bundle=tmp_path / "other.jsonl")


def test_a_checkpoint_changed_after_attestation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    (tmp_path / "chain.jsonl").write_bytes(provenance_for(path, TRAINER))
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(RefusedError, match="does not verify"):
        provenance.torch.load(path, policy=policy(), bundle=tmp_path / "chain.jsonl")


def test_a_malicious_checkpoint_is_refused_even_when_validly_signed(tmp_path: Path) -> None:
    # A compromised trainer key signs poison: the scanner still refuses, nothing runs.
    path = tmp_path / "model.bin"
    torch.save({"w": torch.zeros(2), "x": Evil()}, path)
    (tmp_path / "chain.jsonl").write_bytes(provenance_for(path, TRAINER))
    with pytest.raises(RefusedError, match=r"refuses global posix\.system"):
        provenance.torch.load(path, policy=policy(), bundle=tmp_path / "chain.jsonl")
    assert not MARKER.exists()


def test_the_loaded_bytes_are_the_verified_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swapping the file after it is read cannot change what is loaded: one read serves all."""
    from provenance.guard import checkpoint

    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    (tmp_path / "chain.jsonl").write_bytes(provenance_for(path, TRAINER))
    original = checkpoint.verify  # type: ignore[attr-defined]

    def verify_then_swap(*args: Any, **kwargs: Any) -> Any:
        report = original(*args, **kwargs)
        torch.save({"w": torch.full((2,), 666.0)}, path)  # swapped after the check
        return report

    monkeypatch.setattr(checkpoint, "verify", verify_then_swap)
    state = provenance.torch.load(path, policy=policy(), bundle=tmp_path / "chain.jsonl")
    assert torch.equal(state["w"], torch.zeros(2))  # the verified bytes, not the swapped file
    assert torch.load(path, weights_only=True)["w"][0] == 666.0  # the swap did happen

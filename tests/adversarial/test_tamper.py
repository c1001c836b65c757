"""The tamper campaign, short form: a few hundred seeded single mutations of a full chain.

Each mutation is judged by the verifier and classified (see ``campaign.py``): no mutation that
changes a signed or hashed byte a verdict rests on may pass, and nothing may crash. The long
form is ``bench/tamper.py``, which runs thousands and prints the counts.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from pathlib import Path

import pytest

from provenance.ledger import Ledger
from tests.adversarial.campaign import (
    REFUSED,
    TARGETS,
    _rechain,
    chdir,
    intact,
    judge,
    judge_cli,
    load_evidence,
    run_campaign,
    run_ledger_campaign,
)
from tests.adversarial.world import AT, World, build_world
from tests.chain_helpers import cli

SEED = 20260301


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def paths(world: World) -> dict[str, Path]:
    return {"model": world.model, "data": world.data, "manifest": world.manifest_file}


def test_the_untampered_chain_passes_every_way_it_is_asked(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence, failed = load_evidence(world.release)
    assert failed is None
    assert len(world.lines) == 8  # seven attestations and the dataset's manifest
    assert intact(world.release, world) == world.chain("model")
    for target, path in paths(world).items():
        assert judge(path, evidence, world).outcome == "pass", target
        code, err = judge_cli(path, world.release_file, world)
        assert code == 0, err
    # ... and from the ledger it came from, which is intact.
    monkeypatch.chdir(world.project)
    assert cli(capsys, "ledger", "check")[0] == 0
    code, _, err = cli(capsys, "verify", "model.bin", "--policy", "policy.yaml", "--at", str(AT))
    assert code == 0, err


def test_random_mutations_of_the_release_and_the_artifacts(world: World, tmp_path: Path) -> None:
    tally = run_campaign(world, seed=SEED, count=300, scratch=tmp_path, cli_every=10)
    print(tally.summary())
    assert tally.problems == []
    assert tally.counts["false pass"] == 0
    assert tally.counts["crash"] == 0
    # The campaign reached the verifier's checks, not only its parsers, and every kind of
    # mutation ran.
    assert tally.counts[REFUSED] >= 100
    operators = {operator for operator, _ in tally.by_operator}
    assert operators >= {"line-bytes", "envelope", "lines", "data", "checkpoint", "manifest-file"}
    assert tally.cli_checked >= 3 * 30


def test_random_edits_of_the_ledger(world: World, tmp_path: Path) -> None:
    tally = run_ledger_campaign(world, seed=SEED, count=60, scratch=tmp_path)
    print(tally.summary())
    assert tally.problems == []
    assert tally.counts["false pass"] == 0
    assert tally.counts["crash"] == 0


def test_the_oracle_tells_signed_content_from_labels(world: World) -> None:
    """The benign class must not be a loophole: only unsigned labels leave content intact."""
    line = world.bundles["dataset"].raw
    document = json.loads(line)
    document["verificationMaterial"]["publicKey"]["hint"] = "someone"
    document["dsseEnvelope"]["signatures"][0]["keyid"] = "someone"
    relabelled = json.dumps(document).encode()
    assert world.bundles["dataset"].attestation_id in intact(relabelled, world)
    payload = base64.b64decode(document["dsseEnvelope"]["payload"]).replace(b"digits", b"digitz")
    document["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    assert intact(json.dumps(document).encode(), world) == frozenset()


def _edit(world: World, tmp_path: Path, *statements: str) -> Path:
    """A copy of the world's ledger with ``statements`` run on it, triggers dropped."""
    state = tmp_path / ".provenance"
    state.mkdir()
    for name in ("ledger.db", "ledger.head"):
        (state / name).write_bytes((world.ledger_path.parent / name).read_bytes())
    db = sqlite3.connect(state / "ledger.db", isolation_level=None)
    try:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f"DROP TRIGGER {trigger}")
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()
    return state / "ledger.db"


def test_an_edited_stored_manifest_fails_the_check(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the campaign: the check used to ignore the manifests table, calling a ledger
    intact whose manifest the next reader refuses."""
    edited = world.manifest.canonical_bytes.replace(b'"size":9', b'"size":10')
    assert edited != world.manifest.canonical_bytes
    path = _edit(world, tmp_path)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE manifests SET data = ?", (zlib.compress(edited),))
    db.close()
    with Ledger(path) as ledger:
        problems = ledger.check()
    assert len(problems) == 1
    assert "stored manifest sha256:" in problems[0] and "not intact" in problems[0]
    with chdir(tmp_path):
        code, out, _ = cli(capsys, "ledger", "check")
    assert code == 1
    assert "stored manifest" in out


def test_a_rewritten_history_is_caught_by_the_signatures(world: World, tmp_path: Path) -> None:
    """Edit a signed payload, then recompute every digest, chain hash and the head: only the
    signature can tell, and it does."""
    path = _edit(world, tmp_path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        (raw,) = db.execute("SELECT bundle FROM entries WHERE seq = 1").fetchone()
        document = json.loads(raw)
        payload = base64.b64decode(document["dsseEnvelope"]["payload"])
        document["dsseEnvelope"]["payload"] = base64.b64encode(
            payload.replace(b'"license":"MIT"', b'"license":"GPL"')
        ).decode()
        db.execute("UPDATE entries SET bundle = ? WHERE seq = 1", (json.dumps(document).encode(),))
        _rechain(db, path.with_suffix(".head"))
    finally:
        db.close()
    with Ledger(path) as ledger:
        problems = ledger.check()
    assert len(problems) == 1
    assert problems[0].startswith("entry 1: signature does not verify")


def test_an_entry_deleted_and_rechained_is_invisible_to_the_check_not_to_the_verifier(
    world: World, tmp_path: Path
) -> None:
    """A known limit (README, Ledger): the chain has no anchor outside the files, so removing
    an entry and recomputing every later hash and the head leaves a consistent ledger. What
    that entry vouched for is then simply missing, and the verifier refuses the chain."""
    path = _edit(
        world, tmp_path, "DELETE FROM subjects WHERE seq = 1", "DELETE FROM entries WHERE seq = 1"
    )
    db = sqlite3.connect(path, isolation_level=None)
    try:
        _rechain(db, path.with_suffix(".head"))
    finally:
        db.close()
    from provenance.verify.core import verify
    from provenance.verify.evidence import LedgerEvidence

    with Ledger(path) as ledger:
        assert ledger.check() == []
        report = verify(world.model_digest, LedgerEvidence(ledger), world.policy, at=AT)
    assert not report.trusted
    failed = {node.digest for node, _ in report.root.failures()}
    assert failed == {world.dataset}  # the deleted dataset attestation is what is missing


@pytest.mark.parametrize("target", TARGETS)
def test_a_release_truncated_at_every_line_boundary_is_refused(
    world: World, tmp_path: Path, target: str
) -> None:
    """Losing the end of a release loses evidence: every prefix that drops an attestation of
    the target's chain is refused, never trusted."""
    lines = world.lines
    for keep in range(len(lines)):
        release = b"".join(line + b"\n" for line in lines[:keep])
        evidence, failed = load_evidence(release)
        assert failed is None
        verdict = judge(paths(world)[target], evidence, world)
        if not world.chain(target) <= intact(release, world):
            assert verdict.outcome == REFUSED, (keep, verdict)

"""The ledger: append, find, and a check that catches edits, deletions and reordering."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest, build_manifest
from provenance.errors import FormatError
from provenance.ledger import Ledger, entry_hash
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement


def signed(signer: KeySigner, n: int, predicate_type: str = "https://example.com/p") -> Bundle:
    digest = Digest(Algorithm.SHA256, hashlib.sha256(str(n).encode()).hexdigest())
    statement = Statement((ResourceDescriptor.for_digest(digest),), predicate_type, {"n": n})
    return Bundle.sign_statement(statement, signer)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path / "ledger.db") as opened:
        signer = KeySigner.generate()
        for n in range(5):
            opened.append(signed(signer, n), verified_by=signer.public_key)
    return Ledger(tmp_path / "ledger.db")


def raw(path: Path) -> sqlite3.Connection:
    """A direct connection, as someone editing the file would use, with the guards dropped."""
    db = sqlite3.connect(path, isolation_level=None)
    for table in ("entries", "subjects"):
        for action in ("update", "delete"):
            db.execute(f"DROP TRIGGER {table}_no_{action}")
    return db


def test_append_find_and_ignore_duplicates(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        signer = KeySigner.generate()
        bundle = signed(signer, 7)
        entry = ledger.append(bundle, verified_by=signer.public_key)
        assert entry is not None and entry.seq == 1
        assert ledger.append(bundle, verified_by=signer.public_key) is None  # the same again
        respelled = Bundle.from_bytes(json.dumps(json.loads(bundle.raw), indent=2).encode())
        assert ledger.append(respelled, verified_by=signer.public_key) is None
        subject = bundle.statement.subjects[0].digests()[0]
        found = ledger.find(subject=subject)
        assert [e.seq for e in found] == [1]
        assert found[0].bundle == bundle.raw
        assert found[0].parsed().verify_with_key(signer.public_key) == bundle.statement
        assert ledger.find(predicate_type="https://other") == []
        assert ledger.check() == []


def test_manifests_are_stored_once_and_checked_on_the_way_out(
    tmp_path: Path, dataset: Path
) -> None:
    manifest = build_manifest(dataset)
    with Ledger(tmp_path / "l.db") as ledger:
        digest = ledger.store_manifest(manifest)
        assert ledger.store_manifest(manifest) == digest
        assert ledger.manifest(digest) == manifest
        assert ledger.manifest(Digest(Algorithm.SHA256, "0" * 64)) is None
    db = sqlite3.connect(tmp_path / "l.db")
    db.execute("UPDATE manifests SET data = ?", [b"garbage"])
    db.commit()
    db.close()
    with Ledger(tmp_path / "l.db") as ledger, pytest.raises(FormatError, match="corrupt"):
        ledger.manifest(digest)


def test_an_intact_ledger_checks_clean(ledger: Ledger) -> None:
    assert ledger.check() == []


def test_updates_and_deletes_are_refused_through_sqlite(ledger: Ledger) -> None:
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ledger.conn.execute("UPDATE entries SET signer = 'key:evil' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ledger.conn.execute("DELETE FROM entries WHERE seq = 2")


def test_an_edited_row_is_caught(ledger: Ledger) -> None:
    raw(ledger.path).execute("UPDATE entries SET signer = 'key:evil' WHERE seq = 3")
    assert "entry 3 was edited (its fields do not hash to its hash)" in ledger.check()


def test_an_edited_bundle_is_caught(ledger: Ledger) -> None:
    other = signed(KeySigner.generate(), 99)
    raw(ledger.path).execute("UPDATE entries SET bundle = ? WHERE seq = 2", [other.raw])
    assert "entry 2: the stored bundle was edited" in ledger.check()


def test_an_edited_index_row_is_caught(ledger: Ledger) -> None:
    raw(ledger.path).execute("UPDATE subjects SET digest = ? WHERE seq = 4", ["0" * 64])
    assert ledger.check() == ["entry 4: subject index disagrees with the bundle"]


def test_a_deleted_row_is_caught(ledger: Ledger) -> None:
    db = raw(ledger.path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM subjects WHERE seq = 3")
    db.execute("DELETE FROM entries WHERE seq = 3")
    problems = ledger.check()
    assert "entries 3..3 are missing" in problems
    assert "entry 4 does not follow the entry before it" in problems


def test_deleting_the_newest_rows_is_caught_by_the_head(ledger: Ledger) -> None:
    db = raw(ledger.path)
    db.execute("DELETE FROM subjects WHERE seq >= 4")
    db.execute("DELETE FROM entries WHERE seq >= 4")
    assert ledger.check() == ["entries after 3 are missing: ledger.head records entry 5"]


def test_reordered_rows_are_caught(ledger: Ledger) -> None:
    db = raw(ledger.path)
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("UPDATE entries SET seq = -2 WHERE seq = 2")
    db.execute("UPDATE entries SET seq = 2 WHERE seq = 3")
    db.execute("UPDATE entries SET seq = 3 WHERE seq = -2")
    problems = ledger.check()
    assert any("entry 2" in p for p in problems)
    assert any("entry 3" in p for p in problems)


APPENDER = """
import hashlib, sys
from pathlib import Path
from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.ledger import Ledger
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
worker, count = int(sys.argv[2]), int(sys.argv[3])
signer = KeySigner.generate()
with Ledger(Path(sys.argv[1])) as ledger:
    for n in range(count):
        text = f"{worker}-{n}".encode()
        digest = Digest(Algorithm.SHA256, hashlib.sha256(text).hexdigest())
        statement = Statement((ResourceDescriptor.for_digest(digest),), "https://x/p", {"n": n})
        bundle = Bundle.sign_statement(statement, signer)
        assert ledger.append(bundle, verified_by=signer.public_key) is not None
"""


def test_four_processes_appending_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).close()
    processes = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(w), "500"])
        for w in range(4)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0, 0, 0]
    with Ledger(path) as ledger:
        entries = ledger.entries()
        assert len(entries) == 2000
        assert [e.seq for e in entries] == list(range(1, 2001))
        assert ledger.check() == []


def test_a_forged_entry_inserted_at_the_end_is_caught(ledger: Ledger) -> None:
    """Inserting needs no dropped trigger and a chain can be extended by anyone: the check
    therefore verifies every signature under the signer its entry names."""
    last = ledger.entries()[-1]
    signer_label = last.signer  # claim the project key signed it
    forged = json.loads(last.bundle)
    forged["dsseEnvelope"]["payload"] = base64.b64encode(
        ledger.entries()[0].parsed().statement.to_bytes().replace(b'"n":0', b'"n":9')
    ).decode()
    raw_bundle = json.dumps(forged).encode()
    digest = hashlib.sha256(raw_bundle).hexdigest()
    at = "2030-01-01T00:00:00.000000Z"
    chained = entry_hash(
        prev_hash=last.entry_hash,
        seq=last.seq + 1,
        bundle_digest=digest,
        predicate_type=last.predicate_type,
        signer=signer_label,
        at=at,
    )
    db = sqlite3.connect(ledger.path, isolation_level=None)
    db.execute(
        "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            last.seq + 1,
            chained,
            last.entry_hash,
            digest,
            "forged",
            last.predicate_type,
            signer_label,
            at,
            raw_bundle,
        ),
    )
    statement = Bundle.from_bytes(raw_bundle).statement
    for subject in statement.subjects:
        for algorithm, value in subject.digest.items():
            db.execute("INSERT INTO subjects VALUES (?, ?, ?)", (last.seq + 1, algorithm, value))
    problems = ledger.check()
    assert any(p.startswith(f"entry {last.seq + 1}: signature does not verify") for p in problems)


def test_a_missing_head_is_reported(ledger: Ledger) -> None:
    ledger.head_path.unlink()
    assert ledger.check() == ["ledger.head is missing, though the ledger has entries"]


def test_a_row_of_the_wrong_type_is_a_problem_not_a_crash(ledger: Ledger) -> None:
    raw(ledger.path).execute("UPDATE entries SET bundle = 'text' WHERE seq = 2")
    assert "entry 2 holds values of the wrong type" in ledger.check()


def test_head_temporaries_left_by_a_killed_writer_are_removed(tmp_path: Path) -> None:
    """A writer killed between writing the new head and renaming it leaves a temporary file;
    the next head update (under the same lock) removes it, and leaves other files alone."""
    path = tmp_path / "ledger.db"
    stale = tmp_path / ".ledger.head.abc123.tmp"
    unrelated = tmp_path / ".ledger.db.abc123.tmp"
    signer = KeySigner.generate()
    with Ledger(path) as opened:
        opened.append(signed(signer, 1), verified_by=signer.public_key)
    stale.write_text('{"seq": 99')
    unrelated.write_text("x")
    with Ledger(path) as opened:
        opened.append(signed(signer, 2), verified_by=signer.public_key)
    assert not stale.exists() and unrelated.exists()
    assert json.loads((tmp_path / "ledger.head").read_text())["seq"] == 2
    with Ledger(path) as opened:
        assert opened.check() == []

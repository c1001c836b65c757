"""The ledger: append, find, and a check that catches edits, deletions and reordering."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest, build_manifest
from provenance.errors import FormatError
from provenance.ledger import Ledger, signer_label_for_key
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
            opened.append(signed(signer, n), signer=signer_label_for_key(signer.public_key.key_id))
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
        entry = ledger.append(bundle, signer="key:x")
        assert entry is not None and entry.seq == 1
        assert ledger.append(bundle, signer="key:x") is None  # the same bytes again
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
        ledger.db.execute("UPDATE entries SET signer = 'key:evil' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ledger.db.execute("DELETE FROM entries WHERE seq = 2")


def test_an_edited_row_is_caught(ledger: Ledger) -> None:
    raw(ledger.path).execute("UPDATE entries SET signer = 'key:evil' WHERE seq = 3")
    assert ledger.check() == ["entry 3 was edited (its fields do not hash to its hash)"]


def test_an_edited_bundle_is_caught(ledger: Ledger) -> None:
    other = signed(KeySigner.generate(), 99)
    raw(ledger.path).execute("UPDATE entries SET bundle = ? WHERE seq = 2", [other.raw])
    assert ledger.check() == ["entry 2: the stored bundle was edited"]


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
        assert ledger.append(Bundle.sign_statement(statement, signer), signer="key:w") is not None
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

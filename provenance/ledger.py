"""The ledger: an append-only, hash-chained store of signed attestations and manifests.

Every attestation is stored as the exact bundle bytes that were signed, indexed by subject
digest (and, for an OpenSSF model signature of a single file, by that file's digest too: see
:func:`index_rows`), predicate type, signer and time. Each entry carries the hash of the
previous one, so an edited, deleted or reordered row breaks the chain and :meth:`Ledger.check`
names it. SQLite triggers refuse updates and deletes through any connection; an attacker who
edits the file directly can drop them, which the chain then reveals. Deleting the newest
entries leaves a consistent chain, so the chain's head is also written to ``ledger.head``
beside the database when a ledger that appended is closed, and the check requires the entry it
names. (The head may lag after a crash, never run ahead: a lagging head is accepted.)

Manifests are stored content-addressed (zlib-compressed canonical bytes, keyed by root digest),
so an attestation about a million-file dataset stays small and its manifest is stored once.

Concurrency: the database is in WAL mode and each append is one ``BEGIN IMMEDIATE``
transaction, so several processes can append at once; they are serialised by SQLite and each
sees the true previous entry. Commits are synced (``synchronous=FULL``), so an append that has
returned survives a power loss as well as a killed process, and the head, written after the
commits it names, never runs ahead of them (``tests/test_ledger_crash.py`` kills appenders).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from provenance.bundle import Bundle
from provenance.digest.algorithms import Digest
from provenance.digest.canonical import canonical_json, loads_strict
from provenance.digest.manifest import Manifest
from provenance.errors import Error, FormatError
from provenance.fsutil import atomic_write
from provenance.predicates.oms import vouched_digests
from provenance.signing.keys import PublicKey
from provenance.statement import Statement

GENESIS = "0" * 64
BUSY_TIMEOUT_S = 60
MAX_MANIFEST_BYTES = 1 << 30

# Refuse edits through any connection; a direct file edit can drop these, the chain cannot.
_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action} BEFORE {action.upper()} ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
    for table in ("entries", "subjects")
    for action in ("update", "delete")
)


class LedgerError(Error):
    """The ledger cannot be opened or written."""


@dataclasses.dataclass(frozen=True)
class KeylessSigner:
    """A Sigstore identity a keyless bundle was verified against, and on which instance."""

    identity: str
    issuer: str
    instance: str = "production"


VerifiedBy = PublicKey | KeylessSigner


def signer_label(signer: VerifiedBy) -> str:
    """How the ledger records who signed: ``key:<key id>`` or ``sigstore:<instance> <issuer>
    <identity>`` (space-separated: URLs contain colons, not spaces)."""
    if isinstance(signer, PublicKey):
        return f"key:{signer.key_id}"
    return f"sigstore:{signer.instance} {signer.issuer} {signer.identity}"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One stored attestation."""

    seq: int
    entry_hash: str
    prev_hash: str
    bundle_digest: str
    predicate_type: str
    signer: str
    recorded_at: str
    bundle: bytes

    def parsed(self) -> Bundle:
        """The stored bundle, parsed from its exact bytes."""
        return Bundle.from_bytes(self.bundle, source=f"ledger entry {self.seq}")


def entry_hash(
    *, prev_hash: str, seq: int, bundle_digest: str, predicate_type: str, signer: str, at: str
) -> str:
    """The chain hash of an entry: what an edit to any of its fields (or its place) changes."""
    document: dict[str, str | int] = {
        "bundle": bundle_digest,
        "predicateType": predicate_type,
        "prev": prev_hash,
        "recordedAt": at,
        "seq": seq,
        "signer": signer,
    }
    return hashlib.sha256(canonical_json(document)).hexdigest()


def index_rows(statement: Statement) -> set[tuple[str, str]]:
    """The (algorithm, digest) pairs an entry is found by: every digest of every subject, and
    the digests a statement binds besides them (a single-file model's own digest, which an OMS
    signature names only through its root digest)."""
    rows = {(a, v) for s in statement.subjects for a, v in s.digest.items()}
    return rows | {(d.algorithm.value, d.value) for d in vouched_digests(statement)}


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ledger:
    """The ledger at ``path`` (created on first use); see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_suffix(".head")
        self._appended: tuple[int, str] | None = None  # newest entry this handle added
        try:
            connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: every commit is synced to disk before append() returns. NORMAL would
            # survive a killed process (the page cache outlives it) but not a power loss,
            # which could take appends that had returned -- and leave the head ahead of them.
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self.conn = connection
            self._create()
        except sqlite3.Error as e:
            raise LedgerError(f"cannot open the ledger {path}: {e}") from e

    def close(self) -> None:
        """Record the newest appended entry as the head, and close the database."""
        if self._appended is not None:
            self._advance_head(*self._appended)
            self._appended = None
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        with self._transaction():
            exists = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
            ).fetchone()
            if not exists:
                # sqlite-utils writes the schema of a new ledger; every later read and write
                # is plain sqlite3, so opening a ledger never imports it (it imports pandas
                # and numpy whenever they are installed, most of a command's start-up).
                import sqlite_utils

                db = sqlite_utils.Database(self.conn)
                db.table("entries").create(
                    {
                        "seq": int,
                        "entry_hash": str,
                        "prev_hash": str,
                        "bundle_digest": str,
                        "attestation_id": str,
                        "predicate_type": str,
                        "signer": str,
                        "recorded_at": str,
                        "bundle": bytes,
                    },
                    pk="seq",
                    not_null={
                        "entry_hash",
                        "prev_hash",
                        "bundle_digest",
                        "attestation_id",
                        "predicate_type",
                        "signer",
                        "recorded_at",
                        "bundle",
                    },
                )
                # One entry per attestation per signer: the same statement signed by two
                # parties is two entries; the same signature re-spelled is a duplicate.
                db.table("entries").create_index(["attestation_id", "signer"], unique=True)
                db.table("entries").create_index(["predicate_type"])
                db.table("entries").create_index(["signer"])
                db.table("entries").create_index(["recorded_at"])
                db.table("subjects").create(
                    {"seq": int, "algorithm": str, "digest": str},
                    foreign_keys=[("seq", "entries", "seq")],
                    not_null={"seq", "algorithm", "digest"},
                )
                db.table("subjects").create_index(["algorithm", "digest"])
                db.table("subjects").create_index(["seq"])
                db.table("manifests").create({"digest": str, "data": bytes}, pk="digest")
                # The public keys named by "key:" labels, so a check can re-verify every
                # key-signed entry without outside help.
                db.table("keys").create({"key_id": str, "pem": bytes}, pk="key_id")
            for trigger in _TRIGGERS:
                self.conn.execute(trigger)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise LedgerError(f"cannot lock the ledger {self.path}: {e}") from e
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise LedgerError(f"cannot write the ledger {self.path}: {e}") from e

    # -- writing ----------------------------------------------------------------------------

    def append(self, bundle: Bundle, *, verified_by: VerifiedBy) -> Entry | None:
        """Store a bundle the caller has verified; return its entry, or None if already stored.

        ``verified_by`` is what the signature was verified against; the ledger records it (and
        a key's PEM) so that :meth:`check` can verify again. It stores and chains; whether that
        signer is *trusted* for anything is a policy's question, not the ledger's. Duplicates
        are recognised by what was signed and who signed it, however the bundle is spelled.
        """
        statement = bundle.statement
        signer = signer_label(verified_by)
        bundle_digest = hashlib.sha256(bundle.raw).hexdigest()
        attestation_id = bundle.attestation_id
        with self._transaction():
            if self.conn.execute(
                "SELECT 1 FROM entries WHERE attestation_id = ? AND signer = ?",
                [attestation_id, signer],
            ).fetchone():
                return None
            last = self.conn.execute(
                "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            at = _utc_now()
            chained = entry_hash(
                prev_hash=prev,
                seq=seq,
                bundle_digest=bundle_digest,
                predicate_type=statement.predicate_type,
                signer=signer,
                at=at,
            )
            self.conn.execute(
                "INSERT INTO entries (seq, entry_hash, prev_hash, bundle_digest, attestation_id, "
                "predicate_type, signer, recorded_at, bundle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    chained,
                    prev,
                    bundle_digest,
                    attestation_id,
                    statement.predicate_type,
                    signer,
                    at,
                    bundle.raw,
                ),
            )
            self.conn.executemany(
                "INSERT INTO subjects (seq, algorithm, digest) VALUES (?, ?, ?)",
                [(seq, a, v) for a, v in sorted(index_rows(statement))],
            )
            if isinstance(verified_by, PublicKey):
                self.conn.execute(
                    "INSERT OR IGNORE INTO keys (key_id, pem) VALUES (?, ?)",
                    (verified_by.key_id, verified_by.pem),
                )
        self._appended = (seq, chained)
        return Entry(
            seq, chained, prev, bundle_digest, statement.predicate_type, signer, at, bundle.raw
        )

    def _advance_head(self, seq: int, chained: str) -> None:
        """Record the newest entry in ``ledger.head``, never moving it backwards."""
        lock_path = self.head_path.with_suffix(".head.lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._remove_stale_head_temporaries()
            current = self._read_head()
            if current is None or current[0] < seq:
                data = json.dumps({"seq": seq, "hash": chained}).encode()
                # May lag behind a crash, never run ahead: the check accepts a lagging head.
                # Durable, so a power loss cannot leave a renamed but empty head file.
                atomic_write(self.head_path, data)

    def _remove_stale_head_temporaries(self) -> None:
        """Delete temporary head files a killed writer left (call with the head lock held).

        Every head write happens under the lock, so a temporary file seen while holding it
        belongs to no running writer: it is what a process killed between writing and
        renaming left behind, and would otherwise accumulate beside the ledger.
        """
        prefix, suffix = f".{self.head_path.name}.", ".tmp"
        with contextlib.suppress(OSError):
            for name in os.listdir(self.head_path.parent):
                if name.startswith(prefix) and name.endswith(suffix):
                    with contextlib.suppress(FileNotFoundError):
                        (self.head_path.parent / name).unlink()

    def _read_head(self) -> tuple[int, str] | None:
        try:
            document = loads_strict(self.head_path.read_bytes(), what=str(self.head_path))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LedgerError(f"cannot read {self.head_path}: {e.strerror}") from e
        if not isinstance(document, dict) or set(document) != {"seq", "hash"}:
            raise FormatError(f"{self.head_path} is malformed")
        seq, hash_value = document["seq"], document["hash"]
        if not isinstance(seq, int) or not isinstance(hash_value, str):
            raise FormatError(f"{self.head_path} is malformed")
        return seq, hash_value

    def store_manifest(self, manifest: Manifest) -> Digest:
        """Store a manifest once, keyed by its root digest; return the digest."""
        digest = manifest.root_digest
        with self._transaction():
            if not self.conn.execute(
                "SELECT 1 FROM manifests WHERE digest = ?", [str(digest)]
            ).fetchone():
                self.conn.execute(
                    "INSERT INTO manifests (digest, data) VALUES (?, ?)",
                    (str(digest), zlib.compress(manifest.canonical_bytes, 6)),
                )
        return digest

    # -- reading ----------------------------------------------------------------------------

    def manifest(self, digest: Digest) -> Manifest | None:
        """The stored manifest with root digest ``digest`` (checked on the way out)."""
        row = self.conn.execute(
            "SELECT data FROM manifests WHERE digest = ?", [str(digest)]
        ).fetchone()
        if row is None:
            return None
        try:
            decompressor = zlib.decompressobj()
            data = decompressor.decompress(row[0], MAX_MANIFEST_BYTES)
        except zlib.error as e:
            raise FormatError(f"stored manifest {digest} is corrupt") from e
        manifest = Manifest.from_bytes(data, source=f"stored manifest {digest}")
        if manifest.root_digest != digest:
            raise FormatError(f"stored manifest {digest} does not hash to its key")
        return manifest

    def _entries(self, where: str = "", params: Iterable[Any] = ()) -> list[Entry]:
        # ``where`` is only ever built here from constant clauses; values go in ``params``.
        columns = "seq, entry_hash, prev_hash, bundle_digest, predicate_type, signer"
        query = f"SELECT {columns}, recorded_at, bundle FROM entries {where} ORDER BY seq"  # noqa: S608
        rows = self.conn.execute(query, list(params)).fetchall()
        return [Entry(*row) for row in rows]

    def entries(self) -> list[Entry]:
        """Every entry, oldest first."""
        return self._entries()

    def find(self, subject: Digest | None = None, predicate_type: str | None = None) -> list[Entry]:
        """Entries about ``subject`` and/or of ``predicate_type``, oldest first."""
        clauses, params = [], []
        if subject is not None:
            clauses.append("seq IN (SELECT seq FROM subjects WHERE algorithm = ? AND digest = ?)")
            params += [subject.algorithm.value, subject.value]
        if predicate_type is not None:
            clauses.append("predicate_type = ?")
            params.append(predicate_type)
        return self._entries(("WHERE " + " AND ".join(clauses)) if clauses else "", params)

    def closure(self, digest: Digest) -> list[Entry]:
        """The entries about ``digest`` and, transitively, about every artifact they name.

        An attestation names its inputs as resource descriptors (``{"digest": {...}}``) in its
        predicate -- a dataset's parents, a training run's resolved dependencies -- so the
        closure follows every such descriptor, whatever the predicate type.
        """
        seen: dict[int, Entry] = {}
        visited: set[Digest] = set()
        pending = [digest]
        while pending:
            current = pending.pop()
            if current in visited:
                continue
            visited.add(current)
            for entry in self.find(subject=current):
                if entry.seq not in seen:
                    seen[entry.seq] = entry
                    pending.extend(referenced_digests(entry.parsed().statement.predicate))
        return [seen[seq] for seq in sorted(seen)]

    # -- checking ---------------------------------------------------------------------------

    def check(self, *, verify_signatures: bool = True) -> list[str]:
        """Every inconsistency found, as sentences; an empty list means the ledger is intact.

        Checks the chain (order, links, each entry's hash), each stored bundle against its
        digest and its index rows, the head file, and -- unless told not to -- that every
        bundle's signature verifies under the signer its entry names (keys from the ledger's
        key table; Sigstore identities offline against the instance recorded). It reads one
        snapshot of the database, so appends running at the same time are not problems.
        """
        if self._appended is not None:  # this handle's own appends count as recorded
            self._advance_head(*self._appended)
            self._appended = None
        head = self._read_head()
        keys: dict[str, bytes] = {}
        conn = self.conn
        conn.execute("BEGIN")  # one read snapshot (WAL) for everything below
        try:
            entries = self.entries()
            subjects: dict[int, set[tuple[str, str]]] = {}
            for seq, algorithm, digest in conn.execute(
                "SELECT seq, algorithm, digest FROM subjects"
            ).fetchall():
                subjects.setdefault(seq, set()).add((algorithm, digest))
            for key_id, pem in conn.execute("SELECT key_id, pem FROM keys").fetchall():
                keys[key_id] = pem
        finally:
            conn.execute("COMMIT")
        problems: list[str] = []
        previous_hash, expected_seq = GENESIS, 1
        loaded: dict[str, PublicKey] = {}
        for entry in entries:
            try:
                problems += _check_entry(entry, expected_seq, previous_hash, subjects)
                if verify_signatures:
                    problems += _check_signature(entry, keys, loaded)
            except (Error, ValueError, TypeError) as e:
                reason = e.diagnostics() if isinstance(e, Error) else type(e).__name__
                problems.append(f"entry {entry.seq} is unreadable ({reason})")
            previous_hash, expected_seq = entry.entry_hash, entry.seq + 1
            subjects.pop(entry.seq, None)
        for orphan in sorted(subjects):
            problems.append(f"subject index rows name entry {orphan}, which does not exist")
        problems += self._check_head(head, entries)
        problems += self._check_manifests()
        return problems

    def _check_manifests(self) -> list[str]:
        """Every stored manifest must still hash to the digest it is stored under.

        Reading one checks this too, but a check that passed a ledger whose manifests were
        edited would say "intact" about bytes the next reader refuses.
        """
        problems: list[str] = []
        rows = self.conn.execute("SELECT digest FROM manifests ORDER BY digest").fetchall()
        for (key,) in rows:
            try:
                self.manifest(Digest.parse(key))
            except Error as e:
                problems.append(
                    f"stored manifest {str(key)[:80]} is not intact ({e.diagnostics()})"
                )
        return problems

    def _check_head(self, head: tuple[int, str] | None, entries: list[Entry]) -> list[str]:
        name = self.head_path.name
        if head is None:
            return [f"{name} is missing, though the ledger has entries"] if entries else []
        last = entries[-1].seq if entries else 0
        if last < head[0]:
            return [f"entries after {last} are missing: {name} records entry {head[0]}"]
        named = [e for e in entries if e.seq == head[0]]
        if not named or named[0].entry_hash != head[1]:
            return [f"entry {head[0]} differs from {name}"]
        return []


def _check_entry(
    entry: Entry, expected_seq: int, previous_hash: str, subjects: dict[int, set[Any]]
) -> list[str]:
    problems: list[str] = []
    fields = (
        entry.entry_hash,
        entry.prev_hash,
        entry.bundle_digest,
        entry.predicate_type,
        entry.signer,
        entry.recorded_at,
    )
    if not all(isinstance(f, str) for f in fields) or not isinstance(entry.bundle, bytes):
        return [f"entry {entry.seq} holds values of the wrong type"]
    if entry.seq != expected_seq:
        problems.append(f"entries {expected_seq}..{entry.seq - 1} are missing")
    if entry.prev_hash != previous_hash:
        problems.append(f"entry {entry.seq} does not follow the entry before it")
    recomputed = entry_hash(
        prev_hash=entry.prev_hash,
        seq=entry.seq,
        bundle_digest=entry.bundle_digest,
        predicate_type=entry.predicate_type,
        signer=entry.signer,
        at=entry.recorded_at,
    )
    if recomputed != entry.entry_hash:
        problems.append(f"entry {entry.seq} was edited (its fields do not hash to its hash)")
    if hashlib.sha256(entry.bundle).hexdigest() != entry.bundle_digest:
        problems.append(f"entry {entry.seq}: the stored bundle was edited")
        return problems
    statement: Statement = entry.parsed().statement
    if statement.predicate_type != entry.predicate_type:
        problems.append(f"entry {entry.seq}: predicate type index disagrees with the bundle")
    if subjects.get(entry.seq, set()) != index_rows(statement):
        problems.append(f"entry {entry.seq}: subject index disagrees with the bundle")
    return problems


def _check_signature(
    entry: Entry, keys: Mapping[str, bytes], loaded: dict[str, PublicKey]
) -> list[str]:
    """Verify the entry's bundle again under the signer its label names.

    ``loaded`` caches parsed keys across entries (most entries share a handful of keys).
    """
    from provenance.signing.keys import SignatureError

    bundle = entry.parsed()
    kind, _, rest = entry.signer.partition(":")
    try:
        if kind == "key":
            pem = keys.get(rest)
            if pem is None:
                return [f"entry {entry.seq}: its signing key {rest[:16]} is not in the ledger"]
            key = loaded.get(rest) or loaded.setdefault(rest, PublicKey(pem))
            if key.key_id != rest:
                return [f"entry {entry.seq}: the stored key {rest[:16]} was replaced"]
            bundle.verify_with_key(key)
        elif kind == "sigstore" and len(rest.split(" ", 2)) == 3:
            from provenance.signing.sigstore import Identity, Instance, verify

            instance, issuer, identity = rest.split(" ", 2)
            verify(bundle, Identity(identity, issuer), instance=Instance(instance))
        else:
            return [f"entry {entry.seq}: unknown signer {entry.signer[:40]!r}"]
    except SignatureError as e:
        return [f"entry {entry.seq}: signature does not verify ({e.message})"]
    return []


def referenced_digests(value: Any) -> list[Digest]:
    """Every accepted digest named by a resource descriptor anywhere inside ``value``."""
    from provenance.digest.algorithms import Algorithm

    accepted = {a.value: a for a in Algorithm}
    found: list[Digest] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            digests = item.get("digest")
            if isinstance(digests, Mapping):
                for algorithm, hex_value in digests.items():
                    if algorithm in accepted and isinstance(hex_value, str):
                        with contextlib.suppress(Error):
                            found.append(Digest(accepted[algorithm], hex_value))
            stack.extend(reversed(list(item.values())))  # reversed: found in document order
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
    return found


__all__ = [
    "GENESIS",
    "Entry",
    "KeylessSigner",
    "Ledger",
    "LedgerError",
    "VerifiedBy",
    "entry_hash",
    "index_rows",
    "referenced_digests",
    "signer_label",
]

"""The tamper campaign: seeded random single mutations of a valid chain, each judged.

A mutation changes one thing -- bytes of a release line, of a signed payload (decoded,
mutated, re-encoded, the signature left as it was), of a signature, of the statement's JSON
(re-encoded canonically), of a manifest line or file, of a dataset file or the checkpoint;
or swaps, drops, duplicates or moves whole lines -- and the verifier is then asked about
each artifact of the chain (the checkpoint, the dataset directory, the dataset's manifest
file). Each answer is classified:

* **refused** -- exit 1 (not trusted);
* **error** -- exit 2, an :class:`~provenance.errors.Error` with a one-line diagnostic;
* **false pass** -- trusted, though a signed or hashed byte that verdict rests on changed;
* **crash** -- anything else escaped (the CLI's exit 3).

Whether a mutation changed what a verdict rests on is decided by an oracle that knows nothing
of the verifier: an artifact's verdict rests on its bytes on disk and on the *signed content*
(DSSE payload type, payload and signature bytes, compared after a lenient parse of the line)
of every attestation of its chain. Unsigned labels (``publicKey.hint``, a signature's
``keyid``, the bundle ``mediaType`` among accepted versions), JSON spacing and key order
outside the payload, line order and duplicated lines change none of it: such mutations are
**benign** and counted apart, with what the verifier said about them (refusing a benign
mutation is stricter than needed, not unsafe). A release's manifest lines are content-addressed
hints the verdict never rests on (the verifier hashes the directory itself); for them the
campaign checks instead that a changed manifest is never served under the attested digest.

The ledger variant edits the SQLite ledger behind the verifier's back (triggers dropped),
including a full history rewrite that recomputes every hash; ``Ledger.check`` must report a
problem for each, and the verifier reading that ledger must never trust a chain whose signed
content changed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import string
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785

from provenance.cli import main
from provenance.cli.common import subject
from provenance.digest import Digest, build_manifest
from provenance.errors import Error
from provenance.ledger import Ledger, entry_hash
from provenance.verify.core import closest_attested, verify
from provenance.verify.evidence import JsonLinesEvidence, LedgerEvidence
from tests.adversarial.world import AT, World

TARGETS = ("model", "data", "manifest")
SignedKey = tuple[str, bytes, frozenset[bytes]]


# -- the oracle ----------------------------------------------------------------------------


def signed_key(line: bytes) -> SignedKey | None:
    """What a bundle line signs, read leniently: payload type, payload, signature bytes.

    Lenient on purpose (last duplicate key wins, any base64 spelling): the oracle asks whether
    the signed content survived, not whether the verifier's strict reader accepts the line.
    """
    try:
        document = json.loads(line)
        envelope = document["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        if not isinstance(payload_type, str):
            return None
        payload = base64.b64decode(envelope["payload"])
        signatures = frozenset(base64.b64decode(s["sig"]) for s in envelope["signatures"])
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, RecursionError):
        return None
    return payload_type, payload, signatures


def intact(release: bytes, world: World) -> frozenset[str]:
    """The original attestations (by id) whose signed content the release still holds."""
    present = {signed_key(line) for line in release.splitlines()}
    return frozenset(
        bundle.attestation_id
        for bundle in world.bundles.values()
        if signed_key(bundle.raw) in present
    )


# -- mutating bytes and JSON ---------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:  # noqa: PLR0911
    """One random change of ``data``: never a no-op."""
    if not data:
        return bytes([rng.randrange(256)]), "insert into empty"
    i = rng.randrange(len(data))
    op = rng.choice(["flip", "set", "truncate", "insert", "printable", "delete", "duplicate"])
    if op == "flip":
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :], f"flip@{i}"
    if op == "set":
        value = rng.choice([v for v in range(256) if v != data[i]])
        return data[:i] + bytes([value]) + data[i + 1 :], f"set@{i}={value}"
    if op == "truncate":
        return data[:i], f"truncate@{i}"
    if op == "insert":
        return data[:i] + rng.randbytes(rng.randint(1, 4)) + data[i:], f"insert@{i}"
    if op == "printable":
        text = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 3)))
        return data[:i] + text.encode() + data[i:], f"insert {text!r}@{i}"
    if op == "delete":
        n = rng.randint(1, min(8, len(data) - i))
        return data[:i] + data[i + n :], f"delete {n}@{i}"
    n = rng.randint(1, min(8, len(data) - i))
    return data[: i + n] + data[i : i + n] + data[i + n :], f"duplicate {n}@{i}"


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every node's path (keys and indices) in a JSON document, the root's first."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from json_paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from json_paths(inner, (*prefix, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def edit_json(document: Any, rng: random.Random) -> tuple[Any, str]:  # noqa: PLR0911
    """One semantic edit somewhere in a JSON document (a copy): a value changed, a member or
    item removed, added or duplicated. The result is still valid JSON."""
    document = json.loads(json.dumps(document))
    path = rng.choice(list(json_paths(document)))
    node = _get(document, path)
    where = "/".join(map(str, path)) or "<root>"

    def replace(new: Any) -> None:
        if path:
            _get(document, path[:-1])[path[-1]] = new

    if isinstance(node, dict) and node and rng.random() < 0.5:
        key = rng.choice(sorted(node))
        del node[key]
        return document, f"delete {where}/{key}"
    if isinstance(node, dict):
        node[rng.choice(["x", "digest", "_type", "name", "extra"]) + "_"] = "injected"
        return document, f"add member to {where}"
    if isinstance(node, list) and node and rng.random() < 0.5:
        index = rng.randrange(len(node))
        if rng.random() < 0.5:
            node.insert(index, node[index])
            return document, f"duplicate item {where}/{index}"
        node.pop(index)
        return document, f"remove item {where}/{index}"
    if isinstance(node, list):
        node.append(rng.choice([None, 0, "x", {"digest": {"sha256": "0" * 64}}]))
        return document, f"append to {where}"
    if isinstance(node, bool):
        replace(not node)
        return document, f"negate {where}"
    if isinstance(node, int | float):
        replace(node + rng.choice([1, -1, 0.5]))
        return document, f"change number {where}"
    if isinstance(node, str) and node:
        i = rng.randrange(len(node))
        replace(node[:i] + rng.choice([c for c in "0af.-Z/ " if c != node[i]]) + node[i + 1 :])
        return document, f"change string {where}@{i}"
    if path:
        replace(rng.choice(["", "x", 1, [], {}]) if node is None else None)
        return document, f"replace {where}"
    return {"wrapped": document}, "wrap the document"


# -- release mutations -----------------------------------------------------------------------


@dataclass
class Mutation:
    """One mutation: its name, what it did, and what each target is judged against."""

    operator: str
    detail: str
    release: bytes
    paths: dict[str, Path]
    changed: dict[str, bool]  # target -> does its verdict rest on something that changed?
    check_manifest: bool = False  # a manifest line changed: it must not be served as attested


def _bundle_lines(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if b'"dsseEnvelope"' in line]


def _reencode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _with_line(lines: list[bytes], index: int, new: bytes) -> bytes:
    return b"".join(line + b"\n" for line in [*lines[:index], new, *lines[index + 1 :]])


def _envelope_edit(line: bytes, rng: random.Random) -> tuple[bytes, str]:
    document = json.loads(line)
    envelope = document["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    choice = rng.choice(
        ["payload-bytes", "payload-json", "signature", "payload-type", "extra-signature", "label"]
    )
    if choice == "payload-bytes":
        new, what = mutate_bytes(payload, rng)
        envelope["payload"] = base64.b64encode(new).decode()
    elif choice == "payload-json":
        statement, what = edit_json(json.loads(payload), rng)
        envelope["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()
    elif choice == "signature":
        new, what = mutate_bytes(signature, rng)
        envelope["signatures"][0]["sig"] = base64.b64encode(new).decode()
    elif choice == "payload-type":
        envelope["payloadType"] = rng.choice(
            [
                "application/json",
                "application/vnd.in-toto+jsonx",
                "",
                "APPLICATION/VND.IN-TOTO+JSON",
            ]
        )
        what = f"payloadType {envelope['payloadType']!r}"
    elif choice == "extra-signature":
        envelope["signatures"].append({"sig": base64.b64encode(rng.randbytes(64)).decode()})
        what = "a second, junk signature"
    else:  # unsigned labels: benign unless the reader is stricter than it needs to be
        label = rng.choice(["hint", "keyid", "mediaType"])
        if label == "hint":
            document["verificationMaterial"]["publicKey"]["hint"] = "f" * 64
        elif label == "keyid":
            envelope["signatures"][0]["keyid"] = "someone-else"
        else:
            document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
        what = label
    return _reencode(document), f"{choice}: {what}"


def release_mutation(world: World, rng: random.Random) -> Mutation:
    """A random single mutation of the release file (see the module docstring)."""
    lines = world.lines
    bundles = _bundle_lines(lines)
    manifests = [i for i in range(len(lines)) if i not in bundles]
    operator = rng.choices(
        ["line-bytes", "envelope", "manifest-json", "lines", "file-bytes"], [4, 8, 1, 2, 1]
    )[0]
    check_manifest = False
    if operator == "line-bytes":
        index = rng.randrange(len(lines))
        new, what = mutate_bytes(lines[index], rng)
        release, detail = _with_line(lines, index, new), f"line {index + 1}: {what}"
        check_manifest = index in manifests
    elif operator == "envelope":
        index = rng.choice(bundles)
        new, what = _envelope_edit(lines[index], rng)
        release, detail = _with_line(lines, index, new), f"line {index + 1}: {what}"
    elif operator == "manifest-json":
        index = rng.choice(manifests)
        document, what = edit_json(json.loads(lines[index]), rng)
        release, detail = _with_line(lines, index, _reencode(document)), f"manifest: {what}"
        check_manifest = True
    elif operator == "lines":
        edited = list(lines)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        how = rng.choice(["swap", "drop", "duplicate", "move"])
        if how == "swap":
            edited[i], edited[j] = edited[j], edited[i]
        elif how == "drop":
            del edited[i]
        elif how == "duplicate":
            edited.insert(j, edited[i])
        else:
            edited.insert(j, edited.pop(i))
        release, detail = b"".join(line + b"\n" for line in edited), f"{how} lines {i + 1},{j + 1}"
    else:
        release, detail = mutate_bytes(world.release, rng)
        check_manifest = True
    kept = intact(release, world)
    changed = {t: not world.chain(t) <= kept for t in TARGETS}
    paths = {"model": world.model, "data": world.data, "manifest": world.manifest_file}
    return Mutation(operator, detail, release, paths, changed, check_manifest)


# -- mutations on disk -----------------------------------------------------------------------


def disk_mutation(world: World, rng: random.Random, scratch: Path) -> Mutation:
    """A random change of the dataset directory, the checkpoint or the manifest file, made to
    a copy in ``scratch`` (the world itself is never changed)."""
    paths = {"model": world.model, "data": world.data, "manifest": world.manifest_file}
    operator = rng.choice(["data", "checkpoint", "manifest-file"])
    if operator == "checkpoint":
        new, detail = mutate_bytes(world.model.read_bytes(), rng)
        paths["model"] = scratch / "model.bin"
        paths["model"].write_bytes(new)
        changed = hashlib.sha256(new).hexdigest() != world.model_digest.value
        return Mutation(operator, detail, world.release, paths, _only("model", changed))
    if operator == "manifest-file":
        data = world.manifest_file.read_bytes()
        if rng.random() < 0.5:
            new, detail = mutate_bytes(data, rng)
        else:
            document, detail = edit_json(json.loads(data), rng)
            new = rfc8785.dumps(document)
        paths["manifest"] = scratch / "data.manifest.json"
        paths["manifest"].write_bytes(new)
        changed = hashlib.sha256(new).hexdigest() != world.dataset.value
        return Mutation(operator, detail, world.release, paths, _only("manifest", changed))
    copy = scratch / "data"
    shutil.copytree(world.data, copy, symlinks=True)
    files = sorted(p for p in copy.rglob("*") if p.is_file())
    victim = rng.choice(files)
    name = victim.relative_to(copy).as_posix()
    how = rng.choice(
        ["bytes", "bytes", "bytes", "rename", "case", "delete", "add", "mkdir", "link"]
    )
    if how == "bytes":
        new, what = mutate_bytes(victim.read_bytes(), rng)
        victim.write_bytes(new)
        detail = f"{name}: {what}"
    elif how == "rename":
        victim.rename(victim.with_name(victim.name + ".bak"))
        detail = f"rename {name}"
    elif how == "case":
        victim.rename(victim.with_name(victim.name.upper()))
        detail = f"upper-case {name}"
    elif how == "delete":
        victim.unlink()
        detail = f"delete {name}"
    elif how == "add":
        (victim.parent / "poison.csv").write_bytes(b"x,label\n9,1\n")
        detail = f"add a file beside {name}"
    elif how == "mkdir":
        (victim.parent / "new-empty-dir").mkdir()
        detail = f"add an empty directory beside {name}"
    else:
        victim.unlink()
        victim.symlink_to("/etc/hostname")
        detail = f"replace {name} with a symbolic link"
    paths["data"] = copy
    try:
        changed = build_manifest(copy, workers=1).root_digest != world.dataset
    except Error:
        changed = True  # unhashable (a link): the verifier cannot pass it either
    return Mutation("data", detail, world.release, paths, _only("data", changed))


def _only(target: str, changed: bool) -> dict[str, bool]:
    return {t: changed and t == target for t in TARGETS}


# -- judging ---------------------------------------------------------------------------------

PASS, REFUSED, ERROR, CRASH = "pass", "refused", "error", "crash"


@dataclass
class Verdict:
    """What the verifier said about one target."""

    outcome: str
    message: str = ""


def judge(path: Path, evidence: Any, world: World) -> Verdict:
    """The library's answer for ``path``, exactly as ``provenance verify`` computes it."""
    try:
        digest, local = subject(str(path))
        report = verify(digest, evidence, world.policy, at=AT)
        if not report.trusted and local is not None and not evidence.about(digest):
            closest_attested(local, evidence)  # the refused directory's diff, as the CLI shows
    except Error as e:
        return Verdict(REFUSED if e.exit_code == 1 else ERROR, e.diagnostics())
    except Exception as e:
        return Verdict(CRASH, f"{type(e).__name__}: {e}")
    return Verdict(PASS if report.trusted else REFUSED)


def judge_cli(path: Path, release: Path, world: World) -> tuple[int, str]:
    """The real CLI's exit code and standard error for ``path``."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", str(path), "--policy", str(world.policy_file), "--bundle", str(release)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--at", AT.isoformat()])
    return code, err.getvalue()


def load_evidence(release: bytes) -> tuple[Any, Verdict | None]:
    try:
        return JsonLinesEvidence(release, source="release.jsonl"), None
    except Error as e:
        return None, Verdict(REFUSED if e.exit_code == 1 else ERROR, e.diagnostics())
    except Exception as e:
        return None, Verdict(CRASH, f"{type(e).__name__}: {e}")


@dataclass
class Tally:
    """Counts over a campaign, and the mutations worth a second look."""

    tried: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    benign: Counter[str] = field(default_factory=Counter)  # by what the verifier said
    by_operator: Counter[tuple[str, str]] = field(default_factory=Counter)
    cli_checked: int = 0
    problems: list[str] = field(default_factory=list)  # false passes, crashes, bad messages

    def add(self, mutation: Mutation, verdicts: dict[str, Verdict], extra: str = "") -> str:
        self.tried += 1
        crashes = [t for t, v in verdicts.items() if v.outcome == CRASH]
        must = [t for t, changed in mutation.changed.items() if changed]
        if crashes:
            outcome = CRASH
        elif extra:
            outcome = "false pass"
        elif not must:
            outcome = "benign"
            self.benign[
                "passed" if all(v.outcome == PASS for v in verdicts.values()) else "refused anyway"
            ] += 1
        elif any(verdicts[t].outcome == PASS for t in must):
            outcome = "false pass"
        elif any(verdicts[t].outcome == REFUSED for t in must):
            outcome = REFUSED
        else:
            outcome = ERROR
        # Error messages are for people: one line, never a traceback.
        for verdict in verdicts.values():
            if "\n" in verdict.message or "Traceback" in verdict.message:
                self.problems.append(f"multi-line message: {verdict.message[:200]}")
        self.counts[outcome] += 1
        self.by_operator[(mutation.operator, outcome)] += 1
        if outcome in (CRASH, "false pass"):
            said = {t: f"{v.outcome} {v.message[:160]}" for t, v in verdicts.items()}
            self.problems.append(
                f"{outcome}: {mutation.operator} {mutation.detail} {extra} {said}".strip()
            )
        return outcome

    def summary(self) -> str:
        benign = ", ".join(f"{k} {v}" for k, v in sorted(self.benign.items())) or "none"
        return (
            f"tried {self.tried}: refused {self.counts[REFUSED]}, errors {self.counts[ERROR]}, "
            f"false passes {self.counts['false pass']}, crashes {self.counts[CRASH]}, "
            f"benign {self.counts['benign']} ({benign}); CLI cross-checked {self.cli_checked}"
        )


def run_campaign(
    world: World,
    *,
    seed: int,
    count: int,
    scratch: Path,
    cli_every: int = 0,
    tally: Tally | None = None,
) -> Tally:
    """Apply ``count`` seeded single mutations and judge each (see the module docstring).

    Every ``cli_every``-th mutation (0: none) is also run through the real CLI, whose exit
    code must agree with the library's verdict and whose error output must be one line.
    """
    rng = random.Random(seed)
    tally = tally or Tally()
    pristine, failed = load_evidence(world.release)
    assert failed is None, failed
    for number in range(count):
        work = scratch / f"m{number}"
        work.mkdir(parents=True)
        if rng.random() < 0.75:
            mutation = release_mutation(world, rng)
            evidence, failed = load_evidence(mutation.release)
        else:
            mutation = disk_mutation(world, rng, work)
            evidence, failed = pristine, None
        verdicts = {t: failed or judge(mutation.paths[t], evidence, world) for t in TARGETS}
        extra = ""
        if mutation.check_manifest and evidence is not None:
            served = evidence.manifest(world.dataset)
            if served is not None and served.canonical_bytes != world.manifest.canonical_bytes:
                extra = "a changed manifest is served under the attested digest"
        tally.add(mutation, verdicts, extra)
        if cli_every and number % cli_every == 0:
            release = work / "release.jsonl"
            release.write_bytes(mutation.release)
            for target in TARGETS:
                code, err = judge_cli(mutation.paths[target], release, world)
                expected = {PASS: 0, REFUSED: 1, ERROR: 2, CRASH: 3}[verdicts[target].outcome]
                tally.cli_checked += 1
                if code != expected or err.count("\n") > 1 or "Traceback" in err:
                    tally.problems.append(
                        f"CLI disagrees on {target} ({code} != {expected}): "
                        f"{mutation.operator} {mutation.detail}: {err[:300]}"
                    )
        shutil.rmtree(work)
    return tally


# -- the ledger variant ------------------------------------------------------------------


def _rechain(db: sqlite3.Connection, head: Path) -> None:
    """Recompute every entry's chain hash from the first and rewrite the head file: what an
    attacker who understands the format does after editing history."""
    previous = "0" * 64
    rows = db.execute(
        "SELECT seq, bundle, predicate_type, signer, recorded_at FROM entries ORDER BY seq"
    ).fetchall()
    last: tuple[int, str] | None = None
    for position, (seq, bundle, predicate_type, signer, recorded_at) in enumerate(rows, 1):
        digest = hashlib.sha256(bundle).hexdigest()
        chained = entry_hash(
            prev_hash=previous,
            seq=position,
            bundle_digest=digest,
            predicate_type=predicate_type,
            signer=signer,
            at=recorded_at,
        )
        db.execute(
            "UPDATE entries SET seq = ?, prev_hash = ?, entry_hash = ?, bundle_digest = ? "
            "WHERE seq = ?",
            (-position, previous, chained, digest, seq),
        )
        db.execute("UPDATE subjects SET seq = ? WHERE seq = ?", (-position, seq))
        previous, last = chained, (position, chained)
    db.execute("UPDATE entries SET seq = -seq")
    db.execute("UPDATE subjects SET seq = -seq")
    if last is not None:
        head.write_text(json.dumps({"seq": last[0], "hash": last[1]}))


def _payload_edit(bundle: bytes, rng: random.Random) -> tuple[bytes, str]:
    document = json.loads(bundle)
    envelope = document["dsseEnvelope"]
    statement, what = edit_json(json.loads(base64.b64decode(envelope["payload"])), rng)
    envelope["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()
    return _reencode(document), what


def ledger_mutation(db: sqlite3.Connection, head: Path, rng: random.Random) -> tuple[str, bool]:  # noqa: PLR0912
    """One random edit of the ledger's tables or head file; returns what it did and whether
    ``Ledger.check`` can be expected to see it.

    Deleting an entry and then recomputing every later hash and the head file leaves a ledger
    indistinguishable from one that never held the entry: the chain has no anchor outside the
    files an attacker who can write them controls (the README says so). The check cannot see
    that one; the verifier must still refuse what the deleted entry was needed for. A second
    copy of an existing index row changes no lookup, and is not counted as visible either.
    """
    seqs = [row[0] for row in db.execute("SELECT seq FROM entries ORDER BY seq")]
    seq = rng.choice(seqs)
    (bundle,) = db.execute("SELECT bundle FROM entries WHERE seq = ?", (seq,)).fetchone()
    how = rng.choice(
        [
            "bundle-bytes",
            "payload",
            "payload+digest",
            "rewrite-history",
            "field",
            "delete",
            "delete+rechain",
            "swap-bundles",
            "subjects",
            "key",
            "manifest",
            "head",
        ]
    )
    if how == "bundle-bytes":
        new, what = mutate_bytes(bundle, rng)
        db.execute("UPDATE entries SET bundle = ? WHERE seq = ?", (new, seq))
    elif how in ("payload", "payload+digest", "rewrite-history"):
        new, what = _payload_edit(bundle, rng)
        db.execute("UPDATE entries SET bundle = ? WHERE seq = ?", (new, seq))
        if how == "payload+digest":
            digest = hashlib.sha256(new).hexdigest()
            db.execute("UPDATE entries SET bundle_digest = ? WHERE seq = ?", (digest, seq))
        elif how == "rewrite-history":
            _rechain(db, head)
    elif how == "field":
        column = rng.choice(
            ["entry_hash", "prev_hash", "bundle_digest", "predicate_type", "signer", "recorded_at"]
        )
        (value,) = db.execute(f"SELECT {column} FROM entries WHERE seq = ?", (seq,)).fetchone()
        new_value = mutate_bytes(value.encode(), rng)[0].decode("utf-8", "replace")
        if new_value == value:
            new_value = value + "x"
        db.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?", (new_value, seq))
        what = column
    elif how in ("delete", "delete+rechain"):
        db.execute("DELETE FROM subjects WHERE seq = ?", (seq,))
        db.execute("DELETE FROM entries WHERE seq = ?", (seq,))
        if how == "delete+rechain":
            _rechain(db, head)
        what = ""
    elif how == "swap-bundles":
        other = rng.choice([s for s in seqs if s != seq])
        (second,) = db.execute("SELECT bundle FROM entries WHERE seq = ?", (other,)).fetchone()
        db.execute("UPDATE entries SET bundle = ? WHERE seq = ?", (second, seq))
        db.execute("UPDATE entries SET bundle = ? WHERE seq = ?", (bundle, other))
        what = f"with entry {other}"
    elif how == "subjects":
        rows = db.execute("SELECT rowid, digest FROM subjects WHERE seq = ?", (seq,)).fetchall()
        rowid, digest = rng.choice(rows)
        action = rng.choice(["delete", "retarget", "add"])
        if action == "delete":
            db.execute("DELETE FROM subjects WHERE rowid = ?", (rowid,))
        elif action == "retarget":
            db.execute("UPDATE subjects SET digest = ? WHERE rowid = ?", ("0" * 64, rowid))
        else:
            other = rng.choice([s for s in seqs if s != seq])
            duplicate = db.execute(
                "SELECT 1 FROM subjects WHERE seq = ? AND digest = ?", (other, digest)
            ).fetchone()
            db.execute(
                "INSERT INTO subjects (seq, algorithm, digest) VALUES (?, 'sha256', ?)",
                (other, digest),
            )
            if duplicate:  # a second copy of an existing row: every lookup answers the same
                return f"subjects (entry {other}) duplicate row", False
        what = action
    elif how == "key":
        from provenance.signing.keys import KeySigner

        db.execute("UPDATE keys SET pem = ?", (KeySigner.generate().public_key.pem,))
        what = "replaced by another key"
    elif how == "manifest":
        (data,) = db.execute("SELECT data FROM manifests").fetchone()
        new, what = mutate_bytes(zlib.decompress(data), rng)
        db.execute("UPDATE manifests SET data = ?", (zlib.compress(new),))
    else:
        document = json.loads(head.read_text())
        action = rng.choice(["delete", "seq", "hash"])
        if action == "delete":
            head.unlink()
        elif action == "seq":
            document["seq"] += rng.choice([1, 5, 100])
            head.write_text(json.dumps(document))
        else:
            document["hash"] = mutate_bytes(document["hash"].encode(), rng)[0].decode(
                "utf-8", "replace"
            )
            head.write_text(json.dumps(document))
        what = action
    return f"{how} (entry {seq}) {what}".strip(), how != "delete+rechain"


def run_ledger_campaign(
    world: World, *, seed: int, count: int, scratch: Path, tally: Tally | None = None
) -> Tally:
    """Edit a copy of the world's ledger ``count`` times (one edit each); ``Ledger.check``
    must name a problem each time, and verifying the checkpoint from that ledger must not
    trust a chain whose signed content the edit changed."""
    rng = random.Random(seed)
    tally = tally or Tally()
    original = world.ledger_path.parent
    for number in range(count):
        state = scratch / f"l{number}" / ".provenance"
        shutil.copytree(original, state)
        path = state / "ledger.db"
        db = sqlite3.connect(path, isolation_level=None)
        try:
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                db.execute(f"DROP TRIGGER {name}")
            db.execute("BEGIN")
            detail, visible = ledger_mutation(db, path.with_suffix(".head"), rng)
            db.execute("COMMIT")
        finally:
            db.close()
        verdicts: dict[str, Verdict] = {}
        bundles: list[bytes] = []
        try:
            with Ledger(path) as ledger:
                problems = ledger.check()
                bundles = [e.bundle for e in ledger.entries()]
                evidence = LedgerEvidence(ledger)
                verdicts["model"] = _judge_digest(world.model_digest, evidence, world)
                verdicts["data"] = _judge_digest(world.dataset, evidence, world)
            verdicts["check"] = Verdict(REFUSED if problems else PASS, "; ".join(problems))
        except Error as e:
            verdicts["check"] = Verdict(ERROR, e.diagnostics())
        except Exception as e:
            verdicts["check"] = Verdict(CRASH, f"{type(e).__name__}: {e}")
        kept = intact(b"\n".join(bundles), world)
        changed = {
            "check": visible,
            "model": not world.chain("model") <= kept,
            "data": not world.chain("data") <= kept,
        }
        mutation = Mutation("ledger", detail, b"", {}, changed)
        tally.add(mutation, verdicts)
        shutil.rmtree(state.parent)
    return tally


def _judge_digest(digest: Digest, evidence: Any, world: World) -> Verdict:
    try:
        report = verify(digest, evidence, world.policy, at=AT)
    except Error as e:
        return Verdict(REFUSED if e.exit_code == 1 else ERROR, e.diagnostics())
    except Exception as e:
        return Verdict(CRASH, f"{type(e).__name__}: {e}")
    return Verdict(PASS if report.trusted else REFUSED)


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """``contextlib.chdir`` for Python 3.10."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


__all__ = [
    "TARGETS",
    "Mutation",
    "Tally",
    "chdir",
    "disk_mutation",
    "edit_json",
    "intact",
    "judge",
    "judge_cli",
    "load_evidence",
    "mutate_bytes",
    "release_mutation",
    "run_campaign",
    "run_ledger_campaign",
    "signed_key",
]

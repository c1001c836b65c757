"""Crash-safety harness for the ledger: processes appending at once, killed at random moments.

Several worker processes append signed bundles (one fixed key, so every run signs the same
statements) to one ledger, each in batches that open, append and close the ledger, so that
kills land in every phase of an append's life: start-up, ``BEGIN IMMEDIATE``, the commit, the
head file written on close. After each append *returns*, the worker writes the attestation
id to its own log and fsyncs it. The parent kills workers with SIGKILL at seeded random
moments and restarts them; a restarted worker resumes after the last line of its log, so an
append that committed but was killed before it was logged is appended again -- and must come
back as a duplicate, not a second entry.

Afterwards ``provenance ledger check`` must pass (a head file that lags behind the newest
entries is allowed after a crash; one ahead of them is not), every logged attestation must be
in the ledger, and the ledger must hold nothing else. A SIGKILL leaves the page cache intact,
so this exercises process crashes; surviving power loss additionally needs every commit
synced to disk, which is what ``PRAGMA synchronous=FULL`` on the ledger's connection does and
what this harness cannot simulate.

Used by ``tests/test_ledger_crash.py`` (a short run) and ``bench/crash.py`` (1,000 appends).
The worker side runs as ``python -m tests.crash_helpers worker ...`` from the repository root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.signing.keys import KeySigner

REPO = Path(__file__).resolve().parent.parent
PREDICATE = "https://ml-provenance.dev/test/crash/v1"
# A fixed P-256 private scalar: every worker, and every run, signs with the same key.
FIXED_KEY = int.from_bytes(hashlib.sha256(b"ml-provenance crash test key").digest(), "big") >> 8


def fixed_signer() -> KeySigner:
    """The one key every worker signs with."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from provenance.signing.keys import KeySigner

    return KeySigner(ec.derive_private_key(FIXED_KEY, ec.SECP256R1()))


def bundle_for(signer: KeySigner, worker: int, n: int) -> Bundle:
    """Worker ``worker``'s ``n``-th attestation (its id is the same however often it is signed)."""
    from provenance.bundle import Bundle
    from provenance.digest import Algorithm, Digest
    from provenance.statement import ResourceDescriptor, Statement

    digest = Digest(Algorithm.SHA256, hashlib.sha256(f"{worker}/{n}".encode()).hexdigest())
    statement = Statement(
        (ResourceDescriptor.for_digest(digest, name=f"w{worker}-{n}"),),
        PREDICATE,
        {"worker": worker, "n": n},
    )
    return Bundle.sign_statement(statement, signer)


# -- the worker process ---------------------------------------------------------------------


def _resume(log: Path) -> tuple[int, bool]:
    """How many appends the log records; a torn last line (a kill mid-write) is cut off."""
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return 0, False
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with log.open("r+b") as handle:
            handle.truncate(len(complete))
            os.fsync(handle.fileno())
    return complete.count(b"\n"), len(complete) != len(data)


def run_worker(ledger_path: Path, log: Path, index: int, quota: int, seed: int) -> None:
    """Append this worker's attestations ``0 .. quota-1`` that its log does not yet record."""
    from provenance.ledger import Ledger

    signer = fixed_signer()
    done, torn = _resume(log)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("torn" if torn else "intact", "ready", flush=True)
    rng = random.Random(f"{seed}/{index}/{done}")
    n = done
    while n < quota:
        ledger = Ledger(ledger_path)
        try:
            for _ in range(min(rng.randint(1, 16), quota - n)):
                bundle = bundle_for(signer, index, n)
                entry = ledger.append(bundle, verified_by=signer.public_key)
                # Only now has the append returned: record it, durably.
                outcome = str(entry.seq) if entry is not None else "stored"
                os.write(fd, f"{n} {bundle.attestation_id} {outcome}\n".encode())
                os.fsync(fd)
                n += 1
        finally:
            ledger.close()
    os.close(fd)


# -- the parent -----------------------------------------------------------------------------


@dataclasses.dataclass
class CrashResult:
    """What a run did and what the ledger held afterwards."""

    workers: int
    returned: int  # appends that returned, as the workers' logs record them
    kills: int
    torn_log_lines: int  # kills that landed in the middle of writing a log line
    reappended: int  # appends that found their entry stored already: killed after commit
    entries: int  # entries in the ledger afterwards
    lost: list[str]  # ids whose append returned that the ledger does not hold
    unexpected: int  # entries whose append never returned (none, once every worker finished)
    moved: int  # entries stored at another seq than the one their append returned
    last_seq: int
    head_seq: int | None
    check_exit: int  # of `provenance ledger check`
    problems: list[str]  # what the check reported
    stray_files: list[str]  # files left beside the ledger (temporary files of killed writes)
    seconds: float

    @property
    def passed(self) -> bool:
        """Intact, nothing lost, nothing extra, and the head not ahead of the entries."""
        return (
            self.check_exit == 0
            and not self.problems
            and not self.lost
            and self.unexpected == 0
            and self.moved == 0
            and self.entries == self.returned
            and (self.head_seq is None or self.head_seq <= self.last_seq)
        )


class _Worker:
    def __init__(self, index: int, root: Path, quota: int, seed: int) -> None:
        self.index, self.root, self.quota, self.seed = index, root, quota, seed
        self.log = root / f"worker-{index}.log"
        self.errors = root / f"worker-{index}.err"
        self.process: subprocess.Popen[bytes] | None = None
        self.output = b""
        self.torn = 0
        self.finished = False

    def start(self) -> None:
        ledger = self.root / ".provenance" / "ledger.db"
        command = [sys.executable, "-m", "tests.crash_helpers", "worker"]
        command += [str(ledger), str(self.log), str(self.index), str(self.quota), str(self.seed)]
        with self.errors.open("ab") as errors:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=subprocess.PIPE, stderr=errors, bufsize=0
            )
        self.output = b""

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout

    def ready(self) -> bool:
        """Past start-up (so a kill lands in the work), reading what it said without waiting."""
        if b"ready" not in self.output and select.select([self.stdout], [], [], 0)[0]:
            self.output += os.read(self.stdout.fileno(), 4096)
            if b"ready" in self.output:
                self.torn += b"torn" in self.output
        return b"ready" in self.output

    def poll(self) -> None:
        """Note a worker that finished its quota; a worker that failed fails the run."""
        assert self.process is not None
        if self.finished or self.process.poll() is None:
            return
        self.stdout.close()
        if self.process.returncode != 0:
            raise RuntimeError(
                f"worker {self.index} failed ({self.process.returncode}): "
                + self.errors.read_text()[-2000:]
            )
        self.finished = True

    def returned(self) -> int:
        """Appends its log records as returned (a torn last line is not counted)."""
        try:
            return self.log.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def process_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL it unless it has finished; True if it was killed."""
        assert self.process is not None
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.ready()  # count a torn log line it reported before it died
        self.stdout.close()
        if self.process.returncode != -signal.SIGKILL:  # it finished or failed first
            self.poll()
            return False
        return True


def _kill_until_done(
    pool: list[_Worker], rng: random.Random, between_kills: int, jitter: float, deadline: float
) -> int:
    """Kill and restart workers until each has finished its quota; return the kills."""
    kills = 0
    while True:
        if time.perf_counter() > deadline:
            raise TimeoutError("the crash test did not finish in time")
        for worker in pool:
            worker.poll()
        running = [w for w in pool if not w.finished]
        if not running:
            return kills
        candidates = [w for w in running if w.ready()]
        if not candidates:
            time.sleep(0.005)
            continue
        victim = rng.choice(candidates)
        target = victim.returned() + rng.randint(0, between_kills)
        while victim.returned() < target and victim.process_alive():
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, jitter))
        if victim.kill():
            kills += 1
            victim.start()


def run_crash_test(
    root: Path,
    *,
    appends: int,
    workers: int = 4,
    seed: int = 0,
    between_kills: int = 8,
    jitter: float = 0.01,
    timeout: float = 600.0,
) -> CrashResult:
    """Run the workers in ``root`` until ``appends`` appends have returned, killing one at a
    time with SIGKILL, and report.

    A kill is paced by the victim's own progress, not by the clock, so that a fast machine
    (or a ledger on tmpfs, where a sync costs nothing) sees as many kills as a slow one: the
    victim, chosen at random among the workers past start-up, is killed ``k`` appends later
    (``k`` uniform in ``0..between_kills``; 0 lands in its start-up or first append) plus a
    random ``[0, jitter)`` s, which puts the kill anywhere inside the append under way.

    ``root`` becomes a project (``root/.provenance/ledger.db``) so that the final check is the
    CLI's own ``provenance ledger check``.
    """
    from provenance.ledger import Ledger

    start = time.perf_counter()
    (root / ".provenance").mkdir(parents=True)
    ledger_path = root / ".provenance" / "ledger.db"
    Ledger(ledger_path).close()  # as `provenance init` does
    quota = -(-appends // workers)
    rng = random.Random(seed)
    pool = [_Worker(i, root, quota, seed) for i in range(workers)]
    for worker in pool:
        worker.start()
    try:
        kills = _kill_until_done(pool, rng, between_kills, jitter, start + timeout)
    except BaseException:
        for worker in pool:  # leave no appender running behind a failed run
            if worker.process_alive():
                worker.kill()
        raise

    logged: dict[str, str] = {}  # attestation id -> the seq its append returned, or "stored"
    reappended = 0
    for worker in pool:
        lines = worker.log.read_text().splitlines()
        for n, line in enumerate(lines):
            number, attestation_id, outcome = line.split()
            if int(number) != n:
                raise AssertionError(f"{worker.log}: line {n + 1} records append {number}")
            logged[attestation_id] = outcome
            reappended += outcome == "stored"

    check = subprocess.run(
        [sys.executable, "-m", "provenance", "ledger", "check", "--format", "json"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    report = json.loads(check.stdout) if check.stdout.strip() else {"problems": [check.stderr]}
    with Ledger(ledger_path) as ledger:
        rows = ledger.conn.execute("SELECT seq, attestation_id FROM entries").fetchall()
    stored = {attestation_id: seq for seq, attestation_id in rows}
    head_path = ledger_path.with_suffix(".head")
    head_seq = json.loads(head_path.read_bytes())["seq"] if head_path.exists() else None
    expected = {"ledger.db", "ledger.db-wal", "ledger.db-shm", "ledger.head", "ledger.head.lock"}
    return CrashResult(
        workers=workers,
        returned=sum(len(w.log.read_text().splitlines()) for w in pool),
        kills=kills,
        torn_log_lines=sum(w.torn for w in pool),
        reappended=reappended,
        entries=len(rows),
        lost=sorted(set(logged) - set(stored)),
        unexpected=len(set(stored) - set(logged)),
        moved=sum(
            1
            for attestation_id, outcome in logged.items()
            if outcome != "stored" and stored.get(attestation_id, int(outcome)) != int(outcome)
        ),
        last_seq=max((seq for seq, _ in rows), default=0),
        head_seq=head_seq,
        check_exit=check.returncode,
        problems=[str(p) for p in report.get("problems", [])],
        stray_files=sorted(
            p.name for p in (root / ".provenance").iterdir() if p.name not in expected
        ),
        seconds=time.perf_counter() - start,
    )


def main(argv: list[str]) -> None:
    """``worker LEDGER LOG INDEX QUOTA SEED``: the worker side, started by the parent."""
    if len(argv) != 6 or argv[0] != "worker":
        raise SystemExit("usage: python -m tests.crash_helpers worker LEDGER LOG INDEX QUOTA SEED")
    _, ledger, log, index, quota, seed = argv
    run_worker(Path(ledger), Path(log), int(index), int(quota), int(seed))


if __name__ == "__main__":
    main(sys.argv[1:])

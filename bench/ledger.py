"""Ledger at scale: lookup by subject and append rate at 1,000,000 attestations.

Target: lookup p99 < 5 ms. Figures are printed, never asserted; ``--json`` prints them as one
JSON document on stdout (the text goes to stderr), for ``bench/all.py``.

Building the large ledger is setup, not measurement, and is done once: it is kept in ``--dir``
(default ``$TMPDIR/ml-provenance-bench``) and reused by later runs. Its bundles are signed by
worker processes with one fixed key and stored through ``Ledger.append`` itself -- the same
duplicate check, chain hash, entry and index rows -- except that many appends share one
transaction (``Ledger.append``'s own ``BEGIN IMMEDIATE ... COMMIT`` is replaced by one per
``CHUNK`` appends). One synced commit per append, as the ledger does, would add a million
syncs to setup (at the 800-3,000 synced appends/s seen on a small VM, 6 to 20 minutes); the rows
written are the same either way.

Measured on a copy of it (so the kept ledger stays at N entries), warm page cache:

* lookup: ``Ledger.find(subject=...)`` for random stored subjects; median and p99. Peer: the
  same on a small ledger (the ``--appends`` entries below).
* append: ``--appends`` new bundles, each ``Ledger.append`` in its own synced transaction, as
  ``provenance dataset add`` does. Peer: the same bundles appended to an empty ledger.
* with ``--check`` (default only up to 100,000 entries: it re-verifies every signature at
  ~1,000 entries/s), ``Ledger.check`` over the whole ledger.

    python bench/ledger.py [--count N] [--lookups N] [--appends N] [--dir DIR] [--check] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.ledger import Ledger
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement

PREDICATE = "https://ml-provenance.dev/attestation/dataset/v1"
CHUNK = 20_000  # appends per transaction while building
# A fixed P-256 private scalar: the kept ledger and later runs' appends share one signer.
FIXED_KEY = int.from_bytes(hashlib.sha256(b"ml-provenance ledger bench key").digest(), "big") >> 8


@cache
def signer() -> KeySigner:
    from cryptography.hazmat.primitives.asymmetric import ec

    return KeySigner(ec.derive_private_key(FIXED_KEY, ec.SECP256R1()))


def digest_of(n: int) -> Digest:
    return Digest(Algorithm.SHA256, hashlib.sha256(n.to_bytes(8, "little")).hexdigest())


def bundle(n: int) -> Bundle:
    statement = Statement(
        (ResourceDescriptor.for_digest(digest_of(n), name=f"dataset-{n}"),),
        PREDICATE,
        {"name": f"dataset-{n}", "files": n, "bytes": n * 4096},
    )
    return Bundle.sign_statement(statement, signer())


def sign_range(bounds: tuple[int, int]) -> list[bytes]:
    """Bundles ``start .. stop-1``, signed in a worker process; bytes cross the pipe."""
    return [bundle(n).raw for n in range(*bounds)]


def signed(start: int, stop: int, processes: int) -> Iterator[Bundle]:
    """Bundles ``start .. stop-1`` in order, signed by ``processes`` worker processes."""
    step = 2_000
    ranges = [(n, min(n + step, stop)) for n in range(start, stop, step)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for raws in pool.imap(sign_range, ranges):
            for raw in raws:
                yield Bundle.from_bytes(raw)


def build(path: Path, count: int, out: Any) -> dict[str, Any]:
    """Create the ledger of ``count`` entries at ``path`` (see the module docstring)."""
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    path.with_suffix(".head").unlink(missing_ok=True)
    processes = max(1, len(os.sched_getaffinity(0)) - 1)
    print(f"building a ledger of {count:,} entries at {path} (once; kept for reuse)", file=out)
    start = time.perf_counter()
    key = signer().public_key
    with Ledger(path) as ledger:
        conn = ledger.conn
        # Ledger.append, with its per-append transaction made a no-op: CHUNK appends per commit.
        with mock.patch.object(ledger, "_transaction", contextlib.nullcontext):
            conn.execute("BEGIN IMMEDIATE")
            for n, item in enumerate(signed(0, count, processes), start=1):
                ledger.append(item, verified_by=key)
                if n % CHUNK == 0:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN IMMEDIATE")
                    if n % (CHUNK * 10) == 0:
                        rate = n / (time.perf_counter() - start)
                        print(f"  {n:,} entries ({rate:,.0f}/s)", file=out)
            conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    how = (
        f"signed by {processes} process(es), stored through Ledger.append "
        f"{CHUNK:,} appends per transaction"
    )
    info = {"how": how, "seconds": seconds, "per_s": count / seconds}
    path.with_name(path.name + ".complete").write_text(json.dumps(info))
    return info


def lookups(ledger: Ledger, stored: range, samples: int) -> dict[str, float]:
    """Median and p99 of ``Ledger.find(subject=...)`` for random stored subjects."""
    rng = random.Random(7)
    times: list[float] = []
    for _ in range(samples):
        target = digest_of(rng.choice(stored))
        start = time.perf_counter()
        found = ledger.find(subject=target)
        times.append(time.perf_counter() - start)
        assert len(found) == 1
    times.sort()
    p99 = times[math.ceil(len(times) * 0.99) - 1]
    return {"median_ms": statistics.median(times) * 1e3, "p99_ms": p99 * 1e3, "n": samples}


def appends(path: Path, numbers: range) -> float:
    """Appends per second of ``numbers``' bundles (signed first), one synced transaction each."""
    items = [bundle(n) for n in numbers]
    key = signer().public_key
    # Every append waits for a sync; dirty pages of earlier writes (the copy of the large
    # ledger) would make those syncs wait for them too.
    os.sync()
    with Ledger(path) as ledger:
        start = time.perf_counter()
        for item in items:
            assert ledger.append(item, verified_by=key) is not None
        seconds = time.perf_counter() - start
    return len(items) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--appends", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, help="where the large ledger is kept")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout
    check = args.check if args.check is not None else args.count <= 100_000

    root = args.dir or Path(tempfile.gettempdir()) / "ml-provenance-bench"
    root.mkdir(parents=True, exist_ok=True)
    kept = root / f"ledger-{args.count}.db"
    marker = kept.with_name(kept.name + ".complete")
    if marker.exists():
        built = json.loads(marker.read_text()) | {"reused": True}
    else:
        built = build(kept, args.count, out) | {"reused": False}

    with tempfile.TemporaryDirectory(dir=root) as tmp:
        small = Path(tmp) / "small" / "ledger.db"
        small.parent.mkdir()
        fresh = range(args.count, args.count + args.appends)
        append_empty = appends(small, fresh)
        with Ledger(small) as ledger:
            lookup_small = lookups(ledger, fresh, args.lookups)

        large = Path(tmp) / "large" / "ledger.db"
        large.parent.mkdir()
        shutil.copyfile(kept, large)
        shutil.copyfile(kept.with_suffix(".head"), large.with_suffix(".head"))
        size = large.stat().st_size
        with Ledger(large) as ledger:
            lookup = lookups(ledger, range(args.count), args.lookups)
        append = appends(large, fresh)
        checking: dict[str, Any] | None = None
        if check:
            with Ledger(large) as ledger:
                start = time.perf_counter()
                problems = ledger.check()
                seconds = time.perf_counter() - start
            checking = {"seconds": seconds, "problems": len(problems)}

    document = {
        "count": args.count,
        "size_mb": size / 1e6,
        "built": built,
        "lookup": lookup,
        "lookup_small": lookup_small | {"entries": args.appends},
        "append_per_s": append,
        "append_empty_per_s": append_empty,
        "appends": args.appends,
        "check": checking,
    }
    reused = "kept from an earlier run" if built["reused"] else "built now"
    print(
        f"attestations:        {args.count:,} (ledger {size / 1e6:,.0f} MB; {reused}, "
        f"{built['seconds']:.0f} s: {built['how']})",
        file=out,
    )
    print(
        f"lookup by subject:   median {lookup['median_ms']:.3f} ms, p99 {lookup['p99_ms']:.3f} ms "
        f"over {args.lookups:,} lookups (target p99 < 5 ms); at {args.appends:,} entries: "
        f"p99 {lookup_small['p99_ms']:.3f} ms",
        file=out,
    )
    print(
        f"append:              {append:,.0f} appends/s at {args.count:,} entries, "
        f"{append_empty:,.0f}/s into an empty ledger ({args.appends:,} appends, one synced "
        "transaction each)",
        file=out,
    )
    if checking is not None:
        total = args.count + args.appends
        verdict = f"{checking['problems']} problems" if checking["problems"] else "intact"
        print(
            f"ledger check:        {checking['seconds']:.1f} s "
            f"({total / checking['seconds']:,.0f} entries/s), {verdict}",
            file=out,
        )
    if args.json:
        print(json.dumps(document))


if __name__ == "__main__":
    main()

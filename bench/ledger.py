"""Ledger throughput: append rate, and lookup by subject digest at 100,000 attestations.

Target: lookup p99 < 5 ms. Bundles are signed once up front (signing is not what is measured)
and appended one transaction each, as ``provenance dataset add`` does. Figures are printed,
never asserted.

    python bench/ledger.py [--count N] [--lookups N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.ledger import Ledger
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement


def digest_of(n: int) -> Digest:
    return Digest(Algorithm.SHA256, hashlib.sha256(n.to_bytes(8, "little")).hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()

    signer = KeySigner.generate()
    start = time.perf_counter()
    bundles = [
        Bundle.sign_statement(
            Statement(
                (ResourceDescriptor.for_digest(digest_of(n), name=f"dataset-{n}"),),
                "https://ml-provenance.dev/attestation/dataset/v1",
                {"name": f"dataset-{n}", "files": n, "bytes": n * 4096},
            ),
            signer,
        )
        for n in range(args.count)
    ]
    signing = time.perf_counter() - start

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "ledger.db"
        with Ledger(path) as ledger:
            start = time.perf_counter()
            for bundle in bundles:
                ledger.append(bundle, verified_by=signer.public_key)
            appending = time.perf_counter() - start

            rng = random.Random(7)
            times: list[float] = []
            for _ in range(args.lookups):
                target = digest_of(rng.randrange(args.count))
                t = time.perf_counter()
                found = ledger.find(subject=target)
                times.append(time.perf_counter() - t)
                assert len(found) == 1
            start = time.perf_counter()
            problems = ledger.check()
            checking = time.perf_counter() - start
        size = (
            path.stat().st_size + path.with_suffix(".db-wal").stat().st_size
            if (path.with_suffix(".db-wal").exists())
            else path.stat().st_size
        )

    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"attestations:        {args.count:,} (ledger {size / 1e6:.0f} MB)")
    print(f"signing (not timed): {args.count / signing:,.0f} bundles/s")
    print(f"append:              {args.count / appending:,.0f} appends/s (one transaction each)")
    print(
        f"lookup by subject:   median {statistics.median(times) * 1e3:.3f} ms, "
        f"p99 {p99 * 1e3:.3f} ms over {args.lookups:,} lookups (target p99 < 5 ms)"
    )
    print(
        f"ledger check:        {checking:.1f} s ({args.count / checking:,.0f} entries/s), "
        f"{'intact' if not problems else f'{len(problems)} problems'}"
    )


if __name__ == "__main__":
    main()

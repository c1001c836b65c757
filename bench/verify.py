"""Verification cost outside hashing: a chain of depth 5 among 1,000 unrelated attestations.

The artifact is given by digest, so no file is hashed: what is measured is finding the
attestations in the ledger, verifying their signatures, evaluating the policy and walking the
inputs. Target: < 200 ms. Figures are printed, never asserted; ``--json`` prints them as one
JSON document instead, for ``bench/all.py``.

    python bench/verify.py [--unrelated N] [--depth N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest
from provenance.ledger import Ledger
from provenance.policy.load import parse_policy
from provenance.predicates.dataset import DATASET_PREDICATE
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement
from provenance.verify.core import verify
from provenance.verify.evidence import LedgerEvidence


def digest(n: int) -> Digest:
    return Digest(Algorithm.SHA256, f"{n:064x}")


def attest(signer: KeySigner, n: int, parent: int | None) -> Bundle:
    parents = [{"digest": digest(parent).as_dict()}] if parent is not None else []
    statement = Statement(
        (ResourceDescriptor.for_digest(digest(n), name=f"d{n}"),),
        DATASET_PREDICATE,
        {"name": f"d{n}", "license": "CC0-1.0", "parents": parents},
    )
    return Bundle.sign_statement(statement, signer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unrelated", type=int, default=1_000)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()
    signer = KeySigner.generate()
    policy = parse_policy(
        f"""
version: 1
roots:
  project:
    pem: |
{chr(10).join("      " + line for line in signer.public_key.pem.decode().splitlines())}
rules:
  dataset:
    require:
      - predicateType: {DATASET_PREDICATE}
        signedBy: [project]
        conditions: ['predicate.license != null']
""",
        base=Path("."),
    )
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "ledger.db") as ledger:
        for n in range(10_000, 10_000 + args.unrelated):
            ledger.append(attest(signer, n, None), verified_by=signer.public_key)
        for level in range(1, args.depth + 1):
            parent = level + 1 if level < args.depth else None
            ledger.append(attest(signer, level, parent), verified_by=signer.public_key)
        evidence = LedgerEvidence(ledger)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = verify(digest(1), evidence, policy)
            times.append(time.perf_counter() - start)
            assert report.trusted
    if args.json:
        figures = {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3}
        print(json.dumps(figures | {"depth": args.depth, "unrelated": args.unrelated}))
        return
    print(
        f"verify a chain of depth {args.depth} among {args.unrelated:,} unrelated attestations: "
        f"median {statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms "
        f"over {args.repeat} runs (target < 200 ms; no hashing)"
    )


if __name__ == "__main__":
    main()

"""``provenance.torch.load``: load a checkpoint only if its chain verifies and it scans clean.

A drop-in for ``torch.load`` in training and serving code::

    import provenance.torch
    state = provenance.torch.load("model.pt", policy=".provenance/policy.yaml")

Attestations come from the project's ledger (found from the working directory, like git) or
from ``bundle``, a file ``provenance ledger export`` wrote. Needs the ``torch`` extra.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from provenance.guard.checkpoint import LoadRefusedError, load_verified
from provenance.policy.model import Policy

__all__ = ["LoadRefusedError", "load"]


def load(
    path: str | Path,
    *,
    policy: str | Path | Policy,
    bundle: str | Path | None = None,
    map_location: str = "cpu",
    at: dt.datetime | None = None,
    offline: bool = True,
) -> Any:
    """Verify ``path``'s chain under ``policy``, scan it, then load it with weights_only.

    Raises :class:`LoadRefusedError` (a :class:`provenance.errors.RefusedError`) on any
    failure, before anything from the file is executed or returned.
    """
    from provenance.policy.load import load_policy
    from provenance.verify.evidence import BundleFileEvidence, LedgerEvidence

    loaded = policy if isinstance(policy, Policy) else load_policy(Path(policy))
    if bundle is not None:
        return load_verified(
            Path(path),
            policy=loaded,
            evidence=BundleFileEvidence(Path(bundle)),
            map_location=map_location,
            at=at,
            offline=offline,
        )
    from provenance.ledger import Ledger
    from provenance.project import require_project

    with Ledger(require_project().ledger_path) as ledger:
        return load_verified(
            Path(path),
            policy=loaded,
            evidence=LedgerEvidence(ledger),
            map_location=map_location,
            at=at,
            offline=offline,
        )

"""ml-provenance: make an ML pipeline's supply chain verifiable.

Every dataset, dependency set and checkpoint is named by a content digest; attestations about
those digests are signed and chained, and a verifier refuses anything whose chain is broken.
This top-level module carries the version and names the public entry points lazily, so that
``import provenance`` stays cheap: the CLI's start-up path must not pay for subsystems it does
not use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "training_run"]


def __getattr__(name: str) -> Any:
    """``provenance.training_run``, imported on first use (PEP 562)."""
    if name == "training_run":
        from provenance.guard.run import training_run

        return training_run
    raise AttributeError(f"module 'provenance' has no attribute {name!r}")

"""The evaluation gate: figures, a backdoor probe and a signed evaluation of a model.

A model is evaluated on a pinned, attested held-out set; the result -- accuracy, per-class
precision and recall, what the backdoor probe found, the regression against the previous
release of the same model name -- becomes an evaluation attestation about the model's digest
(``attest/evaluation.md``), which a policy's CEL conditions then judge like any other.

Modules, one job each: :mod:`~provenance.evaluate.metrics` (counting, numpy only),
:mod:`~provenance.evaluate.probe` (trigger stamping and collapse detection),
:mod:`~provenance.evaluate.baseline` (the previous release and the regression),
:mod:`~provenance.evaluate.api` (the torch evaluation pass), :mod:`~provenance.evaluate.data`
and :mod:`~provenance.evaluate.loading` (the evaluation set and the model from disk, checked),
:mod:`~provenance.evaluate.run` (all of it, for the CLI). torch and numpy are imported only
when these are used, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Evaluation", "evaluate_model"]


def __getattr__(name: str) -> Any:
    """``evaluate_model`` and ``Evaluation``, imported on first use (they need torch)."""
    if name in __all__:
        from provenance.evaluate import api

        return getattr(api, name)
    raise AttributeError(f"module 'provenance.evaluate' has no attribute {name!r}")

"""The screening figures (the ``screening/v1`` predicate) and the text people read.

Kept apart from the engine so the predicate's shape is decided in one place; the statement
wrappers are in :mod:`provenance.predicates.screening`.
"""

from __future__ import annotations

from typing import Any

from provenance.screen.engine import Screening
from provenance.screen.result import indices_figures


def tool() -> str:
    """This tool and version, as the figures name it."""
    from provenance import __version__

    return f"ml-provenance {__version__}"


def figures(screening: Screening, *, dataset_name: str | None, attested_at: str) -> dict[str, Any]:
    """The ``screening/v1`` predicate for ``screening``."""
    samples = screening.samples
    reference = screening.options.reference
    labels = samples.labels
    classes = len({v for v in labels if v is not None}) if labels is not None else None
    predicate: dict[str, Any] = {
        "result": screening.result,
        "tool": tool(),
        "schemaDigest": f"sha256:{screening.schema.digest}",
        "dataset": {
            "name": dataset_name,
            "format": screening.schema.format,
            "samples": len(samples),
            "features": int(samples.numeric.shape[1]) + len(samples.categorical),
            "classes": classes,
            "ignoredFiles": len(samples.ignored),
        },
        "checks": {r.name: r.figures() for r in screening.results},
        "skipped": dict(screening.skipped),
        "sanitize": indices_figures(screening.removable),
        "reference": {"digest": reference.digest.as_dict(), "profileFrom": reference.origin}
        if reference is not None
        else None,
        "profile": screening.profile,
        "attestedAt": attested_at,
    }
    return predicate


def render_text(screening: Screening) -> list[str]:
    """One line per check, then one per skipped check."""
    lines = [f"{r.result:<7} {r.name:<17} {r.summary}" for r in screening.results]
    lines += [f"{'skipped':<7} {name:<17} {why}" for name, why in screening.skipped.items()]
    if screening.samples.ignored:
        count = len(screening.samples.ignored)
        lines.append(
            f"{'note':<7} {'files':<17} {count} file(s) of the dataset are not samples "
            f"and were not screened ({screening.samples.ignored[0]}, ...)"
        )
    return lines

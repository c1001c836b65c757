"""Drift against a reference: population stability index per feature and for the labels.

A *profile* summarises a dataset for this comparison: for each numeric feature the interior
quantile edges of the reference and the share of samples in each bin (plus a share of
missing values: NaN, and the infinities a schema violation leaves in the data), the share of
each category of each category column, and the label shares. It is small and JSON, so it
travels in the screening attestation: a later run can compare against a reference by digest
alone, from its signed profile, without the reference's data.
Arrays wider than :data:`MAX_FEATURES` are profiled as that many block means of the flattened
array, which keeps the profile small for images.

PSI = sum over bins of (current - reference) x ln(current / reference), shares floored at
:data:`FLOOR`. The number of bins is the schema's ``bins`` but never more than one per
:data:`MIN_PER_BIN` reference samples, which keeps sampling noise in small datasets from
reading as drift.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, cast

from provenance.errors import InputError
from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_FEATURES = 64
MIN_PER_BIN = 50
FLOOR = 1e-4
PROFILE_VERSION = 1
MAX_NAMED = 20


def _features(samples: Samples) -> tuple[list[str], npt.NDArray[np.float64]]:
    """The numeric features a profile describes (block means beyond MAX_FEATURES)."""
    import numpy as np

    values, names = samples.numeric, samples.numeric_names
    if samples.format == "table" or values.shape[1] <= MAX_FEATURES:
        return list(names), values
    blocks = np.array_split(np.arange(values.shape[1]), MAX_FEATURES)
    pooled = np.column_stack([values[:, b].mean(axis=1) for b in blocks])
    return [f"{names[b[0]]}..{names[b[-1]]}" for b in blocks], pooled


def _shares(values: npt.NDArray[np.float64], edges: list[float]) -> list[float]:
    import numpy as np

    finite = np.isfinite(values)
    counts = np.bincount(
        np.searchsorted(edges, values[finite], side="right"), minlength=len(edges) + 1
    )
    total = max(len(values), 1)
    return [round(float(c) / total, 8) for c in counts] + [round(float((~finite).sum()) / total, 8)]


def _category_shares(values: Any) -> dict[str, float]:
    total = max(len(values), 1)
    shares: dict[str, float] = {}
    for value in values:
        key = "" if value is None else str(value)
        shares[key] = shares.get(key, 0.0) + 1.0 / total
    return {k: round(v, 8) for k, v in sorted(shares.items())}


def build_profile(samples: Samples, bins: int) -> dict[str, Any]:
    """The profile of ``samples`` as a reference (see the module docstring)."""
    import numpy as np

    names, values = _features(samples)
    count = max(2, min(bins, len(samples) // MIN_PER_BIN))
    features: dict[str, Any] = {}
    for j, name in enumerate(names):
        column = values[:, j]
        present = column[np.isfinite(column)]
        edges: list[float] = []
        if present.size:
            quantiles = np.quantile(present, np.linspace(0, 1, count + 1)[1:-1])
            edges = sorted({round(float(q), 8) for q in quantiles})
        features[name] = {"edges": edges, "shares": _shares(column, edges)}
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "samples": len(samples),
        "features": features,
        "categories": {k: _category_shares(v) for k, v in samples.categorical.items()},
    }
    if samples.labels is not None:
        profile["labels"] = _category_shares(samples.labels)
    return profile


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two share vectors of equal length."""
    total = 0.0
    for before, after in zip(expected, actual, strict=True):
        e, a = max(before, FLOOR), max(after, FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def _psi_of_shares(expected: dict[str, float], actual: dict[str, float]) -> float:
    keys = sorted(set(expected) | set(actual))
    return psi([expected.get(k, 0.0) for k in keys], [actual.get(k, 0.0) for k in keys])


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a (finite, representable) number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _numbers(value: Any) -> list[float] | None:
    """A JSON list of finite numbers as floats, or None."""
    if not isinstance(value, list):
        return None
    numbers = [_finite(x) for x in value]
    return None if None in numbers else cast("list[float]", numbers)


def _share_map(value: Any, what: str) -> dict[str, float]:
    """Category -> share, every share a finite number."""
    shares = {k: _finite(v) for k, v in value.items()} if isinstance(value, dict) else None
    if shares is None or None in shares.values():
        raise InputError(f"the reference profile's {what} are malformed")
    return cast("dict[str, float]", shares)


def check_profile(profile: Any) -> dict[str, Any]:
    """A stored profile, checked before it is compared against (it comes from an attestation):
    the parts :func:`check_drift` reads, with every number a finite float and the edges
    ascending. Anything else in it is dropped."""
    version = profile.get("version") if isinstance(profile, dict) else None
    if type(version) is not int or version != PROFILE_VERSION:
        raise InputError("the reference profile is missing or of an unknown version")
    features = profile.get("features")
    if not isinstance(features, dict):
        raise InputError("the reference profile has no features")
    checked: dict[str, Any] = {"version": PROFILE_VERSION, "features": {}}
    for name, feature in features.items():
        edges = _numbers(feature.get("edges")) if isinstance(feature, dict) else None
        shares = _numbers(feature.get("shares")) if isinstance(feature, dict) else None
        if (
            edges is None
            or shares is None
            or len(shares) != len(edges) + 2
            or any(a > b for a, b in itertools.pairwise(edges))
        ):
            raise InputError(f"the reference profile's feature {name[:40]!r} is malformed")
        checked["features"][name] = {"edges": edges, "shares": shares}
    categories = profile.get("categories", {})
    if not isinstance(categories, dict):
        raise InputError("the reference profile's categories are malformed")
    checked["categories"] = {
        name: _share_map(shares, f"shares of category column {name[:40]!r}")
        for name, shares in categories.items()
    }
    if "labels" in profile:
        checked["labels"] = _share_map(profile["labels"], "label shares")
    return checked


def check_drift(
    samples: Samples, spec: CheckSpec, reference: dict[str, Any], reference_name: str
) -> CheckResult:
    """PSI of every profiled feature, category column and the labels against ``reference``."""
    names, values = _features(samples)
    ref_features: dict[str, Any] = reference["features"]
    if sorted(ref_features) != sorted(names):
        missing = sorted(set(ref_features) ^ set(names))
        return CheckResult(
            spec,
            1e9,
            [],
            f"features differ from the reference {reference_name}: {', '.join(missing[:5])}",
            [detector("ml-provenance psi")],
            {"featuresDiffer": missing[:MAX_NAMED]},
            forced_fail=True,
        )
    scores: dict[str, float] = {}
    for j, name in enumerate(names):
        feature = ref_features[name]
        scores[name] = psi(feature["shares"], _shares(values[:, j], feature["edges"]))
    for name, shares in reference.get("categories", {}).items():
        if name in samples.categorical:
            scores[f"category:{name}"] = _psi_of_shares(
                shares, _category_shares(samples.categorical[name])
            )
    label_psi = None
    if samples.labels is not None and "labels" in reference:
        label_psi = _psi_of_shares(reference["labels"], _category_shares(samples.labels))
        scores["label"] = label_psi
    worst = max(scores, key=lambda k: scores[k]) if scores else None
    metric = scores[worst] if worst else 0.0
    limit = spec.warn if spec.warn is not None else math.inf
    drifted = sorted((k for k in scores if scores[k] > limit), key=lambda k: -scores[k])
    return CheckResult(
        spec,
        metric,
        [],
        f"largest PSI {metric:.3f} ({worst}) against {reference_name}; "
        f"{len(drifted)} of {len(scores)} drifted",
        [detector("ml-provenance psi")],
        {
            "worst": worst,
            "labelPsi": round(label_psi, 6) if label_psi is not None else None,
            "drifted": {k: round(scores[k], 6) for k in drifted[:MAX_NAMED]},
            "compared": len(scores),
        },
    )

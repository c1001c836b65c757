"""Robust outliers: per feature (median/MAD and IQR fences, per class) and multivariate.

Per feature, a value is an outlier when it is both more than ``z`` robust z-scores from the
median (the modified z-score of Iglewicz and Hoaglin: scale 1.4826 x MAD; 3.5 is their
cut-off) and outside the ``iqr`` x IQR fences (3 is Tukey's "far out"). Requiring both keeps
skewed features from flagging their long tail. A feature whose MAD is zero (more than half its
values are equal: a pixel that is almost always 0, a rarely set flag) has no robust scale and
flags nothing here -- on image data such features would flag a fifth of clean samples; rare
values there are left to the schema's ranges, the multivariate check and the backdoor check.
With ``perClass`` the statistics are those of the sample's own class (classes of fewer than
:data:`MIN_CLASS` samples use the whole dataset), so a plausible value in the wrong class
shows up. A sample is flagged when any of its features is an outlier.

Multivariate: scikit-learn's IsolationForest, flagged where its anomaly score (0.5 is
indifferent, near 1 is isolated quickly) exceeds ``score``; no contamination rate is
assumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MIN_CLASS = 20
MAX_NAMED = 10


def outlier_mask(values: npt.NDArray[np.float64], z: float, iqr: float) -> npt.NDArray[np.bool_]:
    """Which entries of ``values`` (n, d; NaN ignored) are outliers in their column."""
    import numpy as np

    with np.errstate(all="ignore"):
        median = np.nanmedian(values, axis=0)
        deviation = np.abs(values - median)
        scale = np.nanmedian(deviation, axis=0) * 1.4826
        robust_z = np.where(scale > 0, deviation / np.where(scale > 0, scale, 1.0), 0.0)
        q1, q3 = np.nanpercentile(values, [25, 75], axis=0)
        spread = q3 - q1
        outside = (values < q1 - iqr * spread) | (values > q3 + iqr * spread)
    result: npt.NDArray[np.bool_] = (np.nan_to_num(robust_z) > z) & outside
    return result


def check_outliers(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Samples with at least one per-feature robust outlier."""
    import numpy as np

    values = samples.numeric
    z, iqr = float(spec.options["z"]), float(spec.options["iqr"])
    mask = np.zeros(values.shape, dtype=bool)
    if values.shape[1] and len(samples):
        groups: list[npt.NDArray[np.intp]] = []
        labels = samples.labels
        if spec.options["perClass"] and labels is not None:
            small: list[int] = []
            for label in sorted({v for v in labels if v is not None}):
                members = np.nonzero(labels == label)[0]
                if len(members) >= MIN_CLASS:
                    groups.append(members)
                else:
                    small += members.tolist()
            small += [i for i, v in enumerate(labels) if v is None]
            if small:
                whole = outlier_mask(values, z, iqr)
                mask[small] = whole[small]
        else:
            groups.append(np.arange(len(samples)))
        for members in groups:
            mask[members] = outlier_mask(values[members], z, iqr)
    flagged = np.nonzero(mask.any(axis=1))[0].tolist()
    per_feature = mask.sum(axis=0)
    worst = np.argsort(-per_feature, kind="stable")[:MAX_NAMED]
    named = {samples.numeric_names[i]: int(per_feature[i]) for i in worst if per_feature[i]}
    where = "per class" if spec.options["perClass"] and samples.labels is not None else "overall"
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} samples with a robust outlier in some feature ({where})",
        [detector("ml-provenance robust-z+iqr")],
        {"outlierValues": int(mask.sum()), "byFeature": named},
    )


def check_isolation_forest(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Samples IsolationForest isolates quickly (score above the threshold)."""
    import numpy as np
    from sklearn.ensemble import IsolationForest

    matrix = samples.model_matrix()
    threshold = float(spec.options["score"])
    scores: Any = np.zeros(len(samples))
    if matrix.shape[1] and len(samples) > 1:
        forest = IsolationForest(n_estimators=200, random_state=0).fit(matrix)
        scores = -forest.score_samples(matrix)
    flagged = np.nonzero(scores > threshold)[0].tolist()
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} samples with an isolation score above {threshold:g}",
        [detector("sklearn.ensemble.IsolationForest", "scikit-learn")],
        {"maxScore": round(float(np.max(scores)), 6) if len(scores) else 0.0},
    )

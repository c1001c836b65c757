"""Source attribution (Baracaldo et al., 2017): which source makes the model worse?

For a dataset assembled from several sources, a model is trained on all of them and again
without each one in turn, and each is scored on a trusted validation set. A source whose
removal *improves* the model is harmful -- label flips, poisoned samples, or simply data from
another distribution. The decision uses validation log-loss (mean cross-entropy), which is
continuous, rather than accuracy, which on a few hundred validation samples moves in steps
of 1/n and hides a small harm; both are recorded. A source is flagged when leaving it out
lowers the log-loss by more than the check's ``warn`` threshold; the check fails above
``fail``. Flagged sources' samples are flagged in the screened dataset by content (same
features and label), whatever their file names.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.errors import InputError
from provenance.screen.label_issues import DEFAULT_MODEL, DefaultEnsemble, load_model
from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec


@dataclass(frozen=True)
class Source:
    """One source dataset: how it is named in the figures, and its samples."""

    name: str
    digest: Digest
    samples: Samples


def _xy(samples: Samples, names: list[str]) -> tuple[Any, Any]:
    import numpy as np

    labelled = samples.labelled()
    assert samples.labels is not None
    y = np.array([names.index(str(v)) for v in samples.labels[labelled]], dtype=np.int64)
    return samples.model_matrix()[labelled], y


def _score(
    model: Any, x: Any, y: Any, *, validation: tuple[Any, Any], classes: int
) -> tuple[float, float]:
    """(validation log-loss, validation accuracy) of ``model`` fitted on (x, y)."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.metrics import log_loss

    xv, yv = validation
    fitted = clone(model).fit(x, y)
    probabilities = np.zeros((len(yv), classes))
    probabilities[:, np.asarray(fitted.classes_, dtype=np.int64)] = fitted.predict_proba(xv)
    probabilities = np.clip(probabilities, 1e-6, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = float(log_loss(yv, probabilities, labels=list(range(classes))))
    return loss, float((probabilities.argmax(axis=1) == yv).mean())


def check_sources(
    samples: Samples,
    spec: CheckSpec,
    sources: list[Source],
    validation: Samples,
    model_entry: str | None = None,
) -> CheckResult:
    """Leave-one-source-out effect of every source on the validation set."""
    import numpy as np

    if len(sources) < 2:
        raise InputError("source attribution needs at least two sources")
    for what in (validation, *[s.samples for s in sources]):
        if what.labels is None or not what.labelled().any():
            raise InputError("source attribution needs labelled sources and validation data")
    names = sorted(
        {
            str(v)
            for what in (*[s.samples for s in sources], validation)
            for v in (what.labels if what.labels is not None else [])
            if v is not None
        }
    )
    parts = [_xy(s.samples, names) for s in sources]
    widths = {p[0].shape[1] for p in parts} | {validation.model_matrix().shape[1]}
    if len(widths) != 1:
        raise InputError("the sources and the validation set have different features")
    xv, yv = _xy(validation, names)
    model = load_model(model_entry) if model_entry else DefaultEnsemble()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x_all = np.vstack([p[0] for p in parts])
        y_all = np.concatenate([p[1] for p in parts])
        base_loss, base_accuracy = _score(
            model, x_all, y_all, validation=(xv, yv), classes=len(names)
        )
        effects: list[dict[str, Any]] = []
        for i, source in enumerate(sources):
            rest = [p for j, p in enumerate(parts) if j != i]
            loss, accuracy = _score(
                model,
                np.vstack([p[0] for p in rest]),
                np.concatenate([p[1] for p in rest]),
                validation=(xv, yv),
                classes=len(names),
            )
            effects.append(
                {
                    "name": source.name,
                    "digest": source.digest.as_dict(),
                    "samples": len(source.samples),
                    "lossReduction": round(base_loss - loss, 6),
                    "accuracyGain": round(accuracy - base_accuracy, 6),
                }
            )
    limit = spec.warn if spec.warn is not None else spec.fail
    harmful = [i for i, e in enumerate(effects) if limit is not None and e["lossReduction"] > limit]
    bad_content: set[tuple[bytes, object]] = set()
    for i in harmful:
        source_labels = sources[i].samples.labels
        assert source_labels is not None  # checked above
        bad_content.update(zip(sources[i].samples.keys, source_labels, strict=True))
    labels = samples.labels if samples.labels is not None else [None] * len(samples)
    flagged = [i for i, key in enumerate(samples.keys) if (key, labels[i]) in bad_content]
    metric = max(e["lossReduction"] for e in effects)
    named = ", ".join(effects[i]["name"] for i in harmful) or "none"
    return CheckResult(
        spec,
        metric,
        flagged,
        f"harmful sources: {named} (largest validation log-loss reduction from leaving one "
        f"out: {metric:.4f}); {len(flagged)} samples of the dataset come from them",
        [
            detector("leave-one-source-out (Baracaldo et al. 2017)"),
            {
                "name": f"model {model_entry}" if model_entry else DEFAULT_MODEL,
                "version": detector("x", "scikit-learn")["version"],
            },
        ],
        {
            "validation": {
                "samples": len(validation),
                "logLoss": round(base_loss, 6),
                "accuracy": round(base_accuracy, 6),
            },
            "sources": effects,
            "harmful": [effects[i]["name"] for i in harmful],
        },
    )

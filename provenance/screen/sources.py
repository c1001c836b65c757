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

A backdoor does not show on clean validation data: a model that learnt one scores as well as
one that did not. So, when the samples are images, the union of the sources is searched for
patch triggers first (:func:`provenance.screen.triggers.find_patterns`: label-pure,
class-foreign window patterns; neither the trigger, its place, its target nor the rate is
assumed), each found pattern is stamped on the validation images of other labels, and each
model's *trigger success* -- the share of those it assigns to the pattern's label -- is
measured too. A source whose removal lowers the trigger success of some pattern by more than
the ``trigger_success`` option is harmful whatever the log-loss says, and fails the check.
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
from provenance.screen.triggers import Pattern, find_patterns

MAX_PROBES = 20  # trigger patterns measured on the validation set


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


def _fit(model: Any, x: Any, y: Any) -> Any:
    from sklearn.base import clone

    return clone(model).fit(x, y)


def _score(fitted: Any, validation: tuple[Any, Any], classes: int) -> tuple[float, float]:
    """(validation log-loss, validation accuracy) of a fitted model."""
    import numpy as np
    from sklearn.metrics import log_loss

    xv, yv = validation
    probabilities = _probabilities(fitted, xv, classes)
    probabilities = np.clip(probabilities, 1e-6, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = float(log_loss(yv, probabilities, labels=list(range(classes))))
    return loss, float((probabilities.argmax(axis=1) == yv).mean())


def _probabilities(fitted: Any, x: Any, classes: int) -> Any:
    import numpy as np

    probabilities = np.zeros((len(x), classes))
    probabilities[:, np.asarray(fitted.classes_, dtype=np.int64)] = fitted.predict_proba(x)
    return probabilities


@dataclass(frozen=True)
class _Probe:
    """A found trigger pattern stamped on the validation images of the other labels."""

    pattern: Pattern
    label: int  # the pattern's label, as a class index
    stamped: Any  # (m, features)


def _probes(
    parts: list[tuple[Any, Any]],
    validation: tuple[Any, Any],
    names: list[str],
    shape: tuple[int, ...] | None,
    spec: CheckSpec,
) -> list[_Probe]:
    """The trigger probes of the sources' union; none unless the samples are images."""
    import numpy as np

    xv, yv = validation
    if shape is None or len(shape) != 2 or xv.shape[1] != shape[0] * shape[1]:
        return []
    images = np.vstack([p[0] for p in parts]).reshape(-1, *shape)
    labels = np.array([names[i] for i in np.concatenate([p[1] for p in parts])], dtype=object)
    patterns = find_patterns(
        images,
        labels,
        windows=(int(w) for w in spec.options["windows"]),
        min_count=int(spec.options["min_count"]),
    )
    # One probe per trigger: the windows around a patch overlap it and are carried by fewer
    # samples (those whose neighbouring pixels happen to agree); stamped, such a fragment is
    # a weaker, noisier version of the same trigger. So the most carried pattern stands for
    # every overlapping window with its label, and a cap bounds the cost of many repeats.
    patterns.sort(key=lambda p: (-len(p.carriers), p.top, p.left, p.size))
    kept: list[Pattern] = []
    for pattern in patterns:
        if not any(k.label == pattern.label and _overlap(k, pattern) for k in kept):
            kept.append(pattern)
    probes = []
    for pattern in kept[:MAX_PROBES]:
        label = names.index(pattern.label)
        others = xv[yv != label].reshape(-1, *shape)
        if len(others):
            probes.append(_Probe(pattern, label, pattern.stamp(others).reshape(len(others), -1)))
    return probes


def _overlap(a: Pattern, b: Pattern) -> bool:
    """Whether the windows of ``a`` and ``b`` share a pixel."""
    return (
        a.top < b.top + b.size
        and b.top < a.top + a.size
        and a.left < b.left + b.size
        and b.left < a.left + a.size
    )


def _trigger_success(fitted: Any, probes: list[_Probe], classes: int) -> list[float]:
    """Per probe: the share of its stamped validation images assigned to its label."""
    import numpy as np

    return [
        float(np.mean(_probabilities(fitted, p.stamped, classes).argmax(axis=1) == p.label))
        for p in probes
    ]


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
    shapes = {what.sample_shape for what in (validation, *[s.samples for s in sources])}
    model = load_model(model_entry) if model_entry else DefaultEnsemble()
    classes = len(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probes = _probes(parts, (xv, yv), names, shapes.pop() if len(shapes) == 1 else None, spec)
        fitted = _fit(
            model, np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        )
        base_loss, base_accuracy = _score(fitted, (xv, yv), classes)
        base_success = _trigger_success(fitted, probes, classes)
        effects: list[dict[str, Any]] = []
        for i, source in enumerate(sources):
            rest = [p for j, p in enumerate(parts) if j != i]
            fitted = _fit(
                model, np.vstack([p[0] for p in rest]), np.concatenate([p[1] for p in rest])
            )
            loss, accuracy = _score(fitted, (xv, yv), classes)
            effect = {
                "name": source.name,
                "digest": source.digest.as_dict(),
                "samples": len(source.samples),
                "lossReduction": round(base_loss - loss, 6),
                "accuracyGain": round(accuracy - base_accuracy, 6),
            }
            if probes:
                success = _trigger_success(fitted, probes, classes)
                effect["triggerSuccessReduction"] = round(
                    max(b - s for b, s in zip(base_success, success, strict=True)), 6
                )
            effects.append(effect)
    limit = spec.warn if spec.warn is not None else spec.fail
    trigger_limit = float(spec.options["trigger_success"])
    backdoored = [
        i for i, e in enumerate(effects) if e.get("triggerSuccessReduction", 0.0) > trigger_limit
    ]
    harmful = sorted(
        {i for i, e in enumerate(effects) if limit is not None and e["lossReduction"] > limit}
        | set(backdoored)
    )
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
        f"out: {metric:.4f}"
        + (
            f"; largest trigger-success reduction over {len(probes)} found trigger pattern(s): "
            f"{max(e['triggerSuccessReduction'] for e in effects):.3f}"
            if probes
            else ""
        )
        + f"); {len(flagged)} samples of the dataset come from them",
        [
            detector("leave-one-source-out (Baracaldo et al. 2017)"),
            *([detector("label-pure, class-foreign window patterns")] if probes else []),
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
            "triggers": [
                {**p.pattern.figures(), "validationSuccess": round(success, 6)}
                for p, success in zip(probes, base_success, strict=True)
            ],
        },
        forced_fail=bool(backdoored),
    )

"""Label issues by confident learning (Northcutt et al.) with cleanlab, in two rounds.

Each sample's class probabilities come from a model that never saw it (stratified k-fold,
out-of-fold predictions); cleanlab's ``find_label_issues`` then flags samples whose given
label is implausible under the estimated joint of given and true labels. No noise rate is
assumed anywhere. A second round refits the folds without the first round's issues -- a
model trained on cleaner labels is more confident where labels are wrong -- and flags what
it finds too. Finally a sample is also flagged when the last round's out-of-fold prediction
disagrees with its label by a probability margin of at least ``margin`` (confident learning's
per-class thresholds are so high on nearly separable data that a clear flip predicted at 0.89
escapes it). The result is the union. On scikit-learn's digits with 10% random flips, one
round finds about 0.90 of the flips, two rounds 0.95 and the margin rule 0.97, each at a
false-positive rate under 0.01 (``bench/poisoning.py``).

The default model is the mean of three simple, differently biased classifiers on
standardised features: logistic regression, distance-weighted 10-nearest-neighbours and an
RBF support-vector machine (Platt-scaled; left out above :data:`MAX_SVC_SAMPLES` samples,
where it gets slow). A user model is a ``module:function`` entry point returning an
unfitted scikit-learn classifier with ``predict_proba``; it is cloned for every fold.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError
from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_SVC_SAMPLES = 20_000
DEFAULT_MODEL = "default: mean of logistic regression, 10-NN and RBF SVM on standardised features"


class DefaultEnsemble:
    """The default classifier (see the module docstring), with the scikit-learn interface."""

    def __init__(self, with_svc: bool = True) -> None:
        self.with_svc = with_svc
        self.models_: list[Any] = []
        self.classes_: Any = None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"with_svc": self.with_svc}

    def set_params(self, **params: Any) -> DefaultEnsemble:
        self.with_svc = params.get("with_svc", self.with_svc)
        return self

    def fit(self, x: Any, y: Any) -> DefaultEnsemble:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        self.classes_ = np.unique(y)
        members: list[Any] = [
            LogisticRegression(max_iter=2000, C=0.1),
            KNeighborsClassifier(n_neighbors=min(10, len(y)), weights="distance"),
        ]
        if self.with_svc:
            members.append(SVC(C=10, probability=True, random_state=0))
        self.models_ = [make_pipeline(StandardScaler(), m).fit(x, y) for m in members]
        return self

    def predict_proba(self, x: Any) -> Any:
        import numpy as np

        total = np.zeros((len(x), len(self.classes_)))
        for model in self.models_:
            columns = np.searchsorted(self.classes_, model.classes_)
            total[:, columns] += model.predict_proba(x)
        return total / len(self.models_)

    def predict(self, x: Any) -> Any:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


def load_model(entry_point: str) -> Any:
    """The unfitted estimator ``module:function`` returns.

    The working directory is importable for the call, so a ``models.py`` beside the data
    works. The function runs with the user's rights: it is the user's code, named on purpose.
    """
    module_name, _, function_name = entry_point.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"--model {entry_point!r} must be module:function")
    added = str(Path.cwd()) not in sys.path
    if added:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, function_name)
        model = factory()
    except Exception as e:  # the user's code may raise anything; it is bad input here
        raise InputError(f"--model {entry_point}: {type(e).__name__}: {e}") from e
    finally:
        if added:
            sys.path.remove(str(Path.cwd()))
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise InputError(
            f"--model {entry_point} returned {type(model).__name__}, which has no "
            "fit and predict_proba"
        )
    return model


def out_of_fold(
    model: Any,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    *,
    folds: int,
    keep: npt.NDArray[np.bool_] | None = None,
    classes: int | None = None,
) -> npt.NDArray[np.float64]:
    """Out-of-fold class probabilities; training folds are limited to ``keep`` when given."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    width = classes if classes is not None else int(y.max()) + 1
    probabilities = np.zeros((len(y), width))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for fold, test in splitter.split(x, y):
        train = fold[keep[fold]] if keep is not None else fold
        fitted = clone(model).fit(x[train], y[train])
        columns = np.asarray(fitted.classes_, dtype=np.int64)
        probabilities[np.ix_(test, columns)] = fitted.predict_proba(x[test])
    return probabilities


def check_label_issues(
    samples: Samples, spec: CheckSpec, model_entry: str | None = None
) -> CheckResult:
    """Confident learning in ``rounds`` rounds on out-of-fold probabilities."""
    import numpy as np
    from cleanlab.filter import find_label_issues  # type: ignore[import-untyped]

    entry = model_entry or spec.options.get("model")
    labelled = np.nonzero(samples.labelled())[0]
    given = [str(v) for v in samples.labels[labelled]] if samples.labels is not None else []
    names = sorted(set(given))
    y = np.array([names.index(v) for v in given], dtype=np.int64)
    x = samples.model_matrix()[labelled]
    smallest = int(np.bincount(y).min()) if len(y) else 0
    folds = min(int(spec.options["folds"]), smallest)
    if len(names) < 2 or folds < 2:
        raise InputError(
            "label issues need at least two classes with at least two samples each",
            hint="turn the check off (checks.label_issues.enabled: false) for this data",
        )
    model = load_model(entry) if entry else DefaultEnsemble(with_svc=len(y) <= MAX_SVC_SAMPLES)
    flagged = np.zeros(len(y), dtype=bool)
    rounds: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the folds' models
        for _ in range(int(spec.options["rounds"])):
            keep = None if not flagged.any() else ~flagged
            probabilities = out_of_fold(model, x, y, folds=folds, keep=keep, classes=len(names))
            found = find_label_issues(y, probabilities)
            rounds.append(int((found & ~flagged).sum()))
            if not (found & ~flagged).any():
                break
            flagged |= found
    margin = probabilities.max(axis=1) - probabilities[np.arange(len(y)), y]
    confident = (probabilities.argmax(axis=1) != y) & (margin >= float(spec.options["margin"]))
    mispredicted = int((confident & ~flagged).sum())
    flagged |= confident
    indices = labelled[flagged].tolist()
    detectors = [
        detector("cleanlab.filter.find_label_issues", "cleanlab"),
        detector("sklearn out-of-fold (StratifiedKFold)", "scikit-learn"),
        {"name": f"model {entry}" if entry else DEFAULT_MODEL, "version": _model_version(entry)},
    ]
    return CheckResult(
        spec,
        len(indices) / max(len(samples), 1),
        indices,
        f"{len(indices)} of {len(y)} labelled samples have a likely wrong label",
        detectors,
        {
            "folds": folds,
            "newPerRound": rounds,
            "confidentlyMispredicted": mispredicted,
            "classes": len(names),
        },
    )


def _model_version(entry: str | None) -> str:
    """For a user model, the SHA-256 of its module's source file, so the evidence pins it."""
    from provenance.screen.result import detector as version_of

    if entry is None:
        return version_of("x", "scikit-learn")["version"]
    import hashlib

    module = sys.modules.get(entry.partition(":")[0])
    source = getattr(module, "__file__", None)
    if source is None:
        return "unknown"
    return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()

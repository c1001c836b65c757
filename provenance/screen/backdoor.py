"""Backdoor signatures in a small model's penultimate layer (torch, CPU, imported lazily).

A small network is trained on the data -- a two-layer CNN when samples are 2-D arrays of at
least 4x4, else an MLP on standardised features -- and each class's penultimate-layer
activations are examined with two published detectors:

* **activation clustering** (Chen et al., 2018): the activations, reduced to 10 dimensions by
  PCA, are split into two clusters by k-means; a class is judged poisoned when the smaller
  cluster holds at most ``size`` of the class and the split is clear (silhouette at least
  ``silhouette``). Its samples are flagged.
* **spectral signatures** (Tran, Li and Madry, 2018): each sample's score is its squared
  projection on the top singular vector of the class's centred activations; poisoned samples
  score high. The paper removes the top 1.5 x epsilon scores for a known poison bound epsilon;
  no rate is known here, so the scores are recorded (for the flagged samples, with their
  agreement with the clustering) rather than thresholded.

Neither detector is told a trigger, a target class or a rate. Their known limit applies: a
backdoor whose poisoned samples are not the minority of their target class (10% of a
ten-class training set relabelled to one class is about half of that class) is not split
off as "the smaller cluster"; ``bench/poisoning.py`` measures this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provenance.errors import InputError
from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SIZE = 0.35
SILHOUETTE = 0.10
BATCH = 64


def _network(shape: tuple[int, ...], width: int, classes: int) -> Any:
    import torch

    nn = torch.nn
    if len(shape) == 2 and min(shape) >= 4:
        pooled = (shape[0] // 2) * (shape[1] // 2) * 32
        features = nn.Sequential(
            nn.Unflatten(1, (1, *shape)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(pooled, 64),
            nn.ReLU(),
        )
    else:
        features = nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
    return nn.ModuleDict({"features": features, "head": nn.Linear(64, classes)})


def train_model(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    *,
    shape: tuple[int, ...],
    classes: int,
    epochs: int,
    seed: int = 0,
) -> Any:
    """The small network trained on standardised ``x`` (deterministic for a seed)."""
    import torch

    torch.manual_seed(seed)
    model = _network(shape, x.shape[1], classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = torch.tensor(x, dtype=torch.float32)
    targets = torch.tensor(y)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), BATCH):
            batch = order[start : start + BATCH]
            optimiser.zero_grad()
            logits = model["head"](model["features"](inputs[batch]))
            loss = torch.nn.functional.cross_entropy(logits, targets[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
    return model


def _standardise(x: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> Any:
    import numpy as np

    scale = np.abs(reference).max()
    return x / scale if scale > 0 else x


def activations(model: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Penultimate-layer activations of ``x``."""
    import numpy as np
    import torch

    with torch.no_grad():
        out = model["features"](torch.tensor(x, dtype=torch.float32)).numpy()
    return np.asarray(out, dtype=np.float64)


def predictions(model: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The model's predicted class indices for ``x``."""
    import numpy as np
    import torch

    with torch.no_grad():
        logits = model["head"](model["features"](torch.tensor(x, dtype=torch.float32)))
    return np.asarray(logits.argmax(dim=1).numpy(), dtype=np.int64)


def accuracy_and_asr(
    train_images: Any,
    train_labels: Any,
    *,
    test_images: Any,
    test_labels: Any,
    triggered: Any,
    target: int,
    seed: int = 0,
    epochs: int = 30,
) -> tuple[float, float]:
    """Clean accuracy on the test set and attack success rate (triggered non-target test
    images classified as ``target``) of the small network trained on the given data."""
    import numpy as np

    flat = train_images.reshape(len(train_images), -1).astype(np.float64)
    model = train_model(
        _standardise(flat, flat),
        np.asarray(train_labels, dtype=np.int64),
        shape=tuple(train_images.shape[1:]),
        classes=10,
        epochs=epochs,
        seed=seed,
    )
    test = _standardise(test_images.reshape(len(test_images), -1).astype(np.float64), flat)
    accuracy = float((predictions(model, test) == test_labels).mean())
    other = test_labels != target
    poisoned = _standardise(triggered.reshape(len(triggered), -1).astype(np.float64), flat)
    asr = float((predictions(model, poisoned[other]) == target).mean())
    return accuracy, asr


def check_backdoor(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Activation clustering and spectral signatures per class (see the module docstring)."""
    try:
        import torch
    except ImportError as e:  # the engine skips the check first; this is for direct callers
        raise InputError("backdoor detection needs torch", hint="install the torch extra") from e
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    labelled = np.nonzero(samples.labelled())[0]
    assert samples.labels is not None
    given = [str(v) for v in samples.labels[labelled]]
    names = sorted(set(given))
    y = np.array([names.index(v) for v in given], dtype=np.int64)
    raw = samples.model_matrix()[labelled]
    x = _standardise(raw, raw) if samples.format != "table" else _zscore(raw)
    shape = samples.sample_shape if samples.format != "table" else (raw.shape[1],)
    model = train_model(
        x, y, shape=shape or (raw.shape[1],), classes=len(names), epochs=int(spec.options["epochs"])
    )
    acts = activations(model, x)
    flagged: list[int] = []
    classes: dict[str, Any] = {}
    scores: dict[int, float] = {}
    for c, name in enumerate(names):
        members = np.nonzero(y == c)[0]
        if len(members) < 10:
            continue
        centred = acts[members] - acts[members].mean(axis=0)
        if not np.any(centred):
            continue
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        spectral = (centred @ vt[0]) ** 2
        reduced = PCA(min(10, centred.shape[1], len(members) - 1), random_state=0).fit_transform(
            centred
        )
        clusters = KMeans(2, n_init=10, random_state=0).fit_predict(reduced)
        if len(set(clusters)) < 2:
            continue
        small = int(np.argmin(np.bincount(clusters)))
        size = float((clusters == small).mean())
        silhouette = float(silhouette_score(reduced, clusters))
        in_small = clusters == small
        top = np.argsort(-spectral)[: int(in_small.sum())]
        agreement = float(in_small[top].mean())
        poisoned = size <= SIZE and silhouette >= SILHOUETTE
        classes[name] = {
            "smallCluster": round(size, 4),
            "silhouette": round(silhouette, 4),
            "spectralAgreement": round(agreement, 4),
            "poisoned": poisoned,
        }
        if poisoned:
            for i in members[in_small]:
                flagged.append(int(labelled[i]))
                scores[int(labelled[i])] = round(float(spectral[list(members).index(i)]), 6)
    suspicious = [k for k, v in classes.items() if v["poisoned"]]
    listed = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:100])
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} samples in {len(suspicious)} class(es) with a backdoor signature"
        + (f" ({', '.join(suspicious)})" if suspicious else ""),
        [
            detector("activation clustering (Chen et al. 2018)", "scikit-learn"),
            detector("spectral signatures (Tran et al. 2018)", "numpy"),
            detector("penultimate layer of a small network", "torch"),
        ],
        {"classes": classes, "spectralScores": {str(k): v for k, v in listed.items()}},
    )


def _zscore(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    spread = x.std(axis=0)
    spread[spread == 0] = 1.0
    result: npt.NDArray[np.float64] = (x - x.mean(axis=0)) / spread
    return result

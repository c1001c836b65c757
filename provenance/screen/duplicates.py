"""Exact duplicates, near-duplicates and label conflicts.

Exact: two samples with the same content key (every feature value, see
:mod:`.samples`) and the same label; all copies after the first are flagged, so a sanitised
copy keeps one. Conflicts: the same content key with different labels; every member of such
a group is flagged, since nothing says which label is right. Near: a sample within
``distance`` of an earlier one (the root-mean-square difference of standardised features, so
the threshold does not grow with the number of features) that is not an exact copy of it;
the later sample of each pair is flagged.
"""

from __future__ import annotations

from collections import defaultdict

from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec


def check_duplicates(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Extra copies of a sample with the same features and label."""
    first: dict[tuple[bytes, object], int] = {}
    flagged: list[int] = []
    groups: set[tuple[bytes, object]] = set()
    labels = samples.labels
    for i, key in enumerate(samples.keys):
        group = (key, labels[i] if labels is not None else None)
        if group in first:
            flagged.append(i)
            groups.add(group)
        else:
            first[group] = i
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} extra copies in {len(groups)} group(s) of identical samples",
        [detector("ml-provenance exact-content-hash")],
        {"groups": len(groups)},
    )


def check_label_conflicts(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Samples whose exact features also occur with a different label."""
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for i, key in enumerate(samples.keys):
        by_key[key].append(i)
    labels = samples.labels
    flagged: list[int] = []
    groups = 0
    if labels is not None:
        for members in by_key.values():
            if len({labels[i] for i in members if labels[i] is not None}) > 1:
                groups += 1
                flagged += members
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} samples in {groups} group(s) of identical features with different labels",
        [detector("ml-provenance exact-content-hash")],
        {"groups": groups},
    )


def check_near_duplicates(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Samples within ``distance`` (RMS of standardised features) of an earlier sample."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    matrix = samples.model_matrix()
    spread = matrix.std(axis=0)
    keep = spread > 0
    flagged: list[int] = []
    pairs = 0
    conflicting = 0
    distance = float(spec.options["distance"])
    if keep.any() and len(samples) > 1:
        scaled = (matrix[:, keep] - matrix[:, keep].mean(axis=0)) / spread[keep]
        radius = distance * np.sqrt(scaled.shape[1])
        index = NearestNeighbors(radius=radius).fit(scaled)
        neighbours = index.radius_neighbors(scaled, return_distance=False)
        labels = samples.labels
        for i, found in enumerate(neighbours):
            earlier = [j for j in found if j < i and samples.keys[j] != samples.keys[i]]
            if earlier:
                flagged.append(i)
                pairs += len(earlier)
                if labels is not None and any(labels[j] != labels[i] for j in earlier):
                    conflicting += 1
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        f"{len(flagged)} samples within {distance:g} (RMS, standardised) of an earlier one",
        [detector("sklearn.neighbors.NearestNeighbors", "scikit-learn")],
        {"pairs": pairs, "withOtherLabel": conflicting},
    )

"""Patch triggers: one fixed pixel pattern that pulls samples of several kinds to one label.

A BadNets-style backdoor stamps the same small pattern at the same place on samples of many
classes and relabels them all to one target. That leaves a signature in the data itself that
needs no model: an exact, non-background window pattern shared by at least ``min_count``
samples, carried (almost) only by samples of one label -- while the rest of those samples,
with the window masked out, looks like *other* classes (judged by the nearest class centroid
of the masked images). Natural repeats (a stroke every "1" shares) fail the last test, since
the rest of a "1" looks like a "1". Every window position and the sizes in ``windows`` are
scanned, so neither the trigger's place, its pattern, the target class nor the poison rate
is assumed. Only samples that are 2-D arrays (images) are examined.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

PURITY = 0.9  # share of a pattern's carriers with one label
ELSEWHERE = 0.5  # share of those whose masked image is nearest another class's centroid


def applicable(samples: Samples) -> str | None:
    """Why the check cannot run on ``samples``, or None."""
    if samples.sample_shape is None or len(samples.sample_shape) != 2:
        return "the samples are not 2-D arrays (images)"
    return None


@dataclass(frozen=True)
class Pattern:
    """A window pattern found to act as a trigger: where it is, what it is, its label, and
    the indices (into the images searched) of the samples that carry it with that label."""

    top: int
    left: int
    size: int
    values: Any  # the (size, size) array of pixel values
    label: str
    carriers: tuple[int, ...]
    elsewhere: float  # share of the carriers whose masked image looks like another class

    def stamp(self, images: Any) -> Any:
        """A copy of ``images`` (n, height, width) with this pattern written in its window."""
        stamped = images.copy()
        stamped[:, self.top : self.top + self.size, self.left : self.left + self.size] = self.values
        return stamped

    def figures(self) -> dict[str, Any]:
        """How the pattern is described in screening figures."""
        return {
            "window": [self.top, self.left, self.size],
            "label": self.label,
            "carriers": len(self.carriers),
            "lookElsewhere": round(self.elsewhere, 4),
        }


def find_patterns(
    images: Any, labels: Any, *, windows: Iterable[int], min_count: int
) -> list[Pattern]:
    """Every label-pure, class-foreign window pattern in ``images`` (n, height, width) with
    string ``labels`` (module docstring), in scanning order."""
    import numpy as np

    count, height, width = images.shape
    classes = sorted(set(labels))
    patterns: list[Pattern] = []
    for size in sorted(set(windows)):
        for top in range(height - size + 1):
            for left in range(width - size + 1):
                window = images[:, top : top + size, left : left + size].reshape(count, -1)
                carriers: dict[bytes, list[int]] = defaultdict(list)
                for i, row in enumerate(window):
                    if np.any(row) and not np.isnan(row).any():
                        carriers[row.tobytes()].append(i)
                mask = np.ones((height, width), dtype=bool)
                mask[top : top + size, left : left + size] = False
                centroids: Any = None
                for members in carriers.values():
                    if len(members) < min_count:
                        continue
                    values, counts = np.unique(labels[members], return_counts=True)
                    label = values[int(np.argmax(counts))]
                    if counts.max() / len(members) < PURITY:
                        continue
                    if centroids is None:
                        masked = images[:, mask]
                        centroids = np.stack([masked[labels == c].mean(axis=0) for c in classes])
                    own = [i for i in members if labels[i] == label]
                    distances = ((images[own][:, mask][:, None, :] - centroids[None]) ** 2).sum(-1)
                    nearest = np.array(classes, dtype=object)[distances.argmin(axis=1)]
                    elsewhere = float(np.mean(nearest != label))
                    if elsewhere < ELSEWHERE:
                        continue
                    patterns.append(
                        Pattern(
                            top,
                            left,
                            size,
                            window[own[0]].reshape(size, size).copy(),
                            str(label),
                            tuple(own),
                            elsewhere,
                        )
                    )
    return patterns


def check_trigger_patterns(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Flag the carriers of label-pure, class-foreign window patterns (module docstring)."""
    import numpy as np

    assert samples.labels is not None and samples.sample_shape is not None
    labelled = np.nonzero(samples.labelled())[0]
    height, width = samples.sample_shape
    images = samples.numeric[labelled].reshape(len(labelled), height, width)
    labels = np.array([str(v) for v in samples.labels[labelled]], dtype=object)
    patterns = find_patterns(
        images,
        labels,
        windows=(int(s) for s in spec.options["windows"]),
        min_count=int(spec.options["min_count"]),
    )
    flagged = {int(labelled[i]) for p in patterns for i in p.carriers}
    targets = sorted({p.label for p in patterns})
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        sorted(flagged),
        f"{len(flagged)} samples carry a window pattern that maps to one label although the "
        f"rest of them looks like other classes"
        + (f" (label(s) {', '.join(targets)})" if targets else ""),
        [detector("label-pure, class-foreign window patterns (BadNets signature)")],
        {"patterns": [p.figures() for p in patterns[:100]]},
    )

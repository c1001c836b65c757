"""The loaded dataset every check works on: one row per sample, in a fixed order.

Sample *i* is the same sample in every check, in the figures and in the sanitised copy: files
are taken in manifest order (sorted by path) and, inside a table or array file, rows in
order. That order is what the flagged indices in a screening attestation refer to.

Features are kept as a float matrix (numeric columns, or the flattened arrays) with NaN for a
missing or unreadable value, plus category columns as strings; each sample also has a
content key (SHA-256 of its feature values, label excluded) so that exact duplicates and
label conflicts are found by equality, not by distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Violation:
    """A schema violation: of one sample (``index``), or of the dataset as a whole (None)."""

    index: int | None
    message: str


@dataclass
class Samples:
    """See the module docstring."""

    format: str
    ids: list[str]  # per sample: "path" (one file per sample) or "path#row"
    files: list[str]  # per sample: the manifest path of the file it came from
    rows: list[int]  # per sample: its row in that file (-1 when the file is the sample)
    numeric: npt.NDArray[np.float64]  # (n, d) with NaN for missing values
    numeric_names: list[str]
    categorical: dict[str, npt.NDArray[np.object_]]  # name -> (n,) of str or None
    labels: npt.NDArray[np.object_] | None  # (n,) of str, or None for unlabelled data
    keys: list[bytes]  # content key of the features (label excluded)
    violations: list[Violation] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files of the dataset not read
    sample_shape: tuple[int, ...] | None = None  # arrays: the shape of one sample

    def __len__(self) -> int:
        return len(self.ids)

    def model_matrix(self) -> npt.NDArray[np.float64]:
        """Features for a model: numeric columns with NaN imputed by the column median, and
        one column per category of each category column (one-hot)."""
        import numpy as np

        parts = []
        if self.numeric.shape[1]:
            numeric = self.numeric.copy()
            missing = np.isnan(numeric)
            if missing.any():
                empty = missing.all(axis=0)  # a column with no value at all imputes 0
                filled = np.where(empty[None, :], 0.0, numeric)
                medians = np.nanmedian(filled, axis=0)
                numeric[missing] = medians[np.nonzero(missing)[1]]
            parts.append(numeric)
        for values in self.categorical.values():
            categories = sorted({v for v in values if v is not None})
            parts.append(
                np.array([[v == c for c in categories] for v in values], dtype=np.float64).reshape(
                    len(values), len(categories)
                )
            )
        if not parts:
            return np.zeros((len(self), 0))
        return np.hstack(parts)

    def labelled(self) -> npt.NDArray[np.bool_]:
        """Which samples have a label."""
        import numpy as np

        if self.labels is None:
            return np.zeros(len(self), dtype=bool)
        return np.array([v is not None for v in self.labels], dtype=bool)

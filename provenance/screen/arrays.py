"""Reading array datasets into :class:`~provenance.screen.samples.Samples`.

Two layouts. ``arrays``: ``.npy`` files whose first axis is the sample (features only) and
``.npz`` files holding a features array and, optionally, a labels array of the same length
(names from the schema's ``npz``). ``folders``: one sample file per sample under
``<label>/`` or ``<split>/<label>/`` (an image-folder dataset); the label is the folder name.
A sample file is a ``.npy`` array or an image (``.png``, ``.jpg``/``.jpeg``, ``.bmp``,
``.gif``, ``.tif``/``.tiff``, ``.webp``, in any case), decoded by
:func:`provenance.imagefile.decode_image` into ``(H, W)`` or ``(H, W, 3)`` arrays as stored
(uint8 for 8-bit images; see that module for every mode). One dataset's samples are all
``.npy`` or all images (any mix of image formats): a mix is refused, since ``.npy`` samples are
whatever their writer chose and images are decoded by rule, and nothing says the two agree.
Other files (a README) are listed as ignored.

Arrays are loaded with ``allow_pickle=False`` and images decoded with Pillow, both from bytes a
hash-on-read handle returned, so neither unverified bytes nor pickled objects are ever read.
A file that cannot be read (a truncated image, a PNG that is not one, a decompression bomb)
stops the screening with an input error naming it. A sample of the wrong shape or dtype, out
of the declared range, or with NaN where none are allowed is a violation; its features read
as missing.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError
from provenance.imagefile import decode_image, is_image, mixed_kinds
from provenance.screen.samples import Samples, Violation

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from provenance.guard.dataset import VerifiedDataset
    from provenance.screen.schema import Schema


# What np.load raises on malformed bytes: its header is parsed with ast.literal_eval
# (SyntaxError, TypeError, tokenize errors), sizes can overflow, and .npz members are
# compressed (zlib, lzma) zip entries. All are the file's fault, never the caller's.
_NUMPY_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    tokenize.TokenError,
    SyntaxError,
    TypeError,
    OverflowError,
    MemoryError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


def load_array(data: bytes, what: str) -> Any:
    """An ndarray (``.npy``) or a dict of them (``.npz``), never unpickling anything."""
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a Python 2 header, a deprecated dtype alias
            loaded = np.load(io.BytesIO(data), allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    arrays = {name: loaded[name] for name in loaded.files}
                if not all(isinstance(a, np.ndarray) for a in arrays.values()):
                    raise InputError(f"{what}: an .npz member that is not a NumPy array")
                return arrays
    except _NUMPY_ERRORS as e:
        raise InputError(f"{what}: not a readable NumPy file without pickles ({e})") from e
    return loaded


def _as_float64(array: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """``array`` as float64, quietly: a signalling NaN reads as NaN (a NaN violation unless the
    schema allows them), a value beyond float64's range as infinity (out of any declared range)."""
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(np.float64)


def _sample_problems(array: npt.NDArray[Any], schema: Schema) -> list[str]:
    import numpy as np

    spec = schema.array
    problems: list[str] = []
    if spec is None:
        return problems
    if spec.shape is not None and tuple(array.shape) != spec.shape:
        problems.append(f"shape {tuple(array.shape)} is not {spec.shape}")
        return problems
    if spec.dtypes is not None and array.dtype.name not in spec.dtypes:
        problems.append(f"dtype {array.dtype.name} is not {'/'.join(spec.dtypes)}")
    if array.dtype.kind not in "biuf":  # complex would lose its imaginary part
        problems.append(f"dtype {array.dtype.name} is not numeric")
        return problems
    values = _as_float64(array)
    nan = np.isnan(values)
    if nan.any() and not spec.nulls:
        problems.append("holds NaN")
    finite = values[~nan]
    if finite.size:
        if spec.min is not None and finite.min() < spec.min:
            problems.append(f"value {finite.min():g} is below min {spec.min:g}")
        if spec.max is not None and finite.max() > spec.max:
            problems.append(f"value {finite.max():g} is above max {spec.max:g}")
    return problems


def _key(array: npt.NDArray[Any]) -> bytes:
    header = f"{array.dtype.str}{tuple(array.shape)}".encode()
    return hashlib.sha256(header + b"\0" + array.tobytes(order="C")).digest()


def _is_sample_file(path: str) -> bool:
    return path.endswith(".npy") or is_image(path)


def _folder_layout(handle: VerifiedDataset, schema: Schema) -> tuple[list[str], list[str], int]:
    """(sample files, ignored files, depth) of an image-folder dataset."""
    candidates = [p for p in handle.files if _is_sample_file(p)]
    ignored = [p for p in handle.files if not _is_sample_file(p)]
    if schema.splits is not None:
        chosen = [p for p in candidates if p.count("/") == 2 and p.split("/")[0] in schema.splits]
        ignored += [p for p in candidates if p not in set(chosen)]
        _one_kind(handle, chosen)
        return chosen, sorted(ignored), 2
    depths = {p.count("/") for p in candidates}
    if len(depths) > 1 or (depths and depths.pop() not in (1, 2)):
        raise InputError(
            f"{handle.root}: sample files (.npy or images) must all be at <label>/<file> or "
            "all at <split>/<label>/<file>",
            hint="name the splits to screen with 'splits:' in the schema",
        )
    _one_kind(handle, candidates)
    return candidates, ignored, candidates[0].count("/") if candidates else 1


def _one_kind(handle: VerifiedDataset, chosen: list[str]) -> None:
    """Refuse a mix of ``.npy`` and image samples (see the module docstring)."""
    mixed = mixed_kinds(chosen)
    if mixed is not None:
        raise InputError(
            f"{handle.root}: mixes .npy samples ({mixed[1]}, ...) with image samples "
            f"({mixed[0]}, ...)",
            hint="convert the samples to one kind; a dataset's samples are all .npy or all images",
        )


@dataclass
class _Read:
    """What the readers collect, one entry per sample."""

    ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    arrays: list[npt.NDArray[Any] | None] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    has_labels: bool = True

    def add(self, sample_id: str, path: str, row: int, array: Any, label: str | None) -> None:
        self.ids.append(sample_id)
        self.files.append(path)
        self.rows.append(row)
        self.arrays.append(array)
        self.labels.append(label)
        self.keys.append(
            _key(array) if array is not None else hashlib.sha256(path.encode()).digest()
        )


def _read_folders(handle: VerifiedDataset, schema: Schema, read: _Read) -> None:
    chosen, read.ignored, depth = _folder_layout(handle, schema)
    for path in chosen:
        what = f"{path} ({handle.digest})"
        loaded: Any
        if is_image(path):
            loaded = decode_image(handle.read_bytes(path), path, what=what, extra="screen")
        else:
            loaded = load_array(handle.read_bytes(path), what)
        if isinstance(loaded, dict):
            read.violations.append(
                Violation(len(read.ids), "a .npz file where one array was expected")
            )
            loaded = None
        read.add(path, path, -1, loaded, path.split("/")[depth - 1])


def _read_array_files(handle: VerifiedDataset, schema: Schema, read: _Read) -> None:
    chosen = [p for p in handle.files if p.endswith((".npy", ".npz"))]
    read.ignored = [p for p in handle.files if p not in set(chosen)]
    for path in chosen:
        loaded = load_array(handle.read_bytes(path), f"{path} ({handle.digest})")
        if isinstance(loaded, dict):
            if schema.npz_features not in loaded:
                raise InputError(f"{path}: no array named {schema.npz_features!r}")
            features = loaded[schema.npz_features]
            file_labels = loaded.get(schema.npz_labels) if schema.npz_labels else None
        else:
            features, file_labels = loaded, None
        if features.ndim < 1:
            raise InputError(f"{path}: a 0-dimensional array holds no samples")
        if file_labels is not None and file_labels.shape != (len(features),):
            problem = f"{path}: {len(features)} samples but labels of shape {file_labels.shape}"
            read.violations.append(Violation(None, problem))
            file_labels = None
        read.has_labels = read.has_labels and file_labels is not None
        for row in range(len(features)):
            label = None if file_labels is None else str(file_labels[row].item())
            read.add(f"{path}#{row}", path, row, features[row], label)


def _matrix(read: _Read, schema: Schema) -> tuple[npt.NDArray[np.float64], tuple[int, ...]]:
    """The flattened sample arrays (NaN rows for unusable samples) and the sample shape;
    records each sample's violations."""
    import numpy as np

    declared = schema.array.shape if schema.array is not None else None
    shape = declared or next((a.shape for a in read.arrays if a is not None), (0,))
    width = int(np.prod(shape)) if shape else 1
    matrix = np.full((len(read.ids), width), np.nan)
    for index, array in enumerate(read.arrays):
        if array is None:
            continue
        problems = _sample_problems(array, schema)
        if tuple(array.shape) != tuple(shape) and not any("shape" in p for p in problems):
            problems.append(f"shape {tuple(array.shape)} differs from {tuple(shape)}")
        read.violations.extend(Violation(index, p) for p in problems)
        if tuple(array.shape) == tuple(shape) and array.dtype.kind in "biuf":
            matrix[index] = _as_float64(array).reshape(-1)
    return matrix, tuple(int(s) for s in shape)


def load_arrays(handle: VerifiedDataset, schema: Schema) -> Samples:
    """The samples of an ``arrays`` or ``folders`` dataset, in manifest order."""
    import numpy as np

    read = _Read()
    if schema.format == "folders":
        _read_folders(handle, schema, read)
    else:
        _read_array_files(handle, schema, read)
    if not read.ids:
        raise InputError(
            f"{handle.root}: no samples to screen", hint="check 'format' and the layout"
        )
    matrix, shape = _matrix(read, schema)
    label_array: npt.NDArray[np.object_] | None = None
    if read.has_labels:
        label_array = np.array(read.labels, dtype=object)
        if schema.labels is not None:
            allowed = set(schema.labels)
            read.violations.extend(
                Violation(i, f"label {v!r} is not in the declared labels")
                for i, v in enumerate(read.labels)
                if v is not None and v not in allowed
            )
    elif schema.labels is not None:
        read.violations.append(Violation(None, "the schema declares labels but the data has none"))
    return Samples(
        format=schema.format,
        ids=read.ids,
        files=read.files,
        rows=read.rows,
        numeric=matrix,
        numeric_names=[f"x{i}" for i in range(matrix.shape[1])],
        categorical={},
        labels=label_array,
        keys=read.keys,
        violations=read.violations,
        ignored=read.ignored,
        sample_shape=shape,
    )

"""The evaluation set: an attested dataset directory, read file by file through hash-on-read.

Layout, image-folder style: ``<label>/<file>`` under the dataset's root or under a sub-path of
it (``--split test`` for a dataset holding ``train/`` and ``test/``). Files at any other depth
(a README beside the class folders) are not samples and are not read.

The dataset must be attested. Given a policy its chain is verified under it
(:func:`provenance.guard.dataset.verified_dataset`); without one, a dataset attestation must at
least name its root digest in the ledger -- an evaluation of an unpinned set vouches for
nothing. Either way every sample is read through the verified listing, so a file changed after
the check is refused when it is read instead of being evaluated.

Samples are decoded by the model loader's ``decode(data, relpath)`` (``relpath`` relative to
the dataset root, as :class:`provenance.torch.VerifiedFiles` passes it) or, by default, by
:class:`DefaultDecoder`:

* an image file (``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.gif``, ``.tif``/``.tiff``,
  ``.webp``, in any case) is decoded by :func:`provenance.imagefile.decode_image` -- the same
  array ``provenance screen`` sees, under the same refusals (wrong content for the extension,
  damaged data, decompression bombs) -- and becomes the tensor torchvision's ``ToTensor``
  makes of it: float32, channels first (``(1, H, W)`` for grey, ``(3, H, W)`` for colour:
  the ``(N, C, H, W)`` batches the backdoor probe and torch's convolutions expect), 8-bit
  values scaled to [0, 1], deeper ones (16-bit, 32-bit, float) as they are;
* any other file is a NumPy ``.npy`` array (``allow_pickle=False``) cast to float32, unscaled
  and in the layout it was saved in.

For the default decoder an evaluation set's samples are all images or all ``.npy``: a mix is
refused before anything is evaluated, since the two are decoded by different rules. Nothing is
resized, so a sample whose shape differs from the first one's is refused too (in one line,
rather than as a failure to batch). The default label of a class folder is its name as an
integer when every folder name is a decimal integer, else its position among the sorted folder
names (torchvision's ``ImageFolder`` convention).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from provenance.errors import Error, InputError, RefusedError, UsageError
from provenance.imagefile import decode_image, is_image, mixed_kinds
from provenance.screen.arrays import load_array

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    from provenance.guard.dataset import VerifiedDataset
    from provenance.ledger import Ledger
    from provenance.policy.model import Policy

Decode = Callable[[bytes, str], Any]


class UnattestedDatasetError(RefusedError):
    """The evaluation set's root digest is named by no dataset attestation."""


def normalise_split(text: str | None) -> str | None:
    """A sub-path of the dataset as a clean relative POSIX path (None for the root)."""
    if text is None or text.strip("/") == "":
        return None
    parts = text.strip("/").split("/")
    if "\\" in text or any(p in ("", ".", "..") for p in parts) or "\0" in text:
        raise UsageError(f"--split {text!r} is not a plain relative path inside the dataset")
    return str(PurePosixPath(*parts))


def samples(dataset: VerifiedDataset, split: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sample files (``[split/]<label>/<file>``) and the class folder names, sorted."""
    prefix = f"{split}/" if split else ""
    files: list[str] = []
    classes: set[str] = set()
    for path in dataset.files:
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        if len(parts) == 2:
            classes.add(parts[0])
            files.append(path)
    if not files:
        where = f"{split}/ in {dataset.root}" if split else str(dataset.root)
        raise InputError(
            f"no <label>/<file> samples under {where}",
            hint="lay the evaluation set out as one folder per class label"
            + ("" if split else ", or name the sub-directory holding them with --split"),
        )
    return tuple(files), tuple(sorted(classes))


def class_index(classes: tuple[str, ...]) -> dict[str, int]:
    """Folder name -> label (see the module docstring)."""
    if all(c.isdecimal() and c.isascii() for c in classes):
        return {c: int(c) for c in classes}
    return {c: i for i, c in enumerate(sorted(classes))}


class DefaultDecoder:
    """The default decoder (see the module docstring): an image or a ``.npy`` sample as a
    float32 tensor, its label from its folder."""

    def __init__(self, index: Mapping[str, int]) -> None:
        self.index = dict(index)
        self.first: tuple[str, tuple[int, ...]] | None = None  # a sample's path and shape

    @classmethod
    def for_files(cls, files: Sequence[str], classes: tuple[str, ...]) -> DefaultDecoder:
        """The decoder of the samples ``files``, refusing a mix of images and other files."""
        mixed = mixed_kinds(files)
        if mixed is not None:
            raise InputError(
                f"the evaluation set mixes image samples ({mixed[0]}, ...) with other files "
                f"({mixed[1]}, ...)",
                hint="the default decoder reads all images or all .npy arrays; convert them, "
                "or give --loader returning (model, decode)",
            )
        return cls(class_index(classes))

    def __call__(self, data: bytes, relpath: str) -> tuple[torch.Tensor, int]:
        label = self.index[relpath.split("/")[-2]]
        tensor = self._decode(data, relpath)
        shape = tuple(tensor.shape)
        if self.first is None:
            self.first = (relpath, shape)
        elif shape != self.first[1]:
            # caught here, in one line, rather than by the DataLoader's batching
            raise InputError(
                f"{relpath} decodes to shape {shape}, {self.first[0]} to {self.first[1]}: "
                "the default decoder does not resize",
                hint="give the evaluation set one sample size, or give --loader returning "
                "(model, decode) that resizes",
            )
        return tensor, label

    def _decode(self, data: bytes, relpath: str) -> torch.Tensor:
        if is_image(relpath):
            return image_tensor(decode_image(data, relpath, extra="torch"))
        import numpy
        import torch

        array = load_array(data, relpath)
        if not isinstance(array, numpy.ndarray):
            raise InputError(
                f"{relpath} is not a NumPy .npy array",
                hint="give --loader returning (model, decode) to decode other formats",
            )
        if array.dtype.kind not in "biuf":
            raise InputError(f"{relpath} does not hold a numeric array")
        with numpy.errstate(over="raise"):
            try:
                cast = array.astype(numpy.float32)
            except FloatingPointError as e:
                raise InputError(f"{relpath} holds values beyond float32's range") from e
        return torch.from_numpy(cast)


def image_tensor(array: npt.NDArray[Any]) -> torch.Tensor:
    """A decoded image (``(H, W)`` or ``(H, W, C)``) as torchvision's ``ToTensor`` makes it:
    float32, ``(C, H, W)``, uint8 values divided by 255, other dtypes unscaled."""
    import numpy
    import torch

    if array.ndim == 2:
        array = array[numpy.newaxis]
    elif array.ndim == 3:
        array = array.transpose(2, 0, 1)
    else:
        raise InputError(f"an image array of shape {array.shape} is not (H, W) or (H, W, C)")
    scaled = array.astype(numpy.float32)
    if array.dtype == numpy.uint8:
        scaled /= 255.0
    return torch.from_numpy(numpy.ascontiguousarray(scaled))


class CheckedDecoder:
    """A loader's decoder whose failures become one-line input errors naming the sample."""

    def __init__(self, decode: Decode) -> None:
        self.decode = decode

    def __call__(self, data: bytes, relpath: str) -> tuple[Any, int]:
        import torch

        try:
            result = self.decode(data, relpath)
        except Error:
            raise
        except Exception as e:  # the loader's own code: any failure is bad input
            raise InputError(f"decoding {relpath} failed: {type(e).__name__}: {e}") from e
        if (
            not isinstance(result, tuple)
            or len(result) != 2
            or not isinstance(result[0], torch.Tensor)
            or not isinstance(result[1], int)
            or isinstance(result[1], bool)
        ):
            raise InputError(f"decode({relpath!r}) must return (tensor, int label)")
        return result


def open_eval_set(path: Path, *, policy: Policy | None, ledger: Ledger) -> VerifiedDataset:
    """The verified, hash-on-read handle of the evaluation set (see the module docstring)."""
    from provenance.digest.build import build_manifest
    from provenance.guard.dataset import VerifiedDataset, verified_dataset
    from provenance.predicates.dataset import DATASET_PREDICATE

    if not path.is_dir():
        raise InputError(f"--data {path} is not a directory", hint="give the dataset's directory")
    if policy is not None:
        return verified_dataset(path, policy)
    manifest = build_manifest(path)
    if not ledger.find(subject=manifest.root_digest, predicate_type=DATASET_PREDICATE):
        raise UnattestedDatasetError(
            f"refusing to evaluate on {path}: no dataset attestation names its digest "
            f"{manifest.root_digest}, so the evaluation set is not pinned",
            hint=f"attest it first (provenance dataset add {path} --name NAME), or restore the "
            "attested files",
        )
    return VerifiedDataset.from_manifest(path, manifest)


def dataset_name(ledger: Ledger, dataset: VerifiedDataset) -> str | None:
    """The name the newest dataset attestation in the ledger gives the set (for people only)."""
    from provenance.predicates.dataset import DATASET_PREDICATE

    for entry in reversed(ledger.find(subject=dataset.digest, predicate_type=DATASET_PREDICATE)):
        try:
            name = entry.parsed().statement.predicate.get("name")
        except Error:
            continue
        if isinstance(name, str) and name:
            return name
    return None


__all__ = [
    "CheckedDecoder",
    "DefaultDecoder",
    "UnattestedDatasetError",
    "class_index",
    "dataset_name",
    "image_tensor",
    "normalise_split",
    "open_eval_set",
    "samples",
]

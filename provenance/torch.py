"""Verified loading for torch: checkpoints (``load``) and hash-on-read datasets (``VerifiedFiles``).

``load`` is a drop-in for ``torch.load`` in training and serving code: it loads a checkpoint
only if its chain verifies and it scans clean::

    import provenance.torch
    state = provenance.torch.load("model.pt", policy=".provenance/policy.yaml")

``verified_dataset`` and ``VerifiedFiles`` feed a ``DataLoader`` only the verified bytes of a
verified dataset, each file re-hashed as it is read (:mod:`provenance.guard.dataset`)::

    data = provenance.torch.verified_dataset("data/", ".provenance/policy.yaml")
    loader = DataLoader(VerifiedFiles(data, pattern="*.png", decode=to_tensor), num_workers=4)

Attestations come from the project's ledger (found from the working directory, like git) or
from ``bundle``, a file ``provenance ledger export`` wrote. Needs the ``torch`` extra: this
is the module that imports torch (the rest of the package, the CLI included, never does).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar, overload

from torch.utils.data import Dataset

from provenance.guard.checkpoint import LoadRefusedError, load_verified
from provenance.guard.dataset import (
    DatasetRefusedError,
    ReadRefusedError,
    VerifiedDataset,
    verified_dataset,
)
from provenance.policy.model import Policy

__all__ = [
    "DatasetRefusedError",
    "LoadRefusedError",
    "ReadRefusedError",
    "VerifiedDataset",
    "VerifiedFiles",
    "load",
    "verified_dataset",
]

T = TypeVar("T")


def load(
    path: str | Path,
    *,
    policy: str | Path | Policy,
    bundle: str | Path | None = None,
    map_location: str = "cpu",
    at: dt.datetime | None = None,
    offline: bool = True,
) -> Any:
    """Verify ``path``'s chain under ``policy``, scan it, then load it with weights_only.

    Raises :class:`LoadRefusedError` (a :class:`provenance.errors.RefusedError`) on any
    failure, before anything from the file is executed or returned.
    """
    from provenance.policy.load import load_policy
    from provenance.verify.evidence import BundleFileEvidence, LedgerEvidence

    loaded = policy if isinstance(policy, Policy) else load_policy(Path(policy))
    if bundle is not None:
        return load_verified(
            Path(path),
            policy=loaded,
            evidence=BundleFileEvidence(Path(bundle)),
            map_location=map_location,
            at=at,
            offline=offline,
        )
    from provenance.ledger import Ledger
    from provenance.project import require_project

    with Ledger(require_project().ledger_path) as ledger:
        return load_verified(
            Path(path),
            policy=loaded,
            evidence=LedgerEvidence(ledger),
            map_location=map_location,
            at=at,
            offline=offline,
        )


def _as_bytes(data: bytes, relpath: str) -> bytes:
    """The default decoder: the verified bytes themselves (module-level, so it pickles)."""
    return data


class VerifiedFiles(Dataset[T]):
    """A map-style torch dataset of the verified files of a :class:`VerifiedDataset`.

    Item ``i`` is ``decode(data, relpath)`` for the ``i``-th selected file, where ``data`` has
    just been read and checked against the verified manifest (a file changed since verification
    raises :class:`ReadRefusedError`, in a ``DataLoader`` worker as in the main process).
    Files are every verified regular file, or ``files``, or those matching ``pattern`` (a
    ``fnmatch`` pattern over the ``/``-separated relative path, where ``*`` also matches ``/``),
    in sorted order.

    A ``torch.utils.data.Dataset`` (so typed code, ``Subset`` and ``ConcatDataset`` accept it).
    Pickling it for ``spawn`` workers sends only the handle's compact listing; ``decode`` must
    be picklable (a module-level function) when workers are spawned.
    """

    @overload
    def __init__(
        self: VerifiedFiles[bytes],
        dataset: VerifiedDataset,
        *,
        files: Iterable[str | PathLike[str]] | None = None,
        pattern: str | None = None,
        decode: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        dataset: VerifiedDataset,
        *,
        files: Iterable[str | PathLike[str]] | None = None,
        pattern: str | None = None,
        decode: Callable[[bytes, str], T],
    ) -> None: ...

    def __init__(
        self,
        dataset: VerifiedDataset,
        *,
        files: Iterable[str | PathLike[str]] | None = None,
        pattern: str | None = None,
        decode: Callable[[bytes, str], Any] | None = None,
    ) -> None:
        if files is None:
            selected = list(dataset.files)
        else:
            selected = sorted({Path(f).as_posix() if isinstance(f, PathLike) else f for f in files})
            for relpath in selected:
                if relpath not in dataset:
                    dataset.read_bytes(relpath)  # not a verified file: raises, naming it
        if pattern is not None:
            selected = [p for p in selected if fnmatch.fnmatchcase(p, pattern)]
        self.dataset = dataset
        self.files: tuple[str, ...] = tuple(selected)
        self.decode: Callable[[bytes, str], Any] = decode if decode is not None else _as_bytes

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> T:
        relpath = self.files[index]
        result: T = self.decode(self.dataset.read_bytes(relpath), relpath)
        return result

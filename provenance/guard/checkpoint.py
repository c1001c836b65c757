"""Loading a checkpoint only after its chain verifies and its bytes scan clean.

The order matters and so do the bytes: the file is read once into memory, and the digest the
chain is verified for, the static scan and the load all use those same bytes. A file swapped
on disk after the check is therefore never the file that is loaded.

Loading itself is ``torch.load(weights_only=True)`` for torch and pickle files, the safetensors
loader for safetensors, and ``numpy.load(allow_pickle=False)`` for ``.npy``: even a scanned
file is loaded by the most restrictive loader there is.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from provenance.digest.algorithms import Algorithm, Digest
from provenance.errors import InputError, RefusedError
from provenance.fsutil import read_limited
from provenance.guard.pickle_scan import scan_bytes
from provenance.policy.model import Policy
from provenance.verify.core import Report, verify

MAX_CHECKPOINT_BYTES = 64 << 30


class LoadRefusedError(RefusedError):
    """The checkpoint's chain does not verify, or its content is not safe to load."""


def failure_summary(report: Report) -> str:
    """The first failure of an untrusted report, and how many more: one line for an error."""
    failures = report.root.failures()
    first = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{first[0].digest}: {first[1].requirement}: {first[1].detail}{more}"


def load_verified(
    path: Path,
    *,
    policy: Policy,
    evidence: Any,
    map_location: str = "cpu",
    at: Any = None,
    offline: bool = True,
) -> Any:
    """Verify, scan and load the checkpoint at ``path``; raise :class:`LoadRefusedError`.

    ``evidence`` is where attestations come from (:mod:`provenance.verify.evidence`).
    """
    data = read_limited(path, MAX_CHECKPOINT_BYTES, what="checkpoint")
    digest = Digest.of_bytes(Algorithm.SHA256, data)
    report = verify(digest, evidence, policy, at=at, offline=offline)
    if not report.trusted:
        raise LoadRefusedError(
            f"refusing to load {path}: its chain does not verify: {failure_summary(report)}",
            hint="run 'provenance verify' on it for every failure",
        )
    scanned = scan_bytes(data, path=str(path))
    if not scanned.safe:
        raise LoadRefusedError(
            f"refusing to load {path}: {scanned.findings[0]}"
            + (f" (and {len(scanned.findings) - 1} more)" if len(scanned.findings) > 1 else ""),
            hint="run 'provenance scan' on it for every finding",
        )
    return _load(data, scanned.format, path, map_location)


def _load(data: bytes, kind: str, path: Path, map_location: str) -> Any:
    if kind in ("zip", "pickle"):
        import torch

        try:
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as e:  # torch's restricted unpickler raises several types
            raise LoadRefusedError(f"torch refused to load {path}: {e}") from e
    if kind == "safetensors":
        try:
            from safetensors.torch import load as load_safetensors
        except ImportError as e:
            raise InputError(
                f"{path} is a safetensors file", hint="install the 'safetensors' package"
            ) from e
        return load_safetensors(data)
    if kind == "npy":
        import numpy

        return numpy.load(io.BytesIO(data), allow_pickle=False)
    raise LoadRefusedError(f"refusing to load {path}: unsupported format {kind}")

"""Getting a torch model out of a checkpoint: verified and scanned first, then built.

A checkpoint is usually a ``state_dict``, which needs the architecture it belongs to, so the
CLI takes ``--loader module:function``: a callable in the user's code, imported with the
working directory first on ``sys.path`` (as ``python -c 'import model'`` would find it). It is
called as ``function(path, policy)`` -- or ``function(path)`` if it takes one argument -- and
returns a ``torch.nn.Module`` or a pair ``(module, decode)``, ``decode(data, relpath)`` turning
a sample's verified bytes into ``(tensor, label)``. ``policy`` is the policy given to
``provenance evaluate`` (without its evaluation requirements, which the model cannot meet
before it is evaluated), or None; a loader should load with
``provenance.torch.load(path, policy=policy)`` when it is given one, else with
``torch.load(path, weights_only=True)``::

    def load(path, policy):
        state = provenance.torch.load(path, policy=policy) if policy else torch.load(
            path, weights_only=True)
        model = classifier()
        model.load_state_dict(state)
        return model, decode

Whatever the loader does, the checkpoint's bytes are read once here first: their SHA-256 is
the digest the evaluation is about; under a policy its chain is verified; and the bytes are
scanned for pickled code. The loader is then given a private copy of exactly those bytes, not
the original path, so the model it builds is made of the bytes the digest names even if the
file is swapped while it runs. Without ``--loader`` the checkpoint itself must unpickle (with
``weights_only=True``) to a ``torch.nn.Module``, which a plain ``state_dict`` never does.
"""

from __future__ import annotations

import importlib
import inspect
import io
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.digest.algorithms import Algorithm, Digest
from provenance.errors import Error, InputError, UsageError
from provenance.fsutil import read_limited
from provenance.guard.checkpoint import MAX_CHECKPOINT_BYTES, LoadRefusedError, failure_summary

if TYPE_CHECKING:
    import torch

    from provenance.policy.model import Policy

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
LOADER_SPEC = re.compile(rf"({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER})")

Loader = Callable[..., Any]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to evaluate, the digest of the checkpoint it came from, its decoder."""

    model: torch.nn.Module
    digest: Digest
    decode: Callable[[bytes, str], Any] | None = None


def import_loader(spec: str, directory: Path) -> Loader:
    """The callable ``module:function`` names, imported with ``directory`` first on the path."""
    match = LOADER_SPEC.fullmatch(spec)
    if match is None:
        raise UsageError(
            f"--loader {spec!r} is not module:function",
            hint="name a module importable from the working directory and a function in it, "
            "e.g. --loader model:load",
        )
    module_name, function_name = match.groups()
    entry = str(directory.resolve())
    sys.path.insert(0, entry)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(
            f"--loader {spec}: cannot import {module_name} ({e})",
            hint=f"run from the directory holding {module_name.replace('.', '/')}.py",
        ) from e
    except Exception as e:  # the module's own code failed while importing
        raise InputError(
            f"--loader {spec}: importing {module_name} failed: {type(e).__name__}: {e}"
        ) from e
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        raise InputError(f"--loader {spec}: {module_name} has no function {function_name}")
    result: Loader = function
    return result


def check_checkpoint(path: Path, *, policy: Policy | None, evidence: Any) -> tuple[bytes, Digest]:
    """The checkpoint's bytes and digest, verified under ``policy`` (if any) and scanned."""
    from provenance.guard.pickle_scan import scan_bytes
    from provenance.verify.core import verify

    if not path.is_file():
        raise InputError(f"{path} is not a file", hint="give the checkpoint file to evaluate")
    data = read_limited(path, MAX_CHECKPOINT_BYTES, what="checkpoint")
    digest = Digest.of_bytes(Algorithm.SHA256, data)
    if policy is not None:
        report = verify(digest, evidence, policy)
        if not report.trusted:
            raise LoadRefusedError(
                f"refusing to evaluate {path}: its chain does not verify: "
                f"{failure_summary(report)}",
                hint="run 'provenance verify' on it for every failure",
            )
    scanned = scan_bytes(data, path=str(path))
    if not scanned.safe:
        more = len(scanned.findings) - 1
        raise LoadRefusedError(
            f"refusing to evaluate {path}: {scanned.findings[0]}"
            + (f" (and {more} more)" if more else ""),
            hint="run 'provenance scan' on it for every finding",
        )
    return data, digest


def _call(loader: Loader, path: Path, policy: Policy | None, spec: str, shown: Path) -> Any:
    try:
        signature = inspect.signature(loader)
        arguments: tuple[Any, ...] = (path, policy)
        try:
            signature.bind(*arguments)
        except TypeError:
            arguments = (path,)
    except (TypeError, ValueError):  # no signature to inspect (a builtin): the one-argument form
        arguments = (path,)
    try:
        return loader(*arguments)
    except Error:
        raise  # a refusal (provenance.torch.load's) or input error keeps its exit code
    except Exception as e:
        raise InputError(f"--loader {spec} failed on {shown}: {type(e).__name__}: {e}") from e


def _unpack(value: Any, spec: str) -> tuple[torch.nn.Module, Callable[[bytes, str], Any] | None]:
    import torch

    decode = None
    if isinstance(value, tuple) and len(value) == 2:
        value, decode = value
        if not callable(decode):
            raise InputError(f"--loader {spec} returned a decoder that is not callable")
    if not isinstance(value, torch.nn.Module):
        raise InputError(
            f"--loader {spec} returned a {type(value).__name__}, not a torch.nn.Module",
            hint="return the model, or (model, decode)",
        )
    return value, decode


def load_model(
    path: Path,
    *,
    loader: Loader | None,
    policy: Policy | None,
    evidence: Any,
    spec: str | None = None,
) -> LoadedModel:
    """Check the checkpoint (see the module docstring), then build the model from it."""
    data, digest = check_checkpoint(path, policy=policy, evidence=evidence)
    if loader is None:
        return LoadedModel(_load_module(data, path), digest)
    # The loader reads a private copy of the verified bytes, not the path: a file swapped
    # while it runs (and swapped back) cannot be what the model is built from.
    with tempfile.TemporaryDirectory(prefix="provenance-evaluate-") as private:
        copy = Path(private) / path.name
        copy.write_bytes(data)
        copy.chmod(0o400)
        name = spec or "loader"
        model, decode = _unpack(_call(loader, copy, policy, name, path), name)
    return LoadedModel(model, digest, decode)


def _load_module(data: bytes, path: Path) -> torch.nn.Module:
    """The checkpoint itself as a module (``weights_only=True``), or why it is not one."""
    import torch

    from provenance.guard.pickle_scan import detect

    kind = detect(data[:512])
    if kind not in ("zip", "pickle"):
        raise InputError(
            f"{path} is a {kind} file, which holds tensors, not a model",
            hint="give --loader module:function returning the model",
        )
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch's restricted unpickler raises several types
        raise LoadRefusedError(f"torch refused to load {path}: {e}") from e
    if not isinstance(loaded, torch.nn.Module):
        raise InputError(
            f"{path} loads as {type(loaded).__name__}, not a torch.nn.Module: a state_dict "
            "needs the architecture it belongs to",
            hint="give --loader module:function returning the model (see 'provenance evaluate "
            "--help')",
        )
    return loaded


__all__ = ["LOADER_SPEC", "LoadedModel", "check_checkpoint", "import_loader", "load_model"]

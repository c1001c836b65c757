"""Hash-on-read datasets: train only on bytes whose digest the verified manifest vouches for.

Verifying a dataset directory once, before training, leaves a gap: a file can be swapped after
the check and before (or between) the epochs that read it, and a loader that lists the
directory reads files no digest covers. :func:`verified_dataset` closes both. It hashes the
directory into a manifest, verifies the manifest's root digest under a policy, and returns a
:class:`VerifiedDataset` that keeps only the verified listing (path -> size, digest). Every
read then goes through that listing:

* only a path the manifest lists as a regular file can be read (so no ``../``, no absolute
  path, no ignored or newly added file, no link);
* the file is opened without following a link in its last component and checked with
  ``fstat`` to be a regular file of the verified size before its bytes are read, so a file
  replaced by a link, a FIFO or a much larger file is refused without reading it;
* at most the verified size plus one byte is read, the bytes are hashed, and bytes whose digest
  differs are never returned.

Links in the *directories* above a file are followed: the digest check, not the path, is what
vouches for the bytes, and identical bytes reached through a link are still the verified bytes.

The handle is small and picklable (a dict of path -> (size, digest bytes)), so it can be sent to
``DataLoader`` workers started with ``spawn``; each worker re-checks every file it reads.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.build import build_manifest
from provenance.digest.manifest import FileEntry, Manifest, SymlinkEntry
from provenance.digest.paths import display
from provenance.errors import InputError, RefusedError, UnreadableError, UsageError
from provenance.guard.checkpoint import failure_summary
from provenance.policy.model import Policy
from provenance.verify.core import Report, closest_attested, verify

if TYPE_CHECKING:
    import datetime as dt

    from provenance.verify.evidence import Evidence

__all__ = ["DatasetRefusedError", "ReadRefusedError", "VerifiedDataset", "verified_dataset"]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_MAX_READ = 1 << 30  # one read() call asks for at most this much (Linux caps reads near 2 GiB)
_STATE_VERSION = 1

# Bound once: the read path runs once per sample, and these are its only calls.
_os_open, _os_read, _os_close, _os_fstat = os.open, os.read, os.close, os.fstat
_is_regular = stat.S_ISREG
_same_digest = hmac.compare_digest


class DatasetRefusedError(RefusedError):
    """The dataset's chain does not verify, or a file no longer matches the verified manifest."""


class ReadRefusedError(DatasetRefusedError):
    """A read was refused: the path is not a verified file, or its bytes differ from it now."""


class _Hash(Protocol):
    def digest(self) -> bytes: ...


def _hash_function(algorithm: Algorithm) -> Callable[[bytes], _Hash]:
    """The one-shot hash constructor for ``algorithm``: ``f(data).digest()`` is the digest."""
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256
    import blake3

    constructor: Callable[[bytes], _Hash] = blake3.blake3
    return constructor


def _why_different(fd: int, size: int) -> str:
    """Why an open file's bytes are not the verified ones, for the refusal's message."""
    info = _os_fstat(fd)
    if not _is_regular(info.st_mode):
        return "it is no longer a regular file"
    if info.st_size != size:
        return f"it is {info.st_size} bytes, not the verified {size}"
    return "its bytes differ from the verified manifest"


def _read_rest(fd: int, first: bytes, size: int) -> bytes:
    """Finish a short first read: keep reading until end of file or past ``size`` bytes.

    Only large files (one read is capped) and odd file systems (FUSE, network) get here; the
    bound still holds, so a file that grew is read to ``size + 1`` bytes and no further.
    """
    chunks, total = [first], len(first)
    while total <= size:
        chunk = _os_read(fd, min(size + 1 - total, _MAX_READ))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class VerifiedDataset:
    """A verified dataset directory whose files can only be read as the verified bytes.

    Built by :func:`verified_dataset`; see the module docstring for what each read checks.
    """

    __slots__ = ("_base", "_digest", "_entries", "_files", "_hash", "_links", "_root")

    def __init__(
        self,
        root: str,
        digest: Digest,
        entries: dict[str, tuple[int, bytes]],
        links: frozenset[str] = frozenset(),
        *,
        base: str | None = None,
    ) -> None:
        """``root`` is the dataset as named; ``base`` the directory its paths are under.

        ``entries`` maps each verified regular file's manifest path to its size and digest
        bytes, in manifest (sorted) order; ``links`` are link entries, listed but never read.
        """
        self._root = root
        self._base = (base if base is not None else root).rstrip(os.sep) + os.sep
        self._digest = digest
        self._entries = entries
        self._links = links
        self._hash = _hash_function(digest.algorithm)
        self._files: tuple[str, ...] | None = None

    @classmethod
    def from_manifest(cls, path: Path, manifest: Manifest) -> VerifiedDataset:
        """The handle for ``manifest``, a manifest already verified for the dataset at ``path``.

        A manifest of a single file (``path`` names a file) lists it by its name, under the
        file's directory.
        """
        root = os.path.abspath(path)  # workers may run in another working directory
        base = root if path.is_dir() else os.path.dirname(root)
        entries: dict[str, tuple[int, bytes]] = {}
        links: set[str] = set()
        for entry in manifest.entries:
            if isinstance(entry, FileEntry):
                entries[entry.path] = (entry.size, bytes.fromhex(entry.digest))
                if not entry.path.isascii() and not os.path.lexists(os.path.join(base, entry.path)):
                    # Manifests record names in NFC; a file system that stores another form
                    # (and does not normalise lookups) has no file by the recorded name.
                    raise InputError(
                        f"{display(entry.path)} in {root} is not named in NFC form on disk; "
                        "it cannot be opened by its verified name",
                        hint="rename it to its NFC form and attest the dataset again",
                    )
            elif isinstance(entry, SymlinkEntry):
                links.add(entry.path)
        return cls(root, manifest.root_digest, entries, frozenset(links), base=base)

    # -- what was verified --------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The dataset as it was named (absolute): a directory, or a single file."""
        return Path(self._root)

    @property
    def digest(self) -> Digest:
        """The verified root digest of the dataset's manifest."""
        return self._digest

    @property
    def files(self) -> tuple[str, ...]:
        """The readable files: every regular file of the verified manifest, sorted by path."""
        if self._files is None:
            self._files = tuple(self._entries)  # manifest order is sorted order
        return self._files

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, relpath: object) -> bool:
        return relpath in self._entries

    def __repr__(self) -> str:
        return f"VerifiedDataset({self._root!r}, {self._digest}, {len(self._entries)} files)"

    # -- reading ------------------------------------------------------------------------------

    def read_bytes(self, relpath: str) -> bytes:
        """The bytes of ``relpath`` (a manifest path), only if they are the verified bytes.

        Raises :class:`ReadRefusedError` for a path that is not a verified regular file, and
        for a file that is now a link or not a regular file, has another size, or has other
        bytes; nothing read from a refused file is returned. Other read failures (permissions)
        raise :class:`~provenance.errors.UnreadableError`.
        """
        entry = self._entries.get(relpath)
        if entry is None:
            return self._read_other(relpath)
        size, expected = entry
        try:
            fd = _os_open(self._base + relpath, _OPEN_FLAGS)
        except OSError as e:
            raise self._open_error(relpath, e) from e
        try:
            # No fstat first: the bounded read and the digest decide, and a stat per small
            # file costs as much as the hash. Only a refusal pays for finding out why.
            data = _os_read(fd, size + 1 if size < _MAX_READ else _MAX_READ)
            if len(data) != size:
                data = _read_rest(fd, data, size)
            if len(data) != size or not _same_digest(self._hash(data).digest(), expected):
                raise self._refused(relpath, _why_different(fd, size))
        except OSError as e:
            if e.errno == errno.EISDIR:
                raise self._refused(relpath, "it is now a directory") from e
            raise UnreadableError(f"cannot read {self._show(relpath)}: {e.strerror}") from e
        finally:
            _os_close(fd)
        return data

    def open(self, relpath: str) -> BinaryIO:
        """A binary stream over the verified bytes of ``relpath``, read and checked in full.

        Not a stream over the file: a stream cannot be vouched for until its end, and a reader
        would have consumed (and maybe acted on) unverified bytes by the time a mismatch showed.
        The whole file is read and checked first, as :meth:`read_bytes` does.
        """
        return io.BytesIO(self.read_bytes(relpath))

    def _read_other(self, relpath: Any) -> bytes:
        """A path not in the listing as given: a path object for a listed file, or a refusal."""
        if isinstance(relpath, os.PathLike) and not isinstance(relpath, str):
            text = Path(relpath).as_posix()
            if text in self._entries:
                return self.read_bytes(text)
            relpath = text
        if relpath in self._links:
            raise ReadRefusedError(
                f"refusing to read {self._show(relpath)}: it is a symbolic link in the verified "
                "manifest, and only regular files are read",
                hint="read the file the link points to, by its own path",
            )
        raise ReadRefusedError(
            f"refusing to read {display(str(relpath))} from {self._root}: "
            f"not a file of the verified dataset {self._digest}",
            hint="read only the paths in .files (relative to the dataset root, '/'-separated)",
        )

    def _show(self, relpath: str) -> str:
        return f"{display(relpath)} from {self._root}"

    def _refused(self, relpath: str, why: str) -> ReadRefusedError:
        return ReadRefusedError(
            f"refusing to read {self._show(relpath)}: {why} (dataset {self._digest})",
            hint="the file changed after the dataset was verified: restore it, or re-attest "
            "the dataset if the change is intended",
        )

    def _open_error(self, relpath: str, error: OSError) -> ReadRefusedError | UnreadableError:
        if error.errno == errno.ELOOP:
            return self._refused(relpath, "it has been replaced by a symbolic link")
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return self._refused(relpath, "it no longer exists")
        return UnreadableError(f"cannot open {self._show(relpath)}: {error.strerror}")

    # -- pickling: small, and without the cached listing or hash function ------------------------

    def __getstate__(self) -> tuple[Any, ...]:
        return (
            _STATE_VERSION,
            self._root,
            self._base,
            str(self._digest),
            self._entries,
            self._links,
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        version, root, base, digest, entries, links = state
        if version != _STATE_VERSION:
            raise InputError(f"a VerifiedDataset pickled by another version ({version})")
        self._root, self._base, self._entries, self._links = root, base, entries, links
        self._digest = Digest.parse(digest)
        self._hash = _hash_function(self._digest.algorithm)
        self._files = None


def _refusal(path: Path, report: Report, manifest: Manifest, evidence: Any) -> DatasetRefusedError:
    """The error for an untrusted dataset: the first failure and, for a dataset no attestation
    names, how it differs from the closest attested one (usually: which files were changed)."""
    message = f"refusing dataset {path}: its chain does not verify: {failure_summary(report)}"
    hint = "run 'provenance verify' on it for every failure"
    if not evidence.about(report.root.digest):
        closest = closest_attested(manifest, evidence)
        if closest is not None and closest[0].ignore == manifest.ignore:
            diff = closest[1]
            parts = [
                f"{len(paths)} {what} ({display(paths[0])}{', ...' if len(paths) > 1 else ''})"
                for what, paths in (
                    ("changed", diff.changed),
                    ("added", diff.added),
                    ("removed", diff.removed),
                )
                if paths
            ]
            if parts:
                against = closest[0].root_digest
                message += f"; against the attested dataset {against}: {', '.join(parts)}"
    return DatasetRefusedError(message, hint=hint)


def verified_dataset(
    path: str | os.PathLike[str],
    policy: str | os.PathLike[str] | Policy,
    *,
    bundle: str | os.PathLike[str] | None = None,
    evidence: Evidence | None = None,
    at: dt.datetime | None = None,
    offline: bool = True,
    algorithm: Algorithm = Algorithm.SHA256,
    allow_symlinks: bool = False,
) -> VerifiedDataset:
    """Hash the dataset at ``path``, verify its chain under ``policy``, return a read handle.

    Attestations come from ``bundle`` (a JSON Lines file ``provenance ledger export`` wrote),
    from ``evidence``, or else from the project's ledger, found from the working directory.
    ``algorithm`` and ``allow_symlinks`` must be those the dataset was attested with (as for
    ``provenance dataset add``), since they decide its root digest. ``at`` and ``offline`` are
    as for :func:`provenance.verify.core.verify`.

    Raises :class:`DatasetRefusedError` naming the first failure when the chain does not
    verify; errors reading the directory are :class:`~provenance.errors.InputError`.
    """
    if bundle is not None and evidence is not None:
        raise UsageError("give bundle or evidence, not both")
    from provenance.policy.load import load_policy

    loaded = policy if isinstance(policy, Policy) else load_policy(Path(policy))
    root = Path(path)
    manifest = build_manifest(root, algorithm=algorithm, allow_symlinks=allow_symlinks)
    if evidence is None and bundle is not None:
        from provenance.verify.evidence import BundleFileEvidence

        evidence = BundleFileEvidence(Path(bundle))
    if evidence is not None:
        report = verify(manifest.root_digest, evidence, loaded, at=at, offline=offline)
        if not report.trusted:
            raise _refusal(root, report, manifest, evidence)
        return VerifiedDataset.from_manifest(root, manifest)
    from provenance.ledger import Ledger
    from provenance.project import require_project
    from provenance.verify.evidence import LedgerEvidence

    with Ledger(require_project().ledger_path) as ledger:
        ledger_evidence = LedgerEvidence(ledger)
        report = verify(manifest.root_digest, ledger_evidence, loaded, at=at, offline=offline)
        if not report.trusted:
            raise _refusal(root, report, manifest, ledger_evidence)
    return VerifiedDataset.from_manifest(root, manifest)

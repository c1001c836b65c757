"""Content digests: files and directories -> Manifest -> root digest.

This layer only reads the file system; it knows nothing of statements, signatures or policies.
Its names are imported on first use (PEP 562), so that a process needing one submodule -- a
hashing worker, the CLI's parser -- does not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provenance.digest.algorithms import Algorithm as Algorithm
    from provenance.digest.algorithms import Digest as Digest
    from provenance.digest.build import ArtifactDigest as ArtifactDigest
    from provenance.digest.build import ArtifactKind as ArtifactKind
    from provenance.digest.build import build_manifest as build_manifest
    from provenance.digest.build import digest_path as digest_path
    from provenance.digest.cache import StatCache as StatCache
    from provenance.digest.hashing import Progress as Progress
    from provenance.digest.ignore import IGNORE_FILE as IGNORE_FILE
    from provenance.digest.ignore import IgnoreRules as IgnoreRules
    from provenance.digest.manifest import MEDIA_TYPE as MEDIA_TYPE
    from provenance.digest.manifest import DirectoryEntry as DirectoryEntry
    from provenance.digest.manifest import Entry as Entry
    from provenance.digest.manifest import FileEntry as FileEntry
    from provenance.digest.manifest import Manifest as Manifest
    from provenance.digest.manifest import ManifestDiff as ManifestDiff
    from provenance.digest.manifest import SymlinkEntry as SymlinkEntry

_EXPORTS = {
    "Algorithm": "algorithms",
    "Digest": "algorithms",
    "ArtifactDigest": "build",
    "ArtifactKind": "build",
    "build_manifest": "build",
    "digest_path": "build",
    "StatCache": "cache",
    "Progress": "hashing",
    "IGNORE_FILE": "ignore",
    "IgnoreRules": "ignore",
    "MEDIA_TYPE": "manifest",
    "DirectoryEntry": "manifest",
    "Entry": "manifest",
    "FileEntry": "manifest",
    "Manifest": "manifest",
    "ManifestDiff": "manifest",
    "SymlinkEntry": "manifest",
}

__all__ = [
    "IGNORE_FILE",
    "MEDIA_TYPE",
    "Algorithm",
    "ArtifactDigest",
    "ArtifactKind",
    "Digest",
    "DirectoryEntry",
    "Entry",
    "FileEntry",
    "IgnoreRules",
    "Manifest",
    "ManifestDiff",
    "Progress",
    "StatCache",
    "SymlinkEntry",
    "build_manifest",
    "digest_path",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

"""Content digests: files and directories -> Manifest -> root digest.

This layer only reads the file system; it knows nothing of statements, signatures or policies.
"""

from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.build import ArtifactDigest, ArtifactKind, build_manifest, digest_path
from provenance.digest.cache import StatCache
from provenance.digest.hashing import Progress
from provenance.digest.ignore import IGNORE_FILE, IgnoreRules
from provenance.digest.manifest import (
    MEDIA_TYPE,
    DirectoryEntry,
    Entry,
    FileEntry,
    Manifest,
    ManifestDiff,
    SymlinkEntry,
)

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

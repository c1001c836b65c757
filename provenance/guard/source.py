"""The code's version for training provenance: the git commit and whether the tree is dirty.

Read with the ``git`` command (the one authority on what git considers modified), with
optional locks off so that reading never writes to the repository, and with the file-system
monitor hook disabled. (A ``.gitattributes`` filter driver of the repository still runs when
``git status`` compares a file: the repository is the user's own code, about to be run
anyway.) Untracked files that are not ignored make a tree dirty: an untracked module can be
imported by the training script as easily as a tracked one; so do tracked files git was told
to stop looking at (``assume-unchanged``, ``skip-worktree``), whose changes ``git status``
does not show. Ignored files do not: a virtual environment or a data directory is ignored in
most repositories, and a tree would otherwise never be clean.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from provenance.predicates.training import SourceState

GIT_TIMEOUT_SECONDS = 60


def _git(directory: Path, *arguments: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [git, "-c", "core.fsmonitor=false", "-C", str(directory), *arguments],
            capture_output=True,
            env=environment,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", "surrogateescape")


def public_uri(remote: str) -> str | None:
    """A remote URL without credentials (``https://user:token@host`` loses ``user:token``).

    scp-like remotes (``git@host:org/repo.git``) are returned as they are: they name a user
    but carry no secret. Anything that does not parse is dropped rather than recorded.
    """
    remote = remote.strip()
    if not remote:
        return None
    if re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+", remote):
        return f"git+ssh://{remote.replace(':', '/', 1)}"
    try:
        parts = urlsplit(remote)
        port = parts.port  # raises for a port that is not a number
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host = hostname + (f":{port}" if port else "")
    cleaned = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return cleaned if cleaned.startswith("git+") else f"git+{cleaned}"


def source_state(directory: Path) -> SourceState | None:
    """The commit checked out in ``directory`` and whether the tree differs from it.

    None when ``directory`` is not in a git work tree, has no commit yet, or git is not
    installed: the source is then unversioned, which a policy treats like a dirty tree.
    """
    head = _git(directory, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None:
        return None
    status = _git(directory, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
    if status is None:
        return None
    flagged = _git(directory, "ls-files", "-v", "-z")
    if flagged is None:
        return None
    # "h"/"S" and other lower-case tags: assume-unchanged or skip-worktree entries.
    hidden = any(e[:1].islower() or e[:1] == "S" for e in flagged.split("\0") if e)
    remote = _git(directory, "config", "--get", "remote.origin.url")
    return SourceState(
        head.strip(),
        dirty=bool(status.strip("\0")) or hidden,
        uri=public_uri(remote) if remote else None,
    )

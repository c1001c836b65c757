"""A progress bar on the terminal while hashing (rich), silent everywhere else.

rich is imported only when a bar is actually shown, so scripted and CI runs never load it.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


class TerminalProgress:
    """Implements :class:`provenance.digest.Progress` with a rich progress bar on ``stream``."""

    def __init__(self, description: str, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._lock = threading.Lock()
        self._files = 0
        self._total_files = 0
        self._bar: RichProgress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._description = description
        self._task: TaskID | None = None

    def start(self, total_files: int, total_bytes: int) -> None:
        self._total_files = total_files
        self._bar.start()
        self._task = self._bar.add_task(self._description, total=total_bytes, files="")

    def advance(self, files: int, nbytes: int) -> None:
        if self._task is None:
            return
        with self._lock:
            self._files += files
            label = f"{self._files}/{self._total_files} files"
        self._bar.update(self._task, advance=nbytes, files=label)

    def finish(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


def progress_for(description: str, *, quiet: bool) -> TerminalProgress | None:
    """A bar on stderr when it is a terminal and ``quiet`` is not set, else None."""
    if quiet or not sys.stderr.isatty():
        return None
    return TerminalProgress(description, sys.stderr)

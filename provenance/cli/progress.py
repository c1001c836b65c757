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

    def __init__(
        self, description: str, stream: TextIO, *, force_terminal: bool | None = None
    ) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._lock = threading.Lock()
        self._bytes = 0
        self._total_files = 0
        # Files are counted as the walk finds them (hashing starts before listing ends); bytes
        # are known only once read, so the bar runs over files and bytes are shown beside it.
        self._bar: RichProgress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files, {task.fields[read]}"),
            TimeElapsedColumn(),
            console=Console(file=stream, force_terminal=force_terminal),
            transient=True,
        )
        self._description = description
        self._task: TaskID | None = None

    def found(self, files: int, nbytes: int) -> None:
        with self._lock:
            if self._task is None:
                self._bar.start()
                self._task = self._bar.add_task(self._description, total=0, read="")
            self._total_files += files
            self._bar.update(self._task, total=self._total_files)

    def advance(self, files: int, nbytes: int) -> None:
        with self._lock:
            if self._task is None:
                return
            self._bytes += nbytes
            self._bar.update(self._task, advance=files, read=_human(self._bytes))

    def finish(self) -> None:
        with self._lock:
            if self._task is not None:
                self._bar.stop()
                self._task = None


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop returns


def progress_for(description: str, *, quiet: bool) -> TerminalProgress | None:
    """A bar on stderr when it is a terminal and ``quiet`` is not set, else None."""
    if quiet or not sys.stderr.isatty():
        return None
    return TerminalProgress(description, sys.stderr)

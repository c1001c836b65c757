"""The one error hierarchy of ml-provenance.

Every failure the toolkit reports on purpose is an :class:`Error`. Third-party and OS errors are
translated into one of these at the boundary where they happen (``raise ... from e``), so that
the CLI can print one clear line for a person and map the failure to an exit code, and so that a
library caller can catch one base class.

Exit codes (shared by every command):

* 0 -- success; the artifact is trusted; no differences.
* 1 -- refused: verification failed, a policy said no, differences were found.
* 2 -- bad usage or bad input: a malformed file, an unsafe path, an unreadable file.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


class Error(Exception):
    """Base of every error ml-provenance raises deliberately.

    ``message`` says what went wrong and names the thing it went wrong with; ``hint``, when
    given, says what the person can do about it.
    """

    exit_code: ClassVar[int] = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """One line for a person: what happened and, when known, what to do."""
        text = " ".join(self.message.split("\n"))
        if self.hint:
            return f"{text} (hint: {self.hint})"
        return text


class UsageError(Error):
    """The command line itself is wrong: a missing option, options that exclude each other."""


class InputError(Error):
    """An input file, directory or value is malformed, unsafe or unreadable."""


class UnsafePathError(InputError):
    """A path would escape its root, is ambiguous, or cannot be represented portably."""


class UnsupportedFileError(InputError):
    """A directory holds something that is not a regular file, directory or permitted link."""


class UnreadableError(InputError):
    """A file or directory exists but could not be read."""


class ChangedWhileReadingError(InputError):
    """A file changed between being listed and being hashed, or while being hashed."""


class FormatError(InputError):
    """A document (manifest, bundle, policy, ...) does not have the required form."""


class UnsupportedAlgorithmError(InputError):
    """A digest algorithm outside the allow-list was named or found."""


class ProjectNotFoundError(InputError):
    """No ``.provenance/`` directory was found above the working directory."""


class RefusedError(Error):
    """Something was checked and found wanting: the answer is *no*, not *cannot tell*."""

    exit_code: ClassVar[int] = EXIT_REFUSED

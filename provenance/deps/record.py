"""A distribution's RECORD file: the installed files, each with its hash and size.

The format is the wheel spec's (PEP 376 / 627): CSV rows ``path,hash,size`` where ``hash`` is
``<algorithm>=<urlsafe base64 digest, no padding>`` and paths are relative to the directory
holding the ``.dist-info`` directory (or absolute; scripts are usually ``../../bin/x``).
Hashes are kept as lowercase hex, the form this project compares everywhere. Only sha256 and
stronger SHA-2 digests vouch for a file; an entry hashed with anything else (md5, sha1) is kept
with ``algorithm`` set, so that the integrity check can report it rather than trust it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass

from provenance.errors import FormatError

ACCEPTED = {"sha256": 32, "sha384": 48, "sha512": 64}
MAX_RECORD_BYTES = 64 << 20
# Files that may be listed without a hash: RECORD cannot contain its own, signatures of it.
SELF_NAMES = ("RECORD", "RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class RecordEntry:
    """One row: a path, and the hash (``algorithm``, hex) and size when the row gives them."""

    path: str
    algorithm: str | None
    digest: str | None
    size: int | None

    @property
    def accepted(self) -> bool:
        """True when the row's hash is one that can vouch for the file's content."""
        return self.algorithm in ACCEPTED and self.digest is not None


def _hash(field: str, where: str) -> tuple[str | None, str | None]:
    if not field:
        return None, None
    algorithm, sep, value = field.partition("=")
    if not sep or not algorithm or not value:
        raise FormatError(f"{where}: malformed hash {field!r}")
    algorithm = algorithm.lower()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:
        raise FormatError(f"{where}: hash {field!r} is not base64") from e
    expected = ACCEPTED.get(algorithm)
    if expected is not None and len(raw) != expected:
        raise FormatError(f"{where}: {algorithm} hash has the wrong length")
    return algorithm, raw.hex()


def parse_record(data: bytes, *, what: str) -> list[RecordEntry]:
    """Parse RECORD bytes strictly: a malformed row is an error naming ``what`` and the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{what}: not valid UTF-8") from e
    entries = []
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise FormatError(f"{what}: not valid CSV ({e})") from e
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        where = f"{what} line {number}"
        if len(row) != 3 or not row[0]:
            raise FormatError(f"{where}: expected path,hash,size")
        path, hash_field, size_field = row
        if "\x00" in path:
            raise FormatError(f"{where}: path contains NUL")
        algorithm, digest = _hash(hash_field, where)
        size: int | None = None
        if size_field:
            # ASCII digits only: isdigit() also accepts "²", which int() refuses; and a
            # bounded length, as int() refuses more than a few thousand digits.
            if not (size_field.isascii() and size_field.isdigit()) or len(size_field) > 20:
                raise FormatError(f"{where}: size {size_field[:32]!r} is not a number")
            size = int(size_field)
        entries.append(RecordEntry(path, algorithm, digest, size))
    return entries

"""A static scanner for pickles in model files: it reads opcodes and never executes anything.

Unpickling calls whatever callables the pickle names, so a checkpoint can run code the moment
it is loaded. This scanner walks every pickle in a file -- a raw pickle stream (any protocol,
several pickles one after another, as torch's legacy format writes), or every pickle inside a
zip archive (torch's current format, NumPy ``.npz``) -- and refuses any global outside an
allow-list of the rebuild functions that tensors and arrays need. Anything it cannot resolve
statically (a global whose name is computed, the copyreg extension registry) is refused too.

The format is recognised by content, never by file name: zip, safetensors (a JSON header and
raw tensor bytes: nothing executable), NumPy ``.npy`` (refused when its dtype holds Python
objects, which are pickled), a pickle stream; the legacy tar format and anything else are
refused.
"""

from __future__ import annotations

import collections
import io
import json
import lzma
import os
import pickletools
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from provenance.errors import InputError

MAX_PICKLE_BYTES = 1 << 30  # a pickle (file or zip member) larger than this is refused unread
MAX_MEMO = 1 << 21  # values one pickle may memoise (see _Pickle)
READ_WHOLE_BYTES = 1 << 26  # a zip member's pickle up to this size is read, then scanned
# A torch checkpoint's tensor storages: "<archive>/data/<key>", raw bytes torch never unpickles.
_TORCH_STORAGE = re.compile(r"(?:^|/)data/[0-9]+$")

# The globals a tensor or array state needs to be rebuilt, and nothing that can run code.
ALLOWED_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.bytearray",
        "_codecs.encode",  # how protocol 2 writes bytes
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.serialization._get_layout",
        *(
            f"torch.{kind}Storage"
            for kind in (
                "Float",
                "Double",
                "Half",
                "BFloat16",
                "Long",
                "Int",
                "Short",
                "Char",
                "Byte",
                "Bool",
                "ComplexFloat",
                "ComplexDouble",
                "QUInt8",
                "QInt8",
                "QInt32",
            )
        ),
        *(
            f"torch.{dtype}"
            for dtype in (
                "float32",
                "float64",
                "float16",
                "bfloat16",
                "int64",
                "int32",
                "int16",
                "int8",
                "uint8",
                "bool",
                "complex64",
                "complex128",
                "float",
                "double",
                "half",
                "long",
                "int",
                "short",
                "qint8",
                "quint8",
                "qint32",
                "strided",
                "sparse_coo",
            )
        ),
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",  # protocol 5 arrays (out-of-band buffers)
        "numpy._core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.dtype",
    }
)

_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})


@dataclass
class ScanResult:
    """What a file holds: its format, the pickles read, and every finding."""

    path: str
    format: str
    pickles: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.findings


class _MemoTooLargeError(Exception):
    """A pickle memoises more values than :data:`MAX_MEMO`."""


class _Pickle:
    """Follows one pickle's opcodes far enough to know every global it names.

    Only string values are tracked (pushed, memoised, fetched back), which is all a global's
    name can be built from; anything else is an opaque value (None). A name built from
    opaque values cannot be read, and is reported as such.

    The memo mirrors the unpickler's key for key (MEMOIZE's index is the number of keys), so
    a fetched string is the string the unpickler fetches. Memory stays bounded whatever the
    pickle: only the two latest pushes are kept (all a global's name is read from), and a
    pickle memoising more than :data:`MAX_MEMO` values is refused rather than followed.
    """

    def __init__(self, where: str, findings: list[str]) -> None:
        self.where = where
        self.findings = findings
        self.memo: dict[object, str | None] = {}
        self.recent: collections.deque[str | None] = collections.deque([None, None], maxlen=2)

    def feed(self, name: str, arg: object) -> None:
        if name in _STRING_OPS:
            self.recent.append(arg if isinstance(arg, str) else None)
        elif name in _GET_OPS:
            self.recent.append(self.memo.get(arg))
        elif name in _PUT_OPS:
            self.remember(arg)
        elif name == "MEMOIZE":
            self.remember(len(self.memo))
        elif name in ("GLOBAL", "INST"):
            text_module, _, text_attribute = str(arg).partition(" ")
            self.check(text_module, text_attribute)
            self.recent.append(None)  # the class (or instance) pushed
        elif name == "STACK_GLOBAL":
            self.check(self.recent[0], self.recent[1])
            self.recent.extend((None, None))  # the names popped, below them unknown
        elif name in _EXT_OPS:
            self.findings.append(f"{self.where}: a global from the copyreg extension registry")
            self.recent.append(None)
        else:
            self.recent.append(None)

    def remember(self, key: object) -> None:
        if key not in self.memo and len(self.memo) >= MAX_MEMO:
            raise _MemoTooLargeError
        self.memo[key] = self.recent[-1]

    def check(self, module: object, attribute: object) -> None:
        if not isinstance(module, str) or not isinstance(attribute, str):
            self.findings.append(f"{self.where}: a global whose name cannot be read statically")
        elif f"{module}.{attribute}" not in ALLOWED_GLOBALS:
            self.findings.append(f"{self.where}: refuses global {module}.{attribute}")


def _globals_in(stream: IO[bytes], size: int, where: str) -> tuple[int, list[str]]:
    """Scan every pickle in ``stream`` (one after another, ``size`` bytes in all), reading it
    as it goes; return (count, findings)."""
    findings: list[str] = []
    count = 0
    while stream.tell() < size:
        count += 1
        reader = _Pickle(where, findings)
        try:
            with warnings.catch_warnings():
                # STRING arguments go through codecs.escape_decode, which warns on an invalid
                # escape ("\ ") as the unpickler's own reading does: the bytes are read the same.
                warnings.simplefilter("ignore", DeprecationWarning)
                for opcode, arg, _ in pickletools.genops(stream):
                    reader.feed(opcode.name, arg)
        except (ValueError, EOFError, UnicodeDecodeError, struct.error) as e:
            findings.append(f"{where}: not a complete pickle ({e})")
            break
        except _MemoTooLargeError:
            findings.append(f"{where}: a pickle memoising more than {MAX_MEMO} values")
            break
    return count, findings


def _npy_has_objects(data: bytes) -> bool:
    """True when a .npy header declares a dtype holding Python objects (stored pickled)."""
    if len(data) < 10 or (data[6] != 1 and len(data) < 12):
        return True  # too short for its own header: unreadable, so refused
    major = data[6]
    if major == 1:
        length, start = struct.unpack("<H", data[8:10])[0], 10
    else:
        length, start = struct.unpack("<I", data[8:12])[0], 12
    header = data[start : start + length].decode("latin-1", "replace")
    return "'O'" in header or '"O"' in header or "object" in header or "|O" in header


# What reading a hostile zip member raises: damage, an encrypted member (RuntimeError), a
# compression method zipfile lacks (NotImplementedError), corrupt deflate or LZMA data. A
# member that cannot be read cannot be scanned: it is a finding, never a crash.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


def _scan_zip(source: Path | bytes, result: ScanResult, limit: int) -> None:
    """Scan every pickle and NumPy member of a zip; of the others (tensor data), only the first
    bytes are read, to tell what they are."""
    try:
        archive = zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    except _ZIP_ERRORS as e:  # NotImplementedError too: a zip version zipfile cannot read
        result.findings.append(f"{result.path}: not a readable zip archive ({e})")
        return
    try:
        with archive:
            for info in archive.infolist():
                if not info.filename.endswith("/"):  # is_dir() fails on an empty name
                    _scan_member(archive, info, result, limit)
    except _ZIP_ERRORS as e:
        result.findings.append(f"{result.path}: a damaged zip archive ({e})")


def _scan_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, result: ScanResult, limit: int
) -> None:
    member = f"{result.path}:{info.filename}"
    if info.filename.endswith(".pkl") and info.file_size > limit:
        result.findings.append(_too_large(member, info.file_size, limit))
        return
    with archive.open(info) as handle:
        head = handle.read(16)
    if head.startswith(b"\x93NUMPY"):
        with archive.open(info) as handle:
            header = handle.read(1 << 16)
        if _npy_has_objects(header):
            result.findings.append(f"{member}: a NumPy array of Python objects (pickled)")
    elif info.filename.endswith(".pkl") or (
        # A torch storage holds raw tensor bytes, which may begin like a pickle (int8 -128, 2):
        # torch.load never unpickles them, so they are not taken for one.
        _looks_like_pickle(head) and not _TORCH_STORAGE.search(info.filename)
    ):
        if info.file_size > limit:
            result.findings.append(_too_large(member, info.file_size, limit))
            return
        if info.file_size <= READ_WHOLE_BYTES:  # a torch checkpoint's data.pkl: megabytes
            data = archive.read(info)
            count, findings = _globals_in(io.BytesIO(data), len(data), member)
        else:  # read as it is scanned (three times slower: zipfile's reads are Python's)
            with archive.open(info) as handle:
                count, findings = _globals_in(handle, info.file_size, member)
        result.pickles += count
        result.findings += findings


def _too_large(where: str, size: int, limit: int) -> str:
    return f"{where}: a pickle of {size} bytes, more than the {limit} bytes the scanner reads"


def _looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def detect(head: bytes) -> str:
    """The format a file's first bytes show (zip, safetensors, npy, tar, pickle, unknown)."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if len(head) >= 265 and head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < (100 << 20):
        return "safetensors"
    return "pickle"


def _scan_pickles(stream: IO[bytes], size: int, result: ScanResult) -> None:
    count, findings = _globals_in(stream, size, result.path)
    if count == 1 and findings and "not a complete pickle" in findings[0]:
        # Not even one pickle parses: this is no format we know, and it is refused as such.
        result.format = "unknown"
        result.findings.append(f"{result.path}: not a recognised model format")
    else:
        result.pickles, result.findings = count, findings


def _check_safetensors(head: bytes, read: int, result: ScanResult) -> None:
    length = struct.unpack("<Q", head[:8])[0]
    try:
        header = json.loads(head[8 : 8 + length])
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or 8 + length > read:
        result.findings.append(f"{result.path}: a safetensors header that is not JSON")


def scan_bytes(
    data: bytes, *, path: str = "<bytes>", max_pickle_bytes: int = MAX_PICKLE_BYTES
) -> ScanResult:
    """Scan the content of one file held in memory (see the module docstring).

    A pickle larger than ``max_pickle_bytes`` (a zip member's size as its central directory
    says) is not scanned but refused: a finding.
    """
    result = ScanResult(path, detect(data[:512]))
    if result.format == "zip":
        _scan_zip(data, result, max_pickle_bytes)
    elif result.format == "npy":
        if _npy_has_objects(data[: 1 << 16]):
            result.findings.append(f"{path}: a NumPy array of Python objects (pickled)")
    elif result.format == "tar":
        result.findings.append(f"{path}: the legacy tar checkpoint format is not accepted")
    elif result.format == "safetensors":
        _check_safetensors(data[: 8 + struct.unpack("<Q", data[:8])[0]], len(data), result)
    elif len(data) > max_pickle_bytes:
        result.findings.append(_too_large(path, len(data), max_pickle_bytes))
    else:
        _scan_pickles(io.BytesIO(data), len(data), result)
    return result


def scan_file(path: Path, *, max_pickle_bytes: int = MAX_PICKLE_BYTES) -> ScanResult:
    """Scan the file at ``path``, reading only what the format requires.

    A zip's tensor data is never read (it is not pickle), so a multi-gigabyte checkpoint is
    scanned in the time its small pickle takes. A pickle is read as it is scanned (a zip
    member's whole first, up to :data:`READ_WHOLE_BYTES`), and one larger than
    ``max_pickle_bytes`` is refused unread: memory stays bounded whatever the file.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
            size = os.fstat(handle.fileno()).st_size
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    kind = detect(head)
    if kind == "zip":
        result = ScanResult(str(path), kind)
        _scan_zip(path, result, max_pickle_bytes)
        return result
    if kind == "safetensors":
        length = struct.unpack("<Q", head[:8])[0]
        with path.open("rb") as handle:
            header = handle.read(8 + length)
        result = ScanResult(str(path), kind)
        _check_safetensors(header, size, result)
        return result
    if kind in ("npy", "tar"):
        return scan_bytes(head, path=str(path))
    result = ScanResult(str(path), kind)
    if size > max_pickle_bytes:
        result.findings.append(_too_large(str(path), size, max_pickle_bytes))
        return result
    try:
        with path.open("rb") as handle:
            _scan_pickles(handle, size, result)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    return result

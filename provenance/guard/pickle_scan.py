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

import io
import json
import lzma
import os
import pickletools
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from provenance.errors import InputError
from provenance.fsutil import read_limited

MAX_MEMBER_PICKLE_BYTES = 1 << 30

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


class _Pickle:
    """Follows one pickle's opcodes far enough to know every global it names.

    Only string values are tracked (pushed, memoised, fetched back), which is all a global's
    name can be built from; anything else is an opaque value. A name built from opaque values
    cannot be read, and is reported as such.
    """

    def __init__(self, where: str, findings: list[str]) -> None:
        self.where = where
        self.findings = findings
        self.memo: dict[object, object] = {}
        self.recent: list[object] = []  # values of the latest pushes (None: not a string)

    def feed(self, name: str, arg: object) -> None:
        if name in _STRING_OPS:
            self.recent.append(arg if isinstance(arg, str) else None)
        elif name in _GET_OPS:
            self.recent.append(self.memo.get(arg))
        elif name in _PUT_OPS:
            self.memo[arg] = self.recent[-1] if self.recent else None
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.recent[-1] if self.recent else None
        elif name in ("GLOBAL", "INST"):
            text_module, _, text_attribute = str(arg).partition(" ")
            self.check(text_module, text_attribute)
        elif name == "STACK_GLOBAL":
            pair = self.recent[-2:] if len(self.recent) >= 2 else [None, None]
            self.check(pair[0], pair[1])
        elif name in _EXT_OPS:
            self.findings.append(f"{self.where}: a global from the copyreg extension registry")
        else:
            self.recent.append(None)

    def check(self, module: object, attribute: object) -> None:
        if not isinstance(module, str) or not isinstance(attribute, str):
            self.findings.append(f"{self.where}: a global whose name cannot be read statically")
        elif f"{module}.{attribute}" not in ALLOWED_GLOBALS:
            self.findings.append(f"{self.where}: refuses global {module}.{attribute}")


def _globals_in(data: bytes, where: str) -> tuple[int, list[str]]:
    """Scan every pickle in ``data`` (one after another); return (count, findings)."""
    findings: list[str] = []
    stream = io.BytesIO(data)
    count = 0
    while stream.tell() < len(data):
        count += 1
        reader = _Pickle(where, findings)
        try:
            for opcode, arg, _ in pickletools.genops(stream):
                reader.feed(opcode.name, arg)
        except (ValueError, EOFError, UnicodeDecodeError, struct.error) as e:
            findings.append(f"{where}: not a complete pickle ({e})")
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


def _scan_zip(source: Path | bytes, result: ScanResult) -> None:
    """Scan every pickle and NumPy member of a zip; tensor data members are not read."""
    try:
        archive = zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    except _ZIP_ERRORS as e:  # NotImplementedError too: a zip version zipfile cannot read
        result.findings.append(f"{result.path}: not a readable zip archive ({e})")
        return
    try:
        with archive:
            for info in archive.infolist():
                if not info.filename.endswith("/"):  # is_dir() fails on an empty name
                    _scan_member(archive, info, result)
    except _ZIP_ERRORS as e:
        result.findings.append(f"{result.path}: a damaged zip archive ({e})")


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, result: ScanResult) -> None:
    with archive.open(info) as handle:
        head = handle.read(16)
    member = f"{result.path}:{info.filename}"
    if head.startswith(b"\x93NUMPY"):
        with archive.open(info) as handle:
            header = handle.read(1 << 16)
        if _npy_has_objects(header):
            result.findings.append(f"{member}: a NumPy array of Python objects (pickled)")
    elif info.filename.endswith(".pkl") or _looks_like_pickle(head):
        if info.file_size > MAX_MEMBER_PICKLE_BYTES:
            result.findings.append(f"{member}: a pickle larger than can be scanned")
            return
        count, findings = _globals_in(archive.read(info), member)
        result.pickles += count
        result.findings += findings


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


def _scan_pickles(data: bytes, result: ScanResult) -> None:
    count, findings = _globals_in(data, result.path)
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


def scan_bytes(data: bytes, *, path: str = "<bytes>") -> ScanResult:
    """Scan the content of one file held in memory (see the module docstring)."""
    result = ScanResult(path, detect(data[:512]))
    if result.format == "zip":
        _scan_zip(data, result)
    elif result.format == "npy":
        if _npy_has_objects(data[: 1 << 16]):
            result.findings.append(f"{path}: a NumPy array of Python objects (pickled)")
    elif result.format == "tar":
        result.findings.append(f"{path}: the legacy tar checkpoint format is not accepted")
    elif result.format == "safetensors":
        _check_safetensors(data[: 8 + struct.unpack("<Q", data[:8])[0]], len(data), result)
    else:
        _scan_pickles(data, result)
    return result


def scan_file(path: Path) -> ScanResult:
    """Scan the file at ``path``, reading only what the format requires.

    A zip's tensor data is never read (it is not pickle), so a multi-gigabyte checkpoint is
    scanned in the time its small pickle takes.
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
        _scan_zip(path, result)
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
    return scan_bytes(read_limited(path, MAX_MEMBER_PICKLE_BYTES), path=str(path))

"""The static pickle scanner: malicious checkpoints refused, real tensors and arrays accepted,
and nothing is ever executed (a payload would create a marker file)."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import random
import struct
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance.bundle import Bundle
from provenance.cli import main
from provenance.digest import digest_path
from provenance.errors import RefusedError
from provenance.guard import pickle_scan
from provenance.guard.pickle_scan import MAX_PICKLE_BYTES, ScanResult, scan_bytes, scan_file
from provenance.policy.load import parse_policy
from provenance.signing.keys import KeySigner
from provenance.statement import ResourceDescriptor, Statement

torch = pytest.importorskip("torch")

# Callables that run code or reach the system, as attackers put them in checkpoints.
DANGEROUS = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "exec"),
    ("builtins", "eval"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("runpy", "run_path"),
    ("timeit", "timeit"),
    ("cProfile", "run"),
    ("pdb", "run"),
    ("pip", "main"),
    ("webbrowser", "open"),
    ("ctypes", "CDLL"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("pickle", "loads"),
    ("builtins", "getattr"),
]


def _with_peak_memory(scan: Callable[[], ScanResult]) -> tuple[ScanResult, int]:
    """``scan()``'s result and the peak of the memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        return scan(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _text(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def crafted(module: str, name: str, protocol: int, marker: str = "/tmp/pwned") -> bytes:
    """A pickle calling module.name(arg) on load, written opcode by opcode for each protocol."""
    argument = f"touch {marker}"
    if protocol == 0:
        return f"c{module}\n{name}\n(V{argument}\ntR.".encode()
    if protocol == 2:
        return (
            b"\x80\x02c"
            + f"{module}\n{name}\n".encode()
            + b"X"
            + struct.pack("<I", len(argument))
            + argument.encode()
            + b"\x85R."
        )
    # Protocols 4 and 5 name globals with STACK_GLOBAL; route the names through the memo,
    # as evasive payloads do.
    return (
        bytes([0x80, protocol])
        + _text(module)
        + b"\x94"
        + _text(name)
        + b"\x94"
        + b"h\x00h\x01\x93"
        + _text(argument)
        + b"\x85R."
    )


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize(("module", "name"), DANGEROUS)
def test_dangerous_globals_are_refused_in_every_protocol(
    module: str, name: str, protocol: int
) -> None:
    result = scan_bytes(crafted(module, name, protocol), path="evil")
    assert not result.safe
    assert f"refuses global {module}.{name}" in result.findings[0]


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/provenance-scan-marker-must-not-exist"


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".ckpt", ".pkl", ""])
def test_a_payload_inside_a_real_torch_checkpoint_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    torch.save({"weight": torch.zeros(3), "evil": Evil()}, path)
    result = scan_file(path)
    assert result.format == "zip"
    assert any("refuses global posix.system" in f for f in result.findings)
    assert not Path(MARKER).exists()


def test_a_nested_pickle_is_refused(tmp_path: Path) -> None:
    inner = pickle.dumps(Evil(), protocol=2)

    class Nested:
        def __reduce__(self) -> tuple[Any, ...]:
            return (pickle.loads, (inner,))

    result = scan_bytes(pickle.dumps(Nested(), protocol=4), path="nested")
    assert any("pickle.loads" in f or "_pickle.loads" in f for f in result.findings)


def test_legacy_stream_of_several_pickles_is_scanned_to_the_end() -> None:
    benign = pickle.dumps({"a": 1}, protocol=2)
    result = scan_bytes(benign + benign + crafted("os", "system", 2), path="stream")
    assert result.pickles == 3
    assert "refuses global os.system" in result.findings[-1]


def test_real_state_dicts_and_arrays_are_accepted(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.save(model.state_dict(), tmp_path / "state.pt")
    result = scan_file(tmp_path / "state.pt")
    assert result.safe, result.findings
    assert result.pickles >= 1
    for protocol in (2, 4, 5):
        array = pickle.dumps({"x": np.arange(10, dtype=np.float32)}, protocol=protocol)
        assert scan_bytes(array, path="array").safe, protocol
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3), b=np.ones((2, 2)))
    assert scan_file(tmp_path / "arrays.npz").safe


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert not scan_file(tmp_path / "objects.npy").safe
    np.savez(tmp_path / "objects.npz", a=np.array([None, 1], dtype=object))
    assert not scan_file(tmp_path / "objects.npz").safe
    np.save(tmp_path / "plain.npy", np.zeros(4))
    assert scan_file(tmp_path / "plain.npy").safe


def test_safetensors_are_accepted_and_a_broken_header_is_not(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    assert scan_file(tmp_path / "m.safetensors").safe
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 40) + b"{not json" + bytes(40))
    assert not scan_file(tmp_path / "bad.safetensors").safe


def test_tar_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "legacy.tar", "w") as archive:
        data = pickle.dumps({"a": 1}, protocol=2)
        info = tarfile.TarInfo("pickle")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert "legacy tar" in scan_file(tmp_path / "legacy.tar").findings[0]
    (tmp_path / "document.pdf").write_bytes(b"%PDF-1.7\n" + bytes(4096))
    result = scan_file(tmp_path / "document.pdf")
    assert not result.safe and result.format == "unknown"
    # Random bytes may happen to start like a pickle; whatever they are taken for, never safe.
    for seed in range(20):
        (tmp_path / "random.bin").write_bytes(random.Random(seed).randbytes(4096))
        assert not scan_file(tmp_path / "random.bin").safe


def test_a_damaged_zip_is_refused(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert not scan_file(tmp_path / "cut.pt").safe


def test_scan_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "good.pt")
    (tmp_path / "evil.pkl").write_bytes(crafted("os", "system", 0))
    assert main(["scan", str(tmp_path / "good.pt")]) == 0
    assert "good.pt: zip" in capsys.readouterr().out
    assert (
        main(["scan", str(tmp_path / "good.pt"), str(tmp_path / "evil.pkl"), "--format", "json"])
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert [r["safe"] for r in report] == [True, False]
    assert main(["scan", str(tmp_path / "missing.pt")]) == 2
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("archive/data.pkl", crafted("builtins", "exec", 4))
    assert main(["scan", str(tmp_path / "z.zip")]) == 1


# -- zip64 checkpoints: a tensor storage beyond 2 GiB ------------------------------------------

BIG = 2**31 + 64  # more than a 32-bit zip field holds: the storage member needs zip64
CHUNK = 1 << 26


class _Storage:
    """Stands for one of torch's storages: pickled as its persistent id, as torch.save does."""

    def __init__(self, key: str, nbytes: int) -> None:
        self.key, self.nbytes = key, nbytes


class _Tensor:
    """A uint8 tensor over a whole storage, pickled as torch.save pickles one."""

    def __init__(self, storage: _Storage) -> None:
        self.storage = storage

    def __reduce__(self) -> tuple[Any, ...]:
        shape = (self.storage.nbytes,)
        return (
            torch._utils._rebuild_tensor_v2,
            (self.storage, 0, shape, (1,), False, collections.OrderedDict()),
        )


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _Storage):
            return ("storage", torch.ByteStorage, obj.key, "cpu", obj.nbytes)
        return None


def torch_pickle(nbytes: int, **extra: Any) -> bytes:
    """``data.pkl`` of a state dict holding one uint8 tensor of ``nbytes`` (storage "0")."""
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump({"w": _Tensor(_Storage("0", nbytes)), **extra})
    return buffer.getvalue()


class _Holes:
    """A file whose all-zero blocks become holes: a multi-GiB member of zeros takes no disk."""

    def __init__(self, raw: Any, zeros: bytes) -> None:
        self.raw, self.zeros = raw, zeros

    def write(self, data: bytes) -> int:
        if data is self.zeros:
            self.raw.seek(len(data), os.SEEK_CUR)
        else:
            self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return int(self.raw.tell())

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return int(self.raw.seek(offset, whence))

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        """zipfile leaves a file it was given open; the raw file's owner closes it."""


def write_checkpoint(path: Path, nbytes: int, pkl: bytes) -> Path:
    """A torch zip checkpoint (stored, as torch writes them) whose storage ``data/0`` holds
    ``nbytes``: two bytes that look like a pickle's start, then zeros (holes on disk). The
    zip is written by zipfile, CRCs and zip64 records included."""
    zeros = bytes(CHUNK)
    with path.open("wb") as raw, zipfile.ZipFile(_Holes(raw, zeros), "w") as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/byteorder", "little")
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            member.write(b"\x80\x02")  # int8 [-128, 2]: storage bytes a sniffer takes for a pickle
            left = nbytes - 2
            for _ in range(left // CHUNK):
                member.write(zeros)
            member.write(bytes(left % CHUNK))
        archive.writestr("archive/version", "3\n")
    return path


def _bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (Linux), else None."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def test_the_checkpoint_builder_writes_what_torch_loads(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "small.pt", 64, torch_pickle(64))
    state = torch.load(path, weights_only=True)
    assert state["w"].dtype == torch.uint8 and state["w"].shape == (64,)
    assert state["w"][:3].tolist() == [128, 2, 0]
    # Storage bytes that begin like a pickle are tensor data, not a pickle to refuse.
    result = scan_file(path)
    assert (result.safe, result.pickles) == (True, 1), result.findings


def test_storages_are_not_taken_for_pickles_but_are_still_checked_for_numpy_objects() -> None:
    objects = io.BytesIO()
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", torch_pickle(2))
        archive.writestr("archive/data/0", b"\x80\x02")  # int8 [-128, 2]
        archive.writestr("archive/data/1", objects.getvalue())  # np.load(allow_pickle=True)
        archive.writestr("archive/extra", b"\x80\x02")  # not a storage: taken for a pickle
    result = scan_bytes(buffer.getvalue())
    assert result.pickles == 2
    assert result.findings[0] == "<bytes>:archive/data/1: a NumPy array of Python objects (pickled)"
    assert result.findings[1].startswith("<bytes>:archive/extra: not a complete pickle")
    assert len(result.findings) == 2


@pytest.fixture(scope="module")
def zip64_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A benign and a malicious checkpoint with a storage of BIG bytes, sparse on disk."""
    root = tmp_path_factory.mktemp("zip64")
    probe = root / "probe"
    with probe.open("wb") as handle:
        handle.seek(CHUNK)
        handle.write(b"\0")
    if probe.stat().st_blocks * 512 >= CHUNK:
        pytest.skip("this file system has no sparse files: the test would write 4 GiB")
    return {
        "benign": write_checkpoint(root / "benign.pt", BIG, torch_pickle(BIG)),
        "evil": write_checkpoint(root / "evil.pt", BIG, torch_pickle(BIG, evil=Evil())),
    }


@pytest.fixture(params=["read-whole", "streamed"])
def pickle_reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a zip member's pickle is read: whole (up to READ_WHOLE_BYTES), or streamed."""
    if request.param == "streamed":
        monkeypatch.setattr(pickle_scan, "READ_WHOLE_BYTES", 0)
    return str(request.param)


def test_a_zip64_checkpoint_is_scanned_without_reading_its_storage(
    zip64_checkpoints: dict[str, Path], pickle_reading: str
) -> None:
    path = zip64_checkpoints["benign"]
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("archive/data/0").file_size == BIG > 2**32 // 2
    with path.open("rb") as handle:
        handle.seek(-200, os.SEEK_END)
        assert b"PK\x06\x06" in handle.read()  # the zip64 end of central directory record
    assert path.stat().st_blocks * 512 < 1 << 20  # sparse: the test costs no disk
    before = _bytes_read()
    result, peak = _with_peak_memory(lambda: scan_file(path))
    assert result.safe, result.findings
    assert (result.format, result.pickles) == ("zip", 1)
    assert peak < 16 << 20, peak
    after = _bytes_read()
    if before is not None and after is not None:
        assert after - before < 16 << 20  # the 2 GiB storage was never read
    state = torch.load(path, mmap=True, weights_only=True)  # a real checkpoint (mapped, not read)
    assert state["w"].shape == (BIG,)


def test_a_malicious_pickle_in_a_zip64_checkpoint_is_refused(
    zip64_checkpoints: dict[str, Path], pickle_reading: str
) -> None:
    result = scan_file(zip64_checkpoints["evil"])
    assert any("refuses global posix.system" in f for f in result.findings), result.findings
    assert not Path(MARKER).exists()


# A signer and policy under which a checkpoint verifies, for provenance.torch.load.
TRAINER = KeySigner.generate()


def _trusting_policy() -> Any:
    pem = "\n".join("      " + line for line in TRAINER.public_key.pem.decode().splitlines())
    return parse_policy(
        "version: 1\nroots:\n  trainer:\n    pem: |\n"
        + pem
        + "\nrules:\n  model:\n    require:\n"
        + "      - predicateType: https://slsa.dev/provenance/v1\n        signedBy: [trainer]\n",
        base=Path("."),
    )


def _attested(path: Path) -> Path:
    statement = Statement(
        (ResourceDescriptor.for_digest(digest_path(path).digest, name=path.name),),
        "https://slsa.dev/provenance/v1",
        {"buildDefinition": {"buildType": "https://example.com/train", "resolvedDependencies": []}},
    )
    chain = path.with_suffix(".jsonl")
    chain.write_bytes(Bundle.sign_statement(statement, TRAINER).raw + b"\n")
    return chain


def test_a_pickle_claiming_more_than_2_gib_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The central directory says data.pkl holds 3 GiB (the file holds 200 bytes): the claim
    alone refuses it, before a byte of it is read -- and so the guarded loader refuses."""
    import provenance.torch

    claimed = 3 << 30
    path = tmp_path / "claims.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", torch_pickle(4))
        archive.writestr("archive/data/0", bytes(4))
        info = archive.getinfo("archive/data.pkl")
        info.file_size = info.compress_size = claimed  # what the central directory will say
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("archive/data.pkl").file_size == claimed
    result = scan_file(path)
    assert result.findings == [
        f"{path}:archive/data.pkl: a pickle of {claimed} bytes, more than the "
        f"{MAX_PICKLE_BYTES} bytes the scanner reads"
    ]
    assert main(["scan", str(path)]) == 1
    assert "more than the" in capsys.readouterr().out
    with pytest.raises(RefusedError, match=r"refusing to load .*a pickle of 3221225472 bytes"):
        provenance.torch.load(path, policy=_trusting_policy(), bundle=_attested(path))


def test_a_pickle_over_the_limit_is_refused_and_one_at_it_is_scanned(
    tmp_path: Path, pickle_reading: str
) -> None:
    """The same limit at a small scale, on a data.pkl that is really that large."""
    padding = "x" * 100_000
    pkl = torch_pickle(16, note=padding)
    path = write_checkpoint(tmp_path / "model.pt", 16, pkl)
    assert scan_file(path, max_pickle_bytes=len(pkl)).safe
    refused = scan_file(path, max_pickle_bytes=len(pkl) - 1)
    assert refused.findings == [
        f"{path}:archive/data.pkl: a pickle of {len(pkl)} bytes, more than the "
        f"{len(pkl) - 1} bytes the scanner reads"
    ]
    assert not scan_bytes(path.read_bytes(), max_pickle_bytes=len(pkl) - 1).safe
    raw = tmp_path / "model.pkl"
    raw.write_bytes(pkl)
    assert scan_file(raw, max_pickle_bytes=len(pkl)).safe
    assert "more than the" in scan_file(raw, max_pickle_bytes=100).findings[0]


def test_scanning_memory_does_not_grow_with_the_number_of_opcodes() -> None:
    """Each opcode used to leave an entry behind (8 bytes or more): a pickle of a million
    opcodes cost megabytes to scan, a 1 GiB one more memory than the machine has."""
    data = b"\x80\x02" + b"N0" * 200_000 + b"N."  # None, pop, None, pop, ...
    result, peak = _with_peak_memory(lambda: scan_bytes(data))
    assert (result.safe, result.pickles) == (True, 1)
    assert peak < 1 << 20, peak


def test_a_pickle_memoising_too_many_values_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_scan, "MAX_MEMO", 1000)
    assert scan_bytes(b"\x80\x04" + b"N\x94" * 1000 + b".").safe
    result = scan_bytes(b"\x80\x04" + b"N\x94" * 1001 + b".")
    assert result.findings == ["<bytes>: a pickle memoising more than 1000 values"]
    # Overwriting a memo entry adds no value: PUT 7 a thousand times is one entry.
    assert scan_bytes(b"\x80\x02" + b"Nq\x07" * 5000 + b".").safe

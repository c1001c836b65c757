"""The static pickle scanner: malicious checkpoints refused, real tensors and arrays accepted,
and nothing is ever executed (a payload would create a marker file)."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance.cli import main
from provenance.guard.pickle_scan import scan_bytes, scan_file

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

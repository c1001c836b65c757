"""The audit page in a real browser: headless Chromium renders it offline to a PNG, and the
picture shows the lineage graph -- nodes filled with the trusted and the refused colours.

Skipped when no Chromium (or Chrome) is installed; ``.ci/run`` installs Debian's ``chromium``.
The PNG is decoded here (zlib and the five PNG row filters) so the test needs no image library.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from provenance.report.html import COLOURS
from tests.chain_helpers import attest_test_result, attestation_id, build_chain, cli

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium installed (apt-get install chromium)"
)


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, pixel rows) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(compressed)
    stride = width * channels
    rows = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b, c = previous[i], previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
                row[i] = (row[i] + predictor) & 0xFF
        rows += row
        previous = row
    return width, height, channels, bytes(rows)


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def count_near(image: tuple[int, int, int, bytes], colour: str, tolerance: int = 4) -> int:
    """How many pixels are within ``tolerance`` of ``colour`` in every channel."""
    import numpy as np

    _, _, channels, rows = image
    values = np.frombuffer(rows, dtype=np.uint8).reshape(-1, channels)[:, :3].astype(np.int16)
    close = np.abs(values - np.array(rgb(colour), dtype=np.int16)) <= tolerance
    return int(close.all(axis=1).sum())


def screenshot(page: Path, out: Path, profile: Path) -> None:
    assert BROWSER is not None
    subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1400,1000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_the_page_renders_the_graph_with_verdict_colours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = build_chain(tmp_path / "proj", monkeypatch, capsys)
    attest_test_result(capsys, "data", "PASSED")
    attest_test_result(capsys, "model.bin", "FAILED")
    revoked = attestation_id(capsys, "https://ml-provenance.dev/attestation/dataset/v1")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        chain.policy.read_text().replace("keys/default.pub", str(chain.public_key))
        + f"revoked:\n  attestations: ['{revoked}']\n"
    )
    page = tmp_path / "report.html"
    code, _, _ = cli(capsys, "audit", "model.bin", "--policy", str(policy), "--html", str(page))
    assert code == 1
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile")
    image = decode_png(png.read_bytes())
    width, height, _, _ = image
    assert (width, height) == (1400, 1000)
    # Node fills: a node is ~214 x 100 px, so a drawn node gives thousands of pixels.
    green = count_near(image, COLOURS["trusted"][0])
    red = count_near(image, COLOURS["refused"][0])
    amber = count_near(image, COLOURS["input-refused"][0])
    assert green > 5000, green  # the training step and the screening result
    assert red > 5000, red  # the revoked dataset and the failed evaluation
    assert amber > 3000, amber  # the model, whose input is refused

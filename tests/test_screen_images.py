"""Image files as samples: decoding (:mod:`provenance.imagefile`) and image-folder datasets
screened through ``load_samples`` and ``provenance screen``, including hostile files."""

from __future__ import annotations

import functools
import io
import json
import struct
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")
import numpy as np
import yaml
from PIL import Image

from provenance.digest import build_manifest
from provenance.errors import InputError
from provenance.guard.dataset import VerifiedDataset
from provenance.imagefile import MAX_PIXELS, decode_image, image_format
from provenance.screen.engine import Options, load_samples, screen
from provenance.screen.samples import Samples
from provenance.screen.schema import Schema, parse_schema
from tests.screen_helpers import (
    FOLDER_SCHEMA,
    run,
    screen_json,
    start_project,
    write_folders,
    write_image_folders,
)


def encode(array: Any, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    (array if isinstance(array, Image.Image) else Image.fromarray(array)).save(
        buffer, fmt, **options
    )
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def blank_png(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG of ``width`` x ``height``: zeros compress ~1000:1, so
    20000 x 20000 (400 M pixels) takes about 50 kB -- a decompression bomb."""
    row = b"\0" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = bytearray()
    for start in range(0, height, 1000):
        body += compressor.compress(row * min(1000, height - start))
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", bytes(body))
        + png_chunk(b"IEND", b"")
    )


RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, size=(5, 7)).astype(np.uint8)
COLOUR = RNG.integers(0, 256, size=(5, 7, 3)).astype(np.uint8)


# -- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "a.png"), ("BMP", "a.BMP"), ("TIFF", "a.tif")])
def test_lossless_grey_and_colour_images_decode_to_their_exact_pixels(fmt: str, name: str) -> None:
    grey = decode_image(encode(GREY, fmt), name)
    assert grey.shape == (5, 7) and grey.dtype == np.uint8 and np.array_equal(grey, GREY)
    colour = decode_image(encode(COLOUR, fmt), name)
    assert colour.shape == (5, 7, 3) and colour.dtype == np.uint8
    assert np.array_equal(colour, COLOUR)


def test_every_mode_has_one_documented_array_form() -> None:
    # 1-bit: 0 and 255, as convert("L") makes it
    bits = decode_image(encode(GREY > 127, "PNG"), "b.png")
    assert bits.dtype == np.uint8 and np.array_equal(bits, np.where(GREY > 127, 255, 0))
    # alpha is dropped, not composited: the colour under a transparent pixel is kept
    rgba = np.dstack([COLOUR, np.zeros((5, 7), dtype=np.uint8)])
    assert np.array_equal(decode_image(encode(rgba, "PNG"), "t.png"), COLOUR)
    assert np.array_equal(decode_image(encode(np.dstack([GREY, GREY]), "PNG"), "la.png"), GREY)
    # palettes are expanded to RGB, also with a per-entry transparency table
    palette = Image.fromarray(COLOUR).quantize(8)
    expected = np.asarray(palette.convert("RGB"))
    assert np.array_equal(decode_image(encode(palette, "PNG"), "p.png"), expected)
    with_alpha = encode(palette, "PNG", transparency=bytes([0, 128] + [255] * 6))
    assert Image.open(io.BytesIO(with_alpha)).info["transparency"]
    assert np.array_equal(decode_image(with_alpha, "p.png"), expected)
    # a GIF is a palette image: even a grey one reads as RGB; the first frame only
    frames = [Image.fromarray(GREY), Image.fromarray(255 - GREY)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    gif = decode_image(buffer.getvalue(), "anim.gif")
    assert gif.shape == (5, 7, 3) and np.array_equal(gif[..., 0], GREY)
    # deeper images keep their values
    sixteen = (GREY.astype(np.uint16) * 257).astype(np.uint16)
    for fmt, name in (("PNG", "d.png"), ("TIFF", "d.tiff")):
        decoded = decode_image(encode(sixteen, fmt), name)
        assert decoded.dtype == np.uint16 and np.array_equal(decoded, sixteen)
    as_float = decode_image(encode(GREY.astype(np.float32) / 7, "TIFF"), "f.tif")
    assert as_float.dtype == np.float32 and np.allclose(as_float, GREY / 7)
    cmyk = decode_image(encode(Image.fromarray(COLOUR).convert("CMYK"), "TIFF"), "c.tif")
    assert cmyk.shape == (5, 7, 3) and cmyk.dtype == np.uint8
    # lossy formats: the shape and roughly the pixels
    jpeg = decode_image(encode(np.full((8, 8, 3), 200, dtype=np.uint8), "JPEG"), "j.JPEG")
    assert jpeg.shape == (8, 8, 3) and abs(int(jpeg.mean()) - 200) <= 2
    webp = decode_image(encode(COLOUR, "WEBP", lossless=True), "w.webp")
    assert np.array_equal(webp, COLOUR)


def test_formats_are_chosen_by_extension_only() -> None:
    assert [image_format(p) for p in ("a.PNG", "b.jpeg", "c.Tiff", "d.npy", "e", "x.png/y")] == [
        "PNG",
        "JPEG",
        "TIFF",
        None,
        None,
        None,
    ]
    with pytest.raises(InputError, match=r"notes\.txt: not an image file"):
        decode_image(b"hello", "cat/notes.txt")


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (encode(COLOUR, "JPEG"), "x.png"),
        (encode(COLOUR, "PNG"), "x.jpg"),
        (encode(COLOUR, "BMP"), "x.gif"),
        (encode(COLOUR, "GIF"), "x.tiff"),
        (encode(COLOUR, "PNG"), "x.webp"),
        (encode(COLOUR, "TIFF"), "x.bmp"),
        (b"not an image at all", "x.png"),
        (b"", "x.png"),
    ],
)
def test_content_that_is_not_the_extensions_format_is_refused(content: bytes, name: str) -> None:
    with pytest.raises(InputError, match=rf"^{name}: not a readable [A-Z]+ image"):
        decode_image(content, name)


def test_no_format_is_sniffed_from_the_content() -> None:
    # Pillow would identify this as EPS (and hand it to Ghostscript on load)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
    assert Image.open(io.BytesIO(eps)).format == "EPS"
    with pytest.raises(InputError, match="not a readable PNG image"):
        decode_image(eps, "x.png")


@pytest.mark.parametrize("cut", [12, 40, 0.5, 0.9])
def test_a_truncated_image_is_refused_naming_the_file(cut: float) -> None:
    data = encode(COLOUR, "PNG")
    end = len(data) - int(cut) if cut >= 1 else int(len(data) * cut)
    with pytest.raises(InputError) as caught:
        decode_image(data[:end], "cat/001.png", what="cat/001.png (sha256:ab)")
    assert caught.value.diagnostics().startswith("cat/001.png (sha256:ab): ")


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "t.jpg"), ("BMP", "t.bmp"), ("WEBP", "t.webp")])
def test_other_truncated_formats_are_refused(fmt: str, name: str) -> None:
    data = encode(RNG.integers(0, 256, size=(16, 16, 3)).astype(np.uint8), fmt)
    with pytest.raises(InputError, match=rf"^{name}: "):
        decode_image(data[: len(data) // 2], name)


def test_a_corrupt_png_is_refused_by_its_checksum() -> None:
    data = bytearray(encode(COLOUR, "PNG"))
    data[data.index(b"IDAT") + 10] ^= 0x01  # one bit of the compressed pixels
    with pytest.raises(InputError, match=r"^c\.png: cannot decode this PNG image"):
        decode_image(bytes(data), "c.png")


def test_a_decompression_bomb_is_refused() -> None:
    bomb = blank_png(20000, 20000)
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match="decompression bomb"):
        decode_image(bomb, "bomb.png")


def test_the_declared_size_is_checked_before_anything_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import ImageFile

    def no_decoding(self: Any) -> Any:
        raise AssertionError("pixels were decoded")

    # Pillow's own limit switched off: ours still holds
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(InputError, match=r"declares 20000x20000 pixels, above the limit of"):
        decode_image(blank_png(20000, 20000), "bomb.png")
    side = int(MAX_PIXELS**0.5) + 1  # above our limit, below Pillow's
    with pytest.raises(InputError, match=rf"declares {side}x{side} pixels"):
        decode_image(blank_png(side, side), "big.png")
    with pytest.raises(InputError, match="declares 64x64 pixels, above the limit of 1000"):
        decode_image(encode(np.zeros((64, 64), dtype=np.uint8), "PNG"), "s.png", max_pixels=1000)


def test_pillows_bomb_warning_is_an_error_whatever_the_warning_filters() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as outside pytest: a warning would only be printed
        with pytest.raises(InputError, match="possible decompression bomb"):
            decode_image(blank_png(10000, 10000), "big.png", max_pixels=10**9)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_without_pillow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(GREY, "PNG")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(InputError) as caught:
        decode_image(data, "a.png", extra="torch")
    text = caught.value.diagnostics()
    assert text == (
        "a.png: reading image files needs Pillow, which is not installed "
        "(hint: pip install 'ml-provenance[torch]')"
    )


# -- image-folder datasets --------------------------------------------------------------------


def schema_of(text: str) -> Schema:
    return parse_schema(yaml.safe_load(text), digest="0" * 64)


def load(path: Path, schema: Schema) -> Samples:
    return load_samples(VerifiedDataset.from_manifest(path, build_manifest(path)), schema)


def test_image_folders_read_like_npy_folders(tmp_path: Path) -> None:
    images = write_image_folders(tmp_path / "imgs", formats=("png", "bmp", "TIF"))
    arrays = write_folders(tmp_path / "npy")
    (images / "README.txt").write_text("not a sample")
    schema = schema_of(FOLDER_SCHEMA)
    from_images, from_arrays = load(images, schema), load(arrays, schema)
    assert len(from_images) == 90 and from_images.ignored == ["README.txt"]
    assert from_images.ids[:3] == ["0/000.png", "0/001.bmp", "0/002.TIF"]
    assert from_images.sample_shape == (4, 4) == from_arrays.sample_shape
    assert from_images.labels is not None and from_arrays.labels is not None
    assert list(from_images.labels) == list(from_arrays.labels)
    assert np.array_equal(from_images.numeric, from_arrays.numeric)
    assert from_images.keys == from_arrays.keys  # keyed by decoded pixels, not file bytes
    screening = screen(from_images, schema, Options())
    assert screening.result == "PASSED", [(r.name, r.result) for r in screening.results]


def test_duplicates_are_found_by_pixels_across_image_formats(tmp_path: Path) -> None:
    root = write_image_folders(tmp_path / "imgs", formats=("png",))
    pixels = np.asarray(Image.open(root / "1" / "004.png"))
    Image.fromarray(pixels).save(root / "1" / "copy.bmp")  # same pixels, other bytes
    Image.fromarray(pixels).save(root / "2" / "relabelled.tiff")  # and under another label
    schema = schema_of(FOLDER_SCHEMA)
    samples = load(root, schema)
    results = {r.name: r for r in screen(samples, schema, Options()).results}
    assert [samples.ids[i] for i in results["duplicates"].flagged] == ["1/copy.bmp"]
    conflicts = {samples.ids[i] for i in results["label_conflicts"].flagged}
    assert conflicts == {"1/004.png", "1/copy.bmp", "2/relabelled.tiff"}


def test_images_of_another_shape_or_mode_are_schema_violations(tmp_path: Path) -> None:
    root = write_image_folders(tmp_path / "imgs")
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(root / "0" / "small.png")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / "1" / "colour.png")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint16)).save(root / "2" / "deep.png")
    declared = schema_of(FOLDER_SCHEMA)
    samples = load(root, declared)
    result = screen(samples, declared, Options()).results[0]
    assert result.name == "schema" and result.result == "FAILED"
    assert {samples.ids[i] for i in result.flagged} == {"0/small.png", "1/colour.png", "2/deep.png"}
    problems = {samples.ids[v.index]: v.message for v in samples.violations if v.index is not None}
    assert problems["2/deep.png"] == "dtype uint16 is not uint8"
    # without a declared shape, the first sample's shape is the one the others must have
    undeclared = schema_of("version: 1\nformat: folders\n")
    samples = load(root, undeclared)
    problems = {samples.ids[v.index]: v.message for v in samples.violations if v.index is not None}
    assert problems == {
        "0/small.png": "shape (3, 3) differs from (4, 4)",
        "1/colour.png": "shape (4, 4, 3) differs from (4, 4)",
    }


def test_colour_images_are_height_width_channels(tmp_path: Path) -> None:
    root = tmp_path / "rgb"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(5):
            pixels = RNG.integers(0, 256, size=(6, 5, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    samples = load(root, schema_of("version: 1\nformat: folders\nlabels: [cat, dog]\n"))
    assert samples.sample_shape == (6, 5, 3) and samples.numeric.shape == (10, 90)
    first = np.asarray(Image.open(root / "cat" / "0.png"))
    assert np.array_equal(samples.numeric[0].reshape(6, 5, 3), first)


def test_a_mix_of_npy_and_image_samples_is_refused(tmp_path: Path) -> None:
    root = write_image_folders(tmp_path / "imgs")
    np.save(root / "0" / "extra.npy", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(
        InputError, match=r"mixes \.npy samples \(0/extra\.npy, \.\.\.\) with image"
    ):
        load(root, schema_of(FOLDER_SCHEMA))
    # screening one split of images beside another split of arrays is fine
    split = tmp_path / "split"
    write_image_folders(split / "train")
    write_folders(split / "test")
    samples = load(split, schema_of(FOLDER_SCHEMA + "splits: [train]\n"))
    assert len(samples) == 90 and all(i.startswith("train/") for i in samples.ids)


# -- provenance screen ------------------------------------------------------------------------


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    root = start_project(tmp_path / "proj", monkeypatch, capsys)
    (root / "folders.yaml").write_text(FOLDER_SCHEMA)
    return root


def add(capsys: pytest.CaptureFixture[str], path: str) -> None:
    code, _, err = run(capsys, "dataset", "add", path, "--name", path)
    assert code == 0, err


def test_screen_and_sanitize_an_image_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_image_folders(project / "imgs", formats=("png", "jpg"))
    (root / "0" / "copy.png").write_bytes((root / "0" / "000.png").read_bytes())
    add(capsys, "imgs")
    code, document = screen_json(capsys, "imgs", "--schema", "folders.yaml", "--sanitize", "out")
    assert code == 0  # one duplicate only warns
    figures = document["statements"]["screening"]["predicate"]
    assert figures["dataset"]["format"] == "folders" and figures["dataset"]["samples"] == 91
    assert figures["checks"]["duplicates"]["result"] == "WARNED"
    assert figures["checks"]["schema"]["result"] == "PASSED"
    assert not (project / "out" / "0" / "copy.png").exists()
    kept = sorted(p.relative_to(project / "out") for p in (project / "out").rglob("*.*"))
    assert len(kept) == 90
    assert all((project / "out" / p).read_bytes() == (root / p).read_bytes() for p in kept)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("truncated", "1/bad.png (sha256:"),
        ("jpeg-named-png", "1/bad.png (sha256:"),
        ("bomb", "decompression bomb"),
    ],
)
def test_a_hostile_image_is_one_line_and_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], bad: str, message: str
) -> None:
    root = write_image_folders(project / "imgs", n_per_class=5, formats=("png",))
    if bad == "truncated":
        data = (root / "1" / "000.png").read_bytes()[:-30]
    elif bad == "jpeg-named-png":
        data = encode(np.zeros((4, 4), dtype=np.uint8), "JPEG")
    else:
        data = blank_png(20000, 20000)
    (root / "1" / "bad.png").write_bytes(data)
    add(capsys, "imgs")
    code, out, err = run(capsys, "screen", "imgs", "--schema", "folders.yaml", "--format", "json")
    assert code == 2 and out == ""
    assert err.startswith("provenance: error: ") and message in err, err
    assert "1/bad.png" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert json.loads(run(capsys, "log", "--format", "json")[1])[-1]["predicateType"].endswith(
        "/dataset/v1"
    )  # nothing was recorded for the failed screening

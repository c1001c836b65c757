"""The evaluation's default decoder on image files: torchvision ``ToTensor`` tensors
(channels first, 8-bit scaled to [0, 1]), labels from folders, and one-line refusals."""

from __future__ import annotations

import io
import sys
from typing import Any

import numpy
import pytest

from provenance.errors import InputError

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from provenance.evaluate.data import DefaultDecoder, image_tensor  # noqa: E402


def encode(pixels: Any, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    numpy.save(buffer, array)
    return buffer.getvalue()


RNG = numpy.random.default_rng(3)
COLOUR = RNG.integers(0, 256, size=(6, 5, 3)).astype(numpy.uint8)
GREY = RNG.integers(0, 256, size=(6, 5)).astype(numpy.uint8)


def test_colour_images_are_channels_first_and_scaled_to_one() -> None:
    decode = DefaultDecoder.for_files(["cat/a.png", "dog/b.bmp"], ("cat", "dog"))
    tensor, label = decode(encode(COLOUR), "cat/a.png")
    assert label == 0 and tensor.dtype == torch.float32 and tuple(tensor.shape) == (3, 6, 5)
    for channel in range(3):  # red first, as stored
        expected = torch.from_numpy(COLOUR[..., channel].astype(numpy.float32) / 255.0)
        assert torch.equal(tensor[channel], expected)
    tensor, label = decode(encode(COLOUR, "BMP"), "dog/b.bmp")
    assert label == 1 and float(tensor.max()) <= 1.0 and float(tensor.min()) >= 0.0


def test_grey_images_have_one_channel_and_deep_ones_are_unscaled() -> None:
    grey, _ = DefaultDecoder({"0": 0})(encode(GREY), "0/g.PNG")
    assert tuple(grey.shape) == (1, 6, 5)
    assert torch.equal(grey[0], torch.from_numpy(GREY.astype(numpy.float32) / 255.0))
    deep = (GREY.astype(numpy.uint16) * 200).astype(numpy.uint16)
    tensor, _ = DefaultDecoder({"0": 0})(encode(deep), "0/d.png")
    assert torch.equal(tensor[0], torch.from_numpy(deep.astype(numpy.float32)))
    with pytest.raises(InputError, match="not \\(H, W\\) or \\(H, W, C\\)"):
        image_tensor(numpy.zeros((2, 2, 2, 2), dtype=numpy.uint8))


def test_npy_samples_are_decoded_as_before() -> None:
    array = RNG.normal(size=(8, 8)).astype(numpy.float64)
    decode = DefaultDecoder.for_files(["1/a.npy"], ("1",))
    tensor, label = decode(npy(array), "1/a.npy")
    assert label == 1 and torch.equal(tensor, torch.from_numpy(array.astype(numpy.float32)))


def test_a_mix_of_images_and_other_files_is_refused_up_front() -> None:
    with pytest.raises(InputError, match=r"mixes image samples \(a/1\.png, \.\.\.\) with other"):
        DefaultDecoder.for_files(["a/1.png", "a/2.npy"], ("a",))


def test_a_sample_of_another_shape_is_refused_naming_both() -> None:
    decode = DefaultDecoder({"a": 0})
    decode(encode(GREY), "a/1.png")
    decode(encode(GREY), "a/2.png")
    with pytest.raises(InputError) as caught:
        decode(encode(COLOUR), "a/3.png")
    assert caught.value.diagnostics().startswith(
        "a/3.png decodes to shape (3, 6, 5), a/1.png to (1, 6, 5): the default decoder does "
        "not resize"
    )


def test_hostile_images_are_input_errors_naming_the_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decode = DefaultDecoder({"a": 0})
    with pytest.raises(InputError, match=r"^a/cut\.png: cannot decode this PNG image"):
        decode(encode(COLOUR)[:-30], "a/cut.png")
    with pytest.raises(InputError, match=r"^a/j\.png: not a readable PNG image"):
        decode(encode(COLOUR, "JPEG"), "a/j.png")
    data = encode(GREY)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(InputError) as caught:
        decode(data, "a/g.png")
    assert "pip install 'ml-provenance[torch]'" in caught.value.diagnostics()

"""Decoding one image file's verified bytes into a NumPy array, with Pillow, refusing hostile input.

Why this module exists: image-folder datasets (``cat/001.png``) are screened
(:mod:`provenance.screen.arrays`) and evaluated on (:mod:`provenance.evaluate.data`), and both
must see the *same* array for the same file, decoded under the same refusals. Its boundary:
bytes in (already hash-verified by the caller's hash-on-read handle; no path is ever opened
here), an array or an :class:`~provenance.errors.InputError` naming the file out. Layouts,
labels and tensors are the callers' business.

Formats are chosen by the file's extension (case-insensitive), never by sniffing the content:
``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.gif`` (first frame), ``.tif``/``.tiff`` (first
page) and ``.webp`` (first frame). Pillow is told the one format the extension names
(``Image.open(..., formats=[...])``), so a ``.png`` holding a JPEG -- or an EPS, which Pillow
would hand to Ghostscript -- is refused instead of decoded as whatever it claims inside.

Refusals, each a one-line :class:`~provenance.errors.InputError`: content that is not of the
extension's format; an image whose *declared* size exceeds :data:`MAX_PIXELS`, checked after
``Image.open`` has parsed the header and before ``load()`` decodes a pixel (Pillow's own
``DecompressionBombWarning`` becomes an error too, whatever the warning filters say);
truncated or corrupt data; Pillow not installed (the hint names the extra to install).

The array form, by Pillow mode:

* ``1`` (1-bit), ``L`` (8-bit grey): ``(H, W)`` uint8, 1-bit pixels as 0 and 255 (Pillow's
  ``convert("L")``); ``LA`` and ``La`` lose their alpha the same way.
* ``I;16`` and its byte orders (16-bit grey PNG and TIFF): ``(H, W)`` uint16.
* ``I`` (32-bit integer): ``(H, W)`` int32; ``F`` (32-bit float TIFF): ``(H, W)`` float32.
* every other mode (``RGB``, ``RGBA``, ``P`` palettes, ``CMYK``, ``YCbCr``, ...): ``(H, W, 3)``
  uint8 by ``convert("RGB")``, as torchvision's default image loader does: palettes are
  expanded, alpha and transparency are dropped (not composited), so the colour under a
  transparent pixel is what is screened and evaluated.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt
    from PIL import Image as PILImage

# extension (lower case) -> the one Pillow format it may hold
IMAGE_FORMATS: Mapping[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

# The largest declared width x height decoded: 32 Mi pixels (8192 x 4096), well above any
# training sample and below Pillow's own limit (about 89 M), so a decompression bomb -- a few
# kilobytes declaring 20000 x 20000 pixels -- is refused before its pixels are allocated.
MAX_PIXELS = 1 << 25

_GREY = ("1", "L", "LA", "La")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def image_format(path: str) -> str | None:
    """The Pillow format ``path``'s extension names (case-insensitive), or None."""
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    return IMAGE_FORMATS.get(path[dot:].lower())


def is_image(path: str) -> bool:
    """Whether ``path`` has one of the image extensions this module decodes."""
    return image_format(path) is not None


def mixed_kinds(paths: Sequence[str]) -> tuple[str, str] | None:
    """The first image and the first other file of ``paths`` when they hold both, else None.

    A dataset's samples are all images or all something else (``.npy``): images are decoded
    by rule, other files are whatever their writer chose, and nothing says the two agree.
    """
    image = next((p for p in paths if is_image(p)), None)
    other = next((p for p in paths if not is_image(p)), None)
    return (image, other) if image is not None and other is not None else None


def _array(image: PILImage.Image) -> npt.NDArray[Any]:
    """The decoded ``image`` as an array (see the module docstring for the form)."""
    import numpy as np

    mode = image.mode
    if mode in _GREY:
        return np.asarray(image if mode == "L" else image.convert("L"), dtype=np.uint8)
    if mode in _SIXTEEN_BIT:
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        return np.asarray(image).astype(np.int32)
    if mode == "F":
        return np.asarray(image).astype(np.float32)
    if mode in ("RGBA", "RGBa", "PA") or (mode != "RGB" and "transparency" in image.info):
        # via RGBA: Pillow warns when it drops a palette's byte-string transparency directly
        image = image.convert("RGBA")
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def decode_image(
    data: bytes,
    path: str,
    *,
    what: str | None = None,
    extra: str = "screen",
    max_pixels: int = MAX_PIXELS,
) -> npt.NDArray[Any]:
    """The image ``data`` (the verified bytes of the file ``path``) as an array.

    ``path``'s extension chooses the format; ``what`` names the file in errors (default
    ``path``); ``extra`` is the ml-provenance extra that installs Pillow, for the hint.
    """
    what = what or path
    expected = image_format(path)
    if expected is None:
        raise InputError(
            f"{what}: not an image file",
            hint="image samples end in " + ", ".join(sorted(IMAGE_FORMATS)),
        )
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:
        raise InputError(
            f"{what}: reading image files needs Pillow, which is not installed",
            hint=f"pip install 'ml-provenance[{extra}]'",
        ) from e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if expected == "PNG":
                # CRCs and chunk structure up to IEND, no pixels decoded: without this a PNG
                # cut short after its last pixel row decodes as if whole
                with Image.open(io.BytesIO(data), formats=[expected]) as image:
                    image.verify()
            with Image.open(io.BytesIO(data), formats=[expected]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InputError(
                        f"{what}: declares {width}x{height} pixels, above the limit of "
                        f"{max_pixels}: refused as a possible decompression bomb",
                        hint="resize the image; a training sample is not this large",
                    )
                image.load()
                return _array(image)
    except UnidentifiedImageError as e:
        raise InputError(
            f"{what}: not a readable {expected} image (its content does not match its "
            "extension, or it is damaged)"
        ) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{what}: refused as a possible decompression bomb ({e})") from e
    except (
        OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error
    ) as e:  # fmt: skip
        # Pillow reports truncated and corrupt data with any of these
        raise InputError(
            f"{what}: cannot decode this {expected} image ({type(e).__name__}: {e})"
        ) from e


__all__ = ["IMAGE_FORMATS", "MAX_PIXELS", "decode_image", "image_format", "is_image"]

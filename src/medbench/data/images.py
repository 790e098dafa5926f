"""Image files: decode any common PNG/JPEG flavour or a DICOM image to 8-bit RGB, and find every broken file
at once."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from medbench.data.dicom import DicomImageError, is_dicom, read_dicom_image
from medbench.errors import ImageError

logger = logging.getLogger(__name__)

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "decode_plain_image", "read_image", "verify_images"]

MAX_IMAGE_PIXELS = 2**26
"""The most pixels medbench decodes from one file (8192 × 8192, 192 MiB as 8-bit RGB): four times a large
digital mammogram, so a few-KB "decompression bomb" cannot exhaust memory. The same limit holds for
training, preprocessing, predict and everything else, as every image is decoded here."""
MAX_IMAGE_BYTES = 2**30
"""The largest image file medbench reads (1 GiB): an uncompressed 16-bit RGB image of MAX_IMAGE_PIXELS is
384 MiB, so a larger file is not an image medbench can use."""

_PROGRESS_THRESHOLD = 500
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class _UnreadableImageError(Exception):
    """Internal: why a file cannot be decoded (turned into `ImageError` or a verify reason)."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to a ``uint8`` array of shape (height, width, 3), RGB.

    Grayscale is repeated over three channels, alpha is dropped (not composited), palette and CMYK
    images are converted, and 16-bit (grayscale or colour) or float images are scaled linearly from
    their own minimum and maximum to 0..255 (with a warning, as the scaling is image-dependent), so a
    12-bit X-ray stored in a 16-bit PNG keeps its contrast. The whole file is decoded, so truncated
    files fail here rather than later in training.
    """
    try:
        with _decoded(path) as image:
            return _to_rgb(image, path)
    except _UnreadableImageError as err:
        raise ImageError(str(err), file=path) from err


def decode_plain_image(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The pixels of a plain, complete 8-bit gray or colour PNG/JPEG decoded by OpenCV, else None.

    Returns uint8 (height, width) gray or (height, width, 3) **BGR**. Only files whose header says 8-bit
    gray or 3-channel colour (PNG colour types 0 and 2 at depth 8; baseline or progressive JPEG with 8-bit
    samples and 1 or 3 components) and that end where they should (PNG: the IEND chunk; JPEG: the EOI
    marker) are decoded here, so the pixels equal `read_image`'s for these files (up to JPEG decoder
    rounding) and a file always takes the same path. Everything else — missing, empty, truncated,
    16-bit, alpha, palette, CMYK, other formats — gives None: `read_image` decodes it or says why not.
    A fast path for the preprocessing cache (OpenCV decodes faster than Pillow and releases the GIL).
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IMAGE_BYTES:
            return None
        with open(path, "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError:
        return None
    size = _plain_png(data) or _plain_jpeg(data)
    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        return None
    return image


def _plain_png(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG ending in IEND whose IHDR says 8-bit gray (0) or RGB (2), without a tRNS
    chunk; None for any other file."""
    plain = (
        data.startswith(_PNG_SIGNATURE)
        and data.endswith(_PNG_END)
        and data[12:16] == b"IHDR"
        and len(data) > 33
        and data[24] == 8
        and data[25] in (0, 2)
        and b"tRNS" not in data[33 : data.find(b"IDAT")]
    )
    return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) if plain else None


def _plain_jpeg(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG ending in EOI whose frame header says 8-bit samples and 1 or 3 components
    (not CMYK); None for any other file."""
    if not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
        return None
    position, end = 2, len(data) - 9
    while position < end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_FRAME_MARKERS:
            if data[position + 4] != 8 or data[position + 9] not in (1, 3):
                return None
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            return int.from_bytes(data[position + 7 : position + 9], "big"), height
        if marker in (0xD8, 0xD9, 0xDA) or 0xD0 <= marker <= 0xD7:  # no frame header before the scan
            return None
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def verify_images(
    paths: Sequence[str | os.PathLike[str]],
    workers: int = 2,
    *,
    progress: bool | None = None,
) -> list[tuple[str, str]]:
    """Fully decode every file and return ``(path, reason)`` for each one that fails, in input order.

    Decoding runs on `workers` threads (Pillow releases the GIL while decoding). A progress bar is
    shown for more than a few hundred files unless `progress` says otherwise.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    show = len(paths) > _PROGRESS_THRESHOLD if progress is None else progress
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(
            tqdm(pool.map(_problem, paths), total=len(paths), desc="verifying images", unit="img", disable=not show)
        )
    bad = [(str(path), reason) for path, reason in zip(paths, reasons, strict=True) if reason is not None]
    if bad:
        logger.warning("%d of %d image(s) cannot be decoded, e.g. %s: %s", len(bad), len(paths), *bad[0])
    return bad


def _problem(path: str | os.PathLike[str]) -> str | None:
    """The reason `path` cannot be decoded, or None when it decodes."""
    try:
        with _decoded(path):
            return None
    except _UnreadableImageError as err:
        return str(err)


@contextmanager
def _decoded(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """Open and fully decode an image, closing the file afterwards; failures raise `_UnreadableImageError`."""
    path = Path(path)
    size = _regular_file_size(path)
    if size == 0:
        raise _UnreadableImageError("file is empty (0 bytes); expected image data (was a download interrupted?)")
    if size > MAX_IMAGE_BYTES:
        raise _UnreadableImageError(
            f"file is {size / 2**30:.1f} GiB; expected an image file of at most {MAX_IMAGE_BYTES / 2**30:g} GiB"
        )
    if is_dicom(path):
        try:
            pixels = read_dicom_image(path, MAX_IMAGE_PIXELS)
        except DicomImageError as err:
            raise _UnreadableImageError(str(err)) from None
        with Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L") as image:
            yield image
        return
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise _UnreadableImageError(
            "is not an image Pillow can read; expected a PNG, JPEG, DICOM or other image file"
        ) from None
    except Image.DecompressionBombError as err:
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        detail = f"{int(pixels[1]) / 1e6:.1f} megapixels" if pixels else f"Pillow: {err}"
        raise _UnreadableImageError(_too_large(detail)) from err
    except OSError as err:
        raise _UnreadableImageError(f"cannot be opened ({err}); expected a readable image file") from err
    with image:
        _check_pixel_count(image.size)
        try:
            image.load()
        except Exception as err:  # decoders raise OSError, SyntaxError, ValueError, zlib.error, ...
            raise _UnreadableImageError(
                f"is truncated or corrupt ({type(err).__name__}: {err}); "
                f"expected a complete {image.format or 'image'} file"
            ) from err
        yield image


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _regular_file_size(path: Path) -> int:
    """The size of `path` (a symlink is followed) when it is a regular file; anything else cannot be an image,
    and opening a FIFO or a device would block or read without end."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise _UnreadableImageError(
                f"is a link to {os.readlink(path)!s:.200}, which does not exist; expected an image file"
            ) from None
        raise _UnreadableImageError("file does not exist; expected an image file at this path") from None
    except OSError as err:
        raise _UnreadableImageError(
            f"file cannot be read ({err.strerror or err}); expected a readable image file"
        ) from err
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a regular file")
    link = f" (a link to {os.path.realpath(path)!s:.200})" if path.is_symlink() else ""
    if kind == "a folder" and not link:
        raise _UnreadableImageError("is a folder; expected an image file")
    raise _UnreadableImageError(f"is {kind}{link}, not a regular file; expected an image file")


def _check_pixel_count(size: tuple[int, int]) -> None:
    """Refuse an image with more than MAX_IMAGE_PIXELS before decoding it, with what decoding would need."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise _UnreadableImageError(
            _too_large(
                f"{width}×{height} = {width * height / 1e6:.1f} megapixels, "
                f"{width * height * 3 / 2**30:.1f} GiB decoded as RGB"
            )
        )


def _too_large(detail: str) -> str:
    return (
        f"is too large to decode safely ({detail}); expected at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels "
        "(8192×8192), so that one file cannot exhaust memory"
    )


def _to_rgb(image: Image.Image, path: str | os.PathLike[str]) -> np.ndarray:
    mode = image.mode
    if image.format == "PNG" and mode in ("RGB", "RGBA", "LA") and _png_bit_depth(path) == 16:
        return _deep_colour_png(path)
    if mode in _HIGH_DEPTH_MODES:
        gray = _scaled_to_uint8(np.asarray(image), mode, path)
    elif mode in ("L", "1"):
        gray = np.asarray(image.convert("L") if mode == "1" else image, dtype=np.uint8)
    elif mode in ("LA", "La"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    elif mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    elif mode == "P" and "transparency" in image.info:
        return np.asarray(image.convert("RGBA").convert("RGB"), dtype=np.uint8)
    else:  # RGBA, RGBa, PA, P, CMYK, YCbCr, LAB, HSV: Pillow drops alpha / converts the colour space
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[:, :, np.newaxis], 3, axis=2)


def _png_bit_depth(path: str | os.PathLike[str]) -> int:
    """The bit depth in a PNG's IHDR chunk (byte 24 of the file)."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    return header[24] if len(header) == 26 and header[12:16] == b"IHDR" else 8


def _deep_colour_png(path: str | os.PathLike[str]) -> np.ndarray:
    """A 16-bit colour (or gray + alpha) PNG, which Pillow cuts to its high byte, read whole by OpenCV."""
    values = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != np.uint16 or values.ndim != 3:
        raise _UnreadableImageError("is a 16-bit colour PNG OpenCV cannot decode; expected a complete PNG file")
    rgb = cv2.cvtColor(values[:, :, :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(_scaled_to_uint8(rgb, "16-bit colour PNG", path))


def _scaled_to_uint8(values: np.ndarray, mode: str, path: str | os.PathLike[str]) -> np.ndarray:
    """Scale a high-bit-depth array linearly from its [min, max] over all channels to [0, 255]."""
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    logger.warning("%s: %s image (values %g..%g) scaled to 8-bit from its own range", path, mode, low, high)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def unreadable_images_error(problems: Sequence[tuple[str, str]], *, shown: int = 20) -> ImageError:
    """One error listing every unreadable image (the first `shown` by name) with its reason."""
    listing = "\n".join(f"  {path}: {reason}" for path, reason in problems[:shown])
    more = f"\n  … and {len(problems) - shown} more" if len(problems) > shown else ""
    return ImageError(f"{len(problems)} image(s) cannot be read as images:\n{listing}{more}")

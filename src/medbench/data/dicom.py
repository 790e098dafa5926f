"""DICOM images: one frame decoded to 8-bit display values as a radiologist's viewer shows them.

The stored values go through the modality LUT (Rescale Slope/Intercept, so CT is in HU), then the
file's VOI transformation (its first Window Center/Width with the VOI LUT Function, or its VOI LUT
Sequence) onto 0..255; a file without one is scaled from its own range, as a 16-bit PNG is.
MONOCHROME1 (high values dark, as many CR and DX files are stored) is inverted after the VOI step, so
bone is bright in every image. A multi-frame file is refused: it is a volume (or a cine loop), not one
image, and taking its first frame silently would train on an arbitrary slice. Compressed transfer
syntaxes decode through pylibjpeg (JPEG, JPEG-LS, JPEG 2000) and pydicom's own RLE decoder.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DicomImageError", "is_dicom", "read_dicom_image"]

PREAMBLE = 128
MAGIC = b"DICM"
DEFER_BYTES = 2**16
"""Elements larger than this (the pixel data) are read from the file only when used."""


class DicomImageError(Exception):
    """Why a DICOM file cannot give one image (the reason only; the caller names the file)."""


def is_dicom(path: str | os.PathLike[str]) -> bool:
    """Whether `path` starts like a DICOM Part 10 file (the "DICM" marker after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PREAMBLE + len(MAGIC))
    except OSError:
        return False
    return head[PREAMBLE:] == MAGIC


def read_dicom_image(path: str | os.PathLike[str], max_pixels: int) -> np.ndarray:
    """The display values of a single-frame DICOM image: uint8 (rows, columns) gray or (rows, columns, 3) RGB.

    The file is parsed once with its large elements (the pixel data) deferred, so a file of more than
    `max_pixels` pixels, a multi-frame file or a file without pixel data is refused from its header,
    before any pixel is read.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, defer_size=DEFER_BYTES)
    except (InvalidDicomError, OSError, ValueError, KeyError, EOFError) as error:
        raise DicomImageError(
            f"is not a readable DICOM file ({type(error).__name__}: {_detail(error)}); expected a complete DICOM file"
        ) from None
    rows, columns, frames = (
        _whole(dataset, name, default) for name, default in (("Rows", 0), ("Columns", 0), ("NumberOfFrames", 1))
    )
    if rows * columns == 0:
        raise DicomImageError(
            "holds no image (no Rows/Columns: a report or other non-image object); expected a DICOM image"
        )
    if rows * columns > max_pixels:
        raise DicomImageError(
            f"is too large to decode safely ({columns}×{rows} = {rows * columns / 1e6:.1f} megapixels); expected at "
            f"most {max_pixels / 1e6:.1f} megapixels, so that one file cannot exhaust memory"
        )
    if frames != 1:
        raise DicomImageError(
            f"has {frames} frames; expected a single-frame image (a multi-frame file is a volume or a cine loop, "
            "and no frame of it stands for the whole)"
        )
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    try:
        stored = dataset.pixel_array
    except Exception as error:  # pydicom raises RuntimeError, NotImplementedError, ValueError, … per decoder
        named = f"{syntax.name} ({syntax})" if syntax is not None else "not given"
        raise DicomImageError(
            f"cannot decode its pixel data with transfer syntax {named} ({type(error).__name__}: "
            f"{_detail(error)}); expected a transfer syntax pydicom and pylibjpeg decode"
        ) from None
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if stored.ndim == 3:
        if photometric not in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"):
            raise DicomImageError(
                f"has {stored.shape[2]} samples per pixel with photometric interpretation {photometric}; "
                "expected RGB or YBR colour"
            )
        return _colour(stored, path)
    return _display(stored, dataset, photometric, path)


def _detail(error: Exception) -> str:
    """An exception's text on one line, without object addresses (which differ from run to run), cut short."""
    return re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "<data>", " ".join(str(error).split()))[:300]


def _whole(header: object, name: str, default: int) -> int:
    value = getattr(header, name, None)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise DicomImageError(f"has {name} {str(value)[:40]!r}; expected a whole number") from None


def _colour(stored: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """RGB pixels (pydicom already converts YBR to RGB) as uint8; deeper samples scaled from their range."""
    if stored.dtype == np.uint8:
        return np.ascontiguousarray(stored)
    return _own_range(stored.astype(np.float64), path)


def _display(stored: np.ndarray, dataset: object, photometric: str, path: str | os.PathLike[str]) -> np.ndarray:
    """Modality LUT, VOI transformation onto 0..255, MONOCHROME1 inversion."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(stored, dataset), dtype=np.float64)
    center, width, function = _window(dataset)
    if center is not None:
        gray = _windowed(values, center, width, function)
    elif "VOILUTSequence" in dataset:
        lut = dataset.VOILUTSequence[0]
        bits = int(lut.LUTDescriptor[2])
        gray = np.clip(np.asarray(apply_voi_lut(stored, dataset), dtype=np.float64) / (2**bits - 1), 0.0, 1.0)
    else:
        return _inverted(_own_range(values, path), photometric)
    return _inverted(np.rint(gray * 255.0).astype(np.uint8), photometric)


def _window(dataset: object) -> tuple[float | None, float, str]:
    """The first Window Center and Width (and the VOI LUT Function), or (None, 0, "") when there is none."""
    center, width = getattr(dataset, "WindowCenter", None), getattr(dataset, "WindowWidth", None)
    if center is None or width is None:
        return None, 0.0, ""
    center, width = _first(center, "Window Center"), _first(width, "Window Width")
    function = str(getattr(dataset, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if width < 1 or (function == "LINEAR_EXACT" and width <= 0):
        raise DicomImageError(f"has Window Width {width:g}; expected at least 1")
    return center, width, function


def _first(value: object, name: str) -> float:
    """The first of a multi-valued element (a file may offer several windows), as a number."""
    from pydicom.multival import MultiValue

    first = value[0] if isinstance(value, MultiValue | list | tuple) else value
    try:
        return float(first)
    except (TypeError, ValueError):
        raise DicomImageError(f"has {name} {str(first)[:40]!r}; expected a number") from None


def _windowed(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2: the window's VOI function mapped onto [0, 1]."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if function != "LINEAR":
        raise DicomImageError(f"has VOI LUT Function {function!r}; expected LINEAR, LINEAR_EXACT or SIGMOID")
    return np.clip((values - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _own_range(values: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    logger.warning("%s: DICOM without a window (values %g..%g) scaled to 8-bit from its own range", path, low, high)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _inverted(gray: np.ndarray, photometric: str) -> np.ndarray:
    return 255 - gray if photometric == "MONOCHROME1" else gray

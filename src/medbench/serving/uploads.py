"""Uploaded files, checked before anything decodes them: the type from the bytes (not the name or the
declared content type), the image's size from its header (a decompression bomb is refused before it
expands), and a filename that is only ever echoed, never used as a path.

Each refusal is an `UploadError` carrying the HTTP status the server answers with and a message that
says what was found and what was expected.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

__all__ = ["ACCEPTED", "Upload", "UploadError", "check_upload", "confidence", "safe_filename", "sniff"]

ACCEPTED = ("png", "jpeg", "dicom")
SUFFIXES = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm"}
DEFAULT_MAX_PIXELS = 50_000_000
"""Pixels (width × height × frames) an upload may decode to: 7000 × 7000 and more is refused unread."""
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x1f\x8b", "gzip"),
    (b"RIFF", "riff (webp/wav/avi)"),
)


class UploadError(Exception):
    """An upload refused with an HTTP status (413, 415, 422) and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """An accepted upload: its bytes, detected kind, the suffix it is decoded under, and its pixel size."""

    data: bytes
    kind: str
    width: int
    height: int
    frames: int = 1

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.kind]


def sniff(data: bytes) -> str:
    """The file type its first bytes say: png, jpeg, dicom, or the name of another type (or "text"/"unknown")."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    head = data[:512]
    if head and all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head):
        return "text"
    return "empty" if not data else "unknown"


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise UploadError(422, "truncated PNG: no IHDR header after the signature; expected a whole PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise UploadError(422, f"malformed JPEG: no marker at byte {position}; expected a whole JPEG file")
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _SOF:
            if position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    raise UploadError(422, "truncated JPEG: no frame header (SOF) found; expected a whole JPEG file")


def _dicom_size(data: bytes) -> tuple[int, int, int]:
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as error:  # pydicom raises several unrelated types for broken headers
        raise UploadError(422, f"unreadable DICOM header ({type(error).__name__}: {error})") from None
    rows, columns = dataset.get("Rows"), dataset.get("Columns")
    if rows is None or columns is None:
        raise UploadError(422, "DICOM without Rows/Columns: not an image; expected a DICOM image")
    return int(columns), int(rows), int(dataset.get("NumberOfFrames", 1) or 1)


def check_upload(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Upload:
    """The upload, if it is a PNG, JPEG or DICOM image of at most `max_pixels`; UploadError otherwise."""
    kind = sniff(data)
    if kind not in ACCEPTED:
        raise UploadError(415, f"the upload is {kind}, not an image; expected a PNG, JPEG or DICOM file")
    frames = 1
    if kind == "png":
        width, height = _png_size(data)
    elif kind == "jpeg":
        width, height = _jpeg_size(data)
    else:
        width, height, frames = _dicom_size(data)
    if width < 1 or height < 1:
        raise UploadError(422, f"{kind} of {width} × {height} pixels; expected a non-empty image")
    if width * height * frames > max_pixels:
        raise UploadError(
            413,
            f"{kind} of {width} × {height} pixels{f' × {frames} frames' if frames > 1 else ''} would decode to "
            f"{width * height * frames:,} pixels; the server takes at most {max_pixels:,} (refused before decoding)",
        )
    return Upload(data, kind, width, height, frames)


def safe_filename(name: str | None) -> str:
    """The name as the answer echoes it: no folders, no NUL or control characters, at most 200 characters."""
    text = (name or "").replace("\\", "/").split("/")[-1]
    cleaned = "".join(char for char in text if char.isprintable() and char != "\x00").strip()
    return cleaned[:200] or "upload"


def confidence(probability: float, chance: float) -> float:
    """TIML's confidence: -1 at probability 0, 0 at `chance`, +1 at 1, linear in between.

    For a softmax over n classes `chance` is 1/n (TIML's rescaling); for a sigmoid per class medbench uses
    the class's threshold chosen on validation, so a positive confidence means "called positive".
    """
    if probability >= chance:
        return (probability - chance) / (1.0 - chance) if chance < 1.0 else 0.0
    return (probability - chance) / chance if chance > 0.0 else 0.0

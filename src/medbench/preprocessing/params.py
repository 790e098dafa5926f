"""The deterministic part of preprocessing: which pixels an image file becomes, defined once.

`preprocess_image` is the single definition of those pixels: the preprocessing cache stores its
output and ad-hoc prediction calls it directly, so a model sees the same input either way.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from medbench.benchmark.benchmark import Benchmark
from medbench.data.images import decode_plain_image, read_image
from medbench.errors import ConfigError
from medbench.preprocessing.transforms import compose

__all__ = ["CHANNELS", "PreprocessParams", "decode_for", "preprocess_image", "resize_square"]

CHANNELS = (1, 3)


@dataclass(frozen=True)
class PreprocessParams:
    """Everything that decides the stored pixels of an image.

    Attributes:
        image_size: Side of the square output in pixels.
        crop: Crop to the lung field (`medbench.preprocessing.crop.crop_lung_field`) before resizing.
        transformations: Benchmark transformation tokens (``"clahe"``, ``"sharp21"``, …), applied in order.
        channels: 1 = grayscale luminance (chest X-rays), 3 = RGB.
    """

    image_size: int
    crop: bool = False
    transformations: tuple[str, ...] = ()
    channels: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "transformations", tuple(self.transformations))
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise ConfigError(f"image_size {self.image_size!r}: expected a positive number of pixels")
        if self.channels not in CHANNELS:
            raise ConfigError(f"channels {self.channels!r}: expected 1 (grayscale) or 3 (RGB)")
        compose(self.transformations)  # unknown tokens fail here, not half-way through a build

    @classmethod
    def for_benchmark(cls, benchmark: Benchmark, channels: int = 1) -> PreprocessParams:
        """The parameters a Benchmark implies (its image size, crop flag and transformations)."""
        return cls(benchmark.image_size, benchmark.crop, tuple(benchmark.transformations), channels)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transformations"] = list(self.transformations)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessParams:
        return cls(int(data["image_size"]), bool(data["crop"]), tuple(data["transformations"]), int(data["channels"]))


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to (size, size): area averaging when shrinking, bilinear when enlarging."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    shrinking = height * width >= size * size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def decode_for(path: str | os.PathLike[str], channels: int) -> np.ndarray:
    """The pixels of `path` as uint8 (H, W) gray for channels=1 or (H, W, 3) RGB for channels=3.

    Plain 8-bit gray/colour PNGs and JPEGs take OpenCV's decoder (`decode_plain_image`), everything
    else `read_image` (which also raises the `ImageError` for unreadable files); both paths convert
    colour to gray with the same OpenCV call, so a file's pixels do not depend on the path it took.
    """
    image = decode_plain_image(path)
    if image is None:
        image = read_image(path)
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if channels == 1 else image
    if image.ndim == 2:
        return image if channels == 1 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if channels == 1 else cv2.COLOR_BGR2RGB)


def preprocess_image(path: str | os.PathLike[str], params: PreprocessParams) -> np.ndarray:
    """Read → (grayscale) → optional lung-field crop → transformations → resize: uint8 (size, size, channels).

    Raises `ImageError` for a file that cannot be decoded.
    """
    image = decode_for(path, params.channels)
    if params.crop:
        from medbench.preprocessing.crop import crop_lung_field

        image = crop_lung_field(image)
    if params.transformations:
        image = compose(params.transformations)(image)
    image = resize_square(np.ascontiguousarray(image, dtype=np.uint8), params.image_size)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    return np.ascontiguousarray(image, dtype=np.uint8)

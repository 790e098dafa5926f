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
from PIL import Image

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.vocabulary import COLOR_SPACES
from medbench.data.images import decode_plain_image, read_image
from medbench.errors import ConfigError
from medbench.preprocessing.transforms import compose, resize_filter

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
        colours = [token for token in self.transformations if token in COLOR_SPACES]
        if colours and self.channels != 3:
            raise ConfigError(
                f"transformation {colours[0]!r} converts RGB colour images, but images are stored with "
                f"{self.channels} channel; expected a dataset of 3 channels (DatasetSpec channels=3)"
            )

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


PILLOW_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_square(image: np.ndarray, size: int, method: str | None = None) -> np.ndarray:
    """Resize to (size, size): area averaging when shrinking, bilinear when enlarging; or with the Pillow
    filter `method` names (``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"lanczos"``: TIML's resize)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    if method is not None:
        squeezed = image[:, :, 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        resized = np.asarray(Image.fromarray(squeezed).resize((size, size), PILLOW_FILTERS[method]), dtype=np.uint8)
        return resized.reshape(size, size, *image.shape[2:])
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
    """Read → (grayscale) → optional lung-field crop → transformations → resize (with the benchmark's resize
    filter, if it names one): uint8 (size, size, channels).

    Raises `ImageError` for a file that cannot be decoded.
    """
    image = decode_for(path, params.channels)
    if params.crop:
        from medbench.preprocessing.crop import crop_lung_field

        image = crop_lung_field(image)
    if params.transformations:
        image = compose(params.transformations)(image)
    image = resize_square(
        np.ascontiguousarray(image, dtype=np.uint8), params.image_size, resize_filter(params.transformations)
    )
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    return np.ascontiguousarray(image, dtype=np.uint8)

"""Offline augmentation for small datasets, pyBIA's routine: new images written once, before training.

`augmentation(data, batch=..., ...)` returns ``batch`` augmented copies of every image of a stack
``(n, h, w, c)`` (or ``(n, h, w)``), the steps in pyBIA's order, each off unless asked for:

1. a random shift (up to `width_shift` / `height_shift` pixels), horizontal / vertical flip and rotation
   (0-360°), the uncovered area filled by `fill` (``constant`` = 0, ``nearest``, ``reflect``, ``wrap``);
2. a random zoom in `zoom_range`, about the centre (the array keeps its size);
3. a centre crop to `image_size` (which removes the filled borders);
4. a random skew (shear) of up to `skew_angle` degrees;
5. blending: ``round(n * blend_multiplier)`` images, each the `blending_func` (mean, max, min, or random:
   one of them drawn per image) of `num_images_to_blend` images drawn from step 4's output;
6. `num_masks` cutouts of `mask_size` pixels (``"circle"``: diameter, ``"square"``: side) set to 0.

Every draw comes from one seeded generator, so a seed gives the same output, and one geometric transform
moves all channels of an image together (pyBIA re-applied the first filter's seeds to the others). An
image never leaves its input range except where a cutout or a constant fill writes 0: the warps
interpolate linearly and blending takes means, maxima or minima.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import ConfigError

__all__ = ["BLENDING_FUNCTIONS", "FILL_MODES", "Augmentation", "augmentation"]

FILL_MODES = {
    "constant": cv2.BORDER_CONSTANT,
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
}
BLENDING_FUNCTIONS = ("mean", "max", "min", "random")
MASK_SHAPES = ("circle", "square")
_CV_CHANNELS = 4
"""cv2.warpAffine handles up to four channels at once; wider stacks are warped channel by channel."""


@dataclass(frozen=True)
class Augmentation:
    """The settings of `augmentation` (pyBIA's names), checked when made."""

    batch: int = 1
    width_shift: int = 0
    height_shift: int = 0
    horizontal: bool = False
    vertical: bool = False
    rotation: bool = False
    fill: str = "nearest"
    image_size: int | None = None
    mask_size: int | None = None
    num_masks: int | None = None
    mask_shape: str = "circle"
    blend_multiplier: float = 0.0
    blending_func: str = "mean"
    num_images_to_blend: int = 2
    zoom_range: tuple[float, float] | None = None
    skew_angle: float = 0.0

    def __post_init__(self) -> None:
        for name in ("batch", "num_images_to_blend"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"augmentation {name} {value!r}: expected a whole number of at least 1")
        for name in ("width_shift", "height_shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"augmentation {name} {value!r}: expected a whole number of pixels >= 0")
        if self.fill not in FILL_MODES:
            raise ConfigError(f"augmentation fill {self.fill!r}: expected one of {', '.join(FILL_MODES)}")
        if self.blending_func not in BLENDING_FUNCTIONS:
            raise ConfigError(
                f"augmentation blending_func {self.blending_func!r}: expected one of {', '.join(BLENDING_FUNCTIONS)}"
            )
        if self.mask_shape not in MASK_SHAPES:
            raise ConfigError(f"augmentation mask_shape {self.mask_shape!r}: expected one of {', '.join(MASK_SHAPES)}")
        if (self.mask_size is None) != (self.num_masks is None):
            raise ConfigError("augmentation mask_size and num_masks go together: give both or neither")
        if self.mask_size is not None and (self.mask_size < 1 or self.num_masks < 1):  # type: ignore[operator]
            raise ConfigError(f"augmentation mask_size {self.mask_size}, num_masks {self.num_masks}: expected >= 1")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"augmentation image_size {self.image_size}: expected a positive number of pixels")
        if self.blend_multiplier != 0 and not self.blend_multiplier >= 1:
            raise ConfigError(f"augmentation blend_multiplier {self.blend_multiplier}: expected 0 (off) or >= 1")
        if self.zoom_range is not None:
            low, high = (float(value) for value in self.zoom_range)
            if not 0 < low <= high:
                raise ConfigError(f"augmentation zoom_range {self.zoom_range}: expected (min, max) with 0 < min <= max")
        if not 0 <= self.skew_angle < 90:
            raise ConfigError(f"augmentation skew_angle {self.skew_angle}: expected degrees in [0, 90)")


def _warp(image: np.ndarray, matrix: np.ndarray, fill: str) -> np.ndarray:
    """`image` (h, w, c) moved by the 2×3 `matrix`, every channel alike."""
    height, width, channels = image.shape
    border = FILL_MODES[fill]

    def one(part: np.ndarray) -> np.ndarray:
        warped = cv2.warpAffine(part, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
        return warped.reshape(height, width, -1)

    if channels <= _CV_CHANNELS:
        return one(np.ascontiguousarray(image))
    return np.concatenate([one(np.ascontiguousarray(image[..., k])) for k in range(channels)], axis=-1)


def _rigid(rng: np.random.Generator, settings: Augmentation, height: int, width: int) -> np.ndarray:
    """Step 1's matrix: flips, rotation about the centre, then the shift (draws in a fixed order)."""
    flip_x = settings.horizontal and rng.random() < 0.5
    flip_y = settings.vertical and rng.random() < 0.5
    angle = rng.uniform(0.0, 360.0) if settings.rotation else 0.0
    shift_x = int(rng.integers(-settings.width_shift, settings.width_shift + 1)) if settings.width_shift else 0
    shift_y = int(rng.integers(-settings.height_shift, settings.height_shift + 1)) if settings.height_shift else 0
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = np.vstack([cv2.getRotationMatrix2D(centre, angle, 1.0), [0.0, 0.0, 1.0]])
    flip = np.array(
        [[-1.0 if flip_x else 1.0, 0.0, (width - 1) if flip_x else 0.0],
         [0.0, -1.0 if flip_y else 1.0, (height - 1) if flip_y else 0.0],
         [0.0, 0.0, 1.0]]
    )  # fmt: skip
    shift = np.array([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y], [0.0, 0.0, 1.0]])
    return (shift @ matrix @ flip)[:2]


def _about_centre(linear: np.ndarray, height: int, width: int) -> np.ndarray:
    """The 2×3 matrix applying the 2×2 `linear` map about the image centre."""
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    return np.hstack([linear, (centre - linear @ centre)[:, None]])


def _crop(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    if size > min(height, width):
        raise ConfigError(f"augmentation image_size {size}: larger than the images ({height}×{width})")
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def _blend(rng: np.random.Generator, images: np.ndarray, settings: Augmentation) -> np.ndarray:
    count = int(round(len(images) * settings.blend_multiplier))
    out = np.empty((count, *images.shape[1:]), dtype=images.dtype)
    functions = {"mean": np.mean, "max": np.max, "min": np.min}
    for index in range(count):
        chosen = rng.integers(0, len(images), settings.num_images_to_blend)
        name = settings.blending_func
        if name == "random":
            name = ("mean", "max", "min")[int(rng.integers(0, 3))]
        blended = functions[name](images[chosen].astype(np.float64), axis=0)
        out[index] = np.rint(blended) if np.issubdtype(images.dtype, np.integer) else blended
    return out


def _cutouts(rng: np.random.Generator, image: np.ndarray, settings: Augmentation) -> np.ndarray:
    height, width = image.shape[:2]
    size = int(settings.mask_size)  # type: ignore[arg-type]
    rows, columns = np.ogrid[:height, :width]
    for _ in range(int(settings.num_masks)):  # type: ignore[arg-type]
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        if settings.mask_shape == "circle":
            inside = (rows - cy) ** 2 + (columns - cx) ** 2 <= (size / 2.0) ** 2
        else:
            inside = (np.abs(rows - cy) <= size / 2.0) & (np.abs(columns - cx) <= size / 2.0)
        image[inside] = 0
    return image


def augmentation(
    data: ArrayLike, *, seed: int | Sequence[int] | None = 0, settings: Augmentation | None = None, **options: object
) -> np.ndarray:
    """Augmented copies of an image stack (see the module docstring); options are `Augmentation`'s fields."""
    config = settings if settings is not None else Augmentation(**options)  # type: ignore[arg-type]
    if settings is not None and options:
        raise ConfigError("augmentation: give settings or keyword options, not both")
    stack = np.asarray(data)
    squeeze = stack.ndim == 3
    if squeeze:
        stack = stack[..., np.newaxis]
    if stack.ndim != 4 or len(stack) == 0:
        raise ConfigError(f"augmentation data of shape {np.shape(data)}: expected (n, height, width[, channels])")
    if not (np.issubdtype(stack.dtype, np.integer) or np.issubdtype(stack.dtype, np.floating)):
        raise ConfigError(f"augmentation data of dtype {stack.dtype}: expected integer or float pixels")
    work = stack if stack.dtype in (np.uint8, np.uint16, np.float32) else stack.astype(np.float32)
    rng = np.random.default_rng(seed)
    height, width = work.shape[1:3]
    outputs = []
    for image in work:
        for _ in range(config.batch):
            current = _warp(image, _rigid(rng, config, height, width), config.fill)
            if config.zoom_range is not None:
                zoom = rng.uniform(*config.zoom_range)
                current = _warp(current, _about_centre(np.eye(2) * zoom, height, width), config.fill)
            outputs.append(current)
    images = np.stack(outputs)
    if config.image_size is not None:
        images = np.stack([_crop(image, config.image_size) for image in images])
    if config.skew_angle:
        size_y, size_x = images.shape[1:3]
        skewed = []
        for image in images:
            shear = math.tan(math.radians(rng.uniform(-config.skew_angle, config.skew_angle)))
            skewed.append(
                _warp(image, _about_centre(np.array([[1.0, shear], [0.0, 1.0]]), size_y, size_x), config.fill)
            )
        images = np.stack(skewed)
    if config.blend_multiplier:
        images = _blend(rng, images, config)
    if config.mask_size is not None:
        images = np.stack([_cutouts(rng, image.copy(), config) for image in images])
    images = images.astype(stack.dtype, copy=False)
    return images[..., 0] if squeeze else images

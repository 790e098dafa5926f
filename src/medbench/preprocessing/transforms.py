"""Deterministic image transformations named as in benchmark names (``sharp21``, ``clahe``, ``hsv``, …).

Each works on an 8-bit image (H, W), (H, W, 1) or (H, W, 3) and returns one of the same shape and dtype,
applied in the order the benchmark declares them. The token forms and their parameter ranges are the
vocabulary's (`medbench.benchmark.vocabulary.TRANSFORM_FORMS`); this module implements each kind. The
colour spaces convert as Pillow's image modes do (TIML's `colorspace`), and the resize-filter tokens are
not steps here: `resize_filter` picks the one `resize_square` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import cv2
import numpy as np
from PIL import Image

from medbench.benchmark.vocabulary import COLOR_SPACES, RESIZE_FILTERS, parse_transformation
from medbench.errors import ConfigError

Transform = Callable[[np.ndarray], np.ndarray]


def unsharp_mask(image: np.ndarray, radius: int, amount: int) -> np.ndarray:
    """Sharpen: image + amount * (image - gaussian(image, sigma=radius)); radius 0 is the identity."""
    if radius == 0 or amount == 0:
        return image
    blurred = _same_shape(image, cv2.GaussianBlur(image, (0, 0), sigmaX=float(radius)))
    sharpened = cv2.addWeighted(image.astype(np.float32), 1.0 + amount, blurred.astype(np.float32), -float(amount), 0)
    return _same_shape(image, np.clip(sharpened, 0, 255).astype(np.uint8))


def _same_shape(image: np.ndarray, result: np.ndarray) -> np.ndarray:
    """OpenCV drops the channel axis of (H, W, 1) images; put it back."""
    return result.reshape(image.shape)


def _per_channel(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    if image.ndim == 2:
        return fn(image)
    return np.stack([fn(np.ascontiguousarray(image[..., c])) for c in range(image.shape[-1])], axis=-1)


def histogram_equalization(image: np.ndarray) -> np.ndarray:
    return _per_channel(image, cv2.equalizeHist)


def clahe(image: np.ndarray, clip_limit: float = 2.0) -> np.ndarray:
    return _per_channel(image, cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(8, 8)).apply)


def gaussian_blur(image: np.ndarray, sigma: int) -> np.ndarray:
    return _same_shape(image, cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma)))


def median_filter(image: np.ndarray, size: int) -> np.ndarray:
    return _same_shape(image, cv2.medianBlur(image, size if size % 2 else size + 1))


def intensity_window(image: np.ndarray, center: int, width: int) -> np.ndarray:
    """Map [center - width/2, center + width/2] of the 8-bit range linearly onto 0..255."""
    low = center - width / 2
    scaled = (image.astype(np.float32) - low) * (255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)


PILLOW_MODES = {"hsv": "HSV", "lab": "LAB", "ycbcr": "YCbCr"}


def convert_color_space(image: np.ndarray, space: str) -> np.ndarray:
    """An RGB image (H, W, 3) in another colour space, as Pillow's ``Image.convert`` gives it (8 bits per channel)."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ConfigError(
            f"transformation {space!r} converts RGB colour images; got an image of shape {image.shape} "
            "(expected a dataset stored with 3 channels)"
        )
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).convert(PILLOW_MODES[space]), dtype=np.uint8)


def _identity(image: np.ndarray) -> np.ndarray:
    return image


IMPLEMENTATIONS: dict[str, Callable[[dict[str, int]], Transform]] = {
    "sharp": lambda p: partial(unsharp_mask, radius=p["radius"], amount=p["amount"]),
    "histeq": lambda p: histogram_equalization,
    "clahe": lambda p: partial(clahe, clip_limit=float(p["clip_limit"])),
    "blur": lambda p: partial(gaussian_blur, sigma=p["sigma"]),
    "median": lambda p: partial(median_filter, size=p["size"]),
    "window": lambda p: partial(intensity_window, center=p["center"], width=p["width"]),
    **{space: (lambda p, space=space: partial(convert_color_space, space=space)) for space in COLOR_SPACES},
    **{name: (lambda p: _identity) for name in RESIZE_FILTERS},
}


def parse_transform(token: str) -> Transform:
    """The transformation a benchmark token names, its parameters checked against the vocabulary's ranges."""
    transformation = parse_transformation(token)
    return IMPLEMENTATIONS[transformation.kind](transformation.parameters)


def resize_filter(tokens: Sequence[str]) -> str | None:
    """The resize-filter token among `tokens` (None: medbench's default resize); two of them are an error."""
    chosen = [token for token in tokens if token in RESIZE_FILTERS]
    if len(chosen) > 1:
        raise ConfigError(f"transformations name {len(chosen)} resize filters {chosen}; expected at most one")
    return chosen[0] if chosen else None


def compose(tokens: Sequence[str]) -> Transform:
    """All named transformations, applied in the declared order (resize-filter tokens are checked, not applied)."""
    resize_filter(tokens)
    steps = [parse_transform(token) for token in tokens if token not in RESIZE_FILTERS]

    def apply(image: np.ndarray) -> np.ndarray:
        for step in steps:
            image = step(image)
        return image

    return apply

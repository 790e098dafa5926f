"""Maps from perturbing the input and watching the output: occlusion sensitivity and RISE (images only).

- Occlusion sensitivity (Zeiler and Fergus, 2014): a square patch slides over the image with a stride and
  is filled with the image's mean; each pixel's value is the mean drop of S_c (the pre-activation score)
  over the patches covering it. Positive where covering the pixel lowers the score.
- RISE (Petsiuk, Das and Saenko, BMVC 2018): N random masks, each an s×s grid of cells kept with
  probability p, upsampled bilinearly to (s + 1) cells and cropped at a random shift; the map is
  Σ_i P_c(x ⊙ M_i) M_i / (N p), P_c the model's output (the probability). Defaults N = 4000, s = 8,
  p = 0.5; the masks depend only on the seed, so a seed gives the same map every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from medbench.errors import ConfigError
from medbench.xai.maps import ClassSpec, gather_scores, prepared
from medbench.xai.view import ModelView, as_view


def _whole(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


@dataclass(frozen=True)
class OcclusionConfig:
    """Occlusion: `patch` pixels a side (None: an eighth of the image), moved by `stride` (None: half the patch)."""

    patch: int | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        for name in ("patch", "stride"):
            value = getattr(self, name)
            if value is not None and (not _whole(value) or value < 1):
                raise ConfigError(f"occlusion {name} {value!r}: expected a whole number of pixels (at least 1)")

    def sizes(self, height: int, width: int) -> tuple[int, int]:
        """(patch, stride) for an image of `height` × `width`."""
        patch = min(self.patch or max(1, math.ceil(min(height, width) / 8)), height, width)
        return patch, self.stride or max(1, math.ceil(patch / 2))


@dataclass(frozen=True)
class RiseConfig:
    """RISE: `masks` random masks of a `grid` × `grid` cell pattern, each cell kept with probability `keep`."""

    masks: int = 4000
    grid: int = 8
    keep: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not _whole(self.masks) or self.masks < 1:
            raise ConfigError(f"RISE masks {self.masks!r}: expected a whole number of at least 1")
        if not _whole(self.grid) or self.grid < 1:
            raise ConfigError(f"RISE grid {self.grid!r}: expected a whole number of cells (at least 1)")
        if not 0.0 < float(self.keep) <= 1.0:
            raise ConfigError(f"RISE keep probability {self.keep!r}: expected a probability in (0, 1]")
        if not _whole(self.seed) or self.seed < 0:
            raise ConfigError(f"RISE seed {self.seed!r}: expected a whole number of at least 0")


def _image_view(model: keras.Model | ModelView, layer: str | None, method: str) -> ModelView:
    view = as_view(model, layer)
    if view.spatial_rank != 2:
        raise ConfigError(
            f"{method} perturbs 2D images; the model takes volumes of shape {view.image_shape}: expected an "
            "image model, or a gradient method (gradcam, gradcampp, saliency, integrated-gradients) for volumes"
        )
    return view


def _windows(height: int, width: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of the patches: every `stride` pixels, plus one flush with each far edge."""

    def starts(side: int) -> list[int]:
        return sorted({*range(0, side - patch + 1, stride), side - patch})

    return [(top, left) for top in starts(height) for left in starts(width)]


def occlusion(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 64,
    config: OcclusionConfig = OcclusionConfig(),
) -> np.ndarray:
    """Occlusion-sensitivity maps (n, k, H, W), float32, signed (`layer` is not used)."""
    view = _image_view(model, layer, "occlusion")
    images, indices = prepared(view, images, classes, class_names)
    height, width = images.shape[1:3]
    patch, stride = config.sizes(height, width)
    corners = _windows(height, width, patch, stride)
    maps = []
    for image, row in tqdm(zip(images, indices), total=len(images), desc="occlusion", unit="img", leave=False):
        x = image.astype(np.float32)
        fill = float(x.mean())
        reference = gather_scores(view.outputs(x[np.newaxis])[0], row[np.newaxis]).numpy()[0]
        drops = np.zeros((len(row), height, width), dtype=np.float64)
        counts = np.zeros((height, width), dtype=np.float64)
        for start in range(0, len(corners), batch_size):
            chunk = corners[start : start + batch_size]
            copies = np.repeat(x[np.newaxis], len(chunk), axis=0)
            for copy, (top, left) in zip(copies, chunk):
                copy[top : top + patch, left : left + patch] = fill
            scores = gather_scores(view.outputs(copies)[0], np.tile(row, (len(chunk), 1))).numpy()
            for drop, (top, left) in zip(reference[np.newaxis] - scores, chunk):
                drops[:, top : top + patch, left : left + patch] += drop[:, np.newaxis, np.newaxis]
                counts[top : top + patch, left : left + patch] += 1.0
        maps.append(drops / counts)
    return np.stack(maps).astype(np.float32)


def rise_masks(height: int, width: int, config: RiseConfig, first: int = 0, count: int | None = None) -> np.ndarray:
    """Masks `first` … `first + count` (all by default) of the seeded set: (count, height, width) float32 in [0, 1].

    The grids and shifts of all `config.masks` masks are drawn at once from the seed, so any slice of the set
    is the same whatever the slicing.
    """
    rng = np.random.default_rng(config.seed)
    grids = (rng.random((config.masks, config.grid, config.grid)) < config.keep).astype(np.float32)
    cell_h, cell_w = math.ceil(height / config.grid), math.ceil(width / config.grid)
    shifts = np.stack([rng.integers(0, cell_h, config.masks), rng.integers(0, cell_w, config.masks)], axis=1)
    count = config.masks - first if count is None else count
    grids, shifts = grids[first : first + count], shifts[first : first + count]
    big = tf.image.resize(grids[..., np.newaxis], ((config.grid + 1) * cell_h, (config.grid + 1) * cell_w))
    big = big.numpy()[..., 0]
    return np.stack([mask[dy : dy + height, dx : dx + width] for mask, (dy, dx) in zip(big, shifts)])


def rise(
    model: keras.Model | ModelView,
    images: np.ndarray,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 64,
    config: RiseConfig = RiseConfig(),
) -> np.ndarray:
    """RISE maps (n, k, H, W), float32, ≥ 0 (`layer` is not used); the same seed gives the same maps."""
    view = _image_view(model, layer, "RISE")
    images, indices = prepared(view, images, classes, class_names)
    height, width = images.shape[1:3]
    totals = np.zeros((len(images), indices.shape[1], height * width), dtype=np.float64)
    steps = range(0, config.masks, batch_size)
    for start in tqdm(steps, desc="RISE", unit="batch", leave=False, disable=len(steps) < 4):
        masks = rise_masks(height, width, config, start, min(batch_size, config.masks - start))
        flat = masks.reshape(len(masks), -1).astype(np.float64)
        for index, (image, row) in enumerate(zip(images, indices)):
            masked = image.astype(np.float32)[np.newaxis] * masks[..., np.newaxis]
            outputs = gather_scores(view.outputs(masked)[1], np.tile(row, (len(masks), 1))).numpy()
            totals[index] += outputs.astype(np.float64).T @ flat
    return (totals / (config.masks * config.keep)).reshape(len(images), -1, height, width).astype(np.float32)

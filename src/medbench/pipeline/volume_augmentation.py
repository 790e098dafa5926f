"""Augmentation of uint8 volume batches on the host (NumPy and SciPy, no TensorFlow): flips, quarter turns,
and one affine warp per volume that combines an axial rotation with an isotropic zoom.

Every draw comes from `np.random.default_rng(np.random.SeedSequence(seed))`, with a seed such as (run
seed, epoch, batch index), so batch b of epoch e is augmented identically in an uninterrupted and in a
resumed run. Each volume takes the same fixed number of draws (DRAWS_PER_VOLUME) whatever is switched on:
enabling one transformation leaves the draws of the others unchanged. The rotation and the zoom are one
`scipy.ndimage.affine_transform` (linear, corners filled with 0), so each voxel is interpolated only once.
Flips and quarter turns are exact. Every channel of a volume gets the same transformation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medbench.errors import ConfigError, shown

logger = logging.getLogger(__name__)

__all__ = [
    "DRAWS_PER_VOLUME",
    "MAX_ROTATE_DEG",
    "SCALE_LIMITS",
    "VolumeAugmentation",
    "VolumeTransform",
    "apply_transform",
    "augment_volumes",
    "axial_affine",
    "draw_transforms",
]

MAX_ROTATE_DEG = 180.0
"""The largest `rotate_deg`: ±180° already covers every axial angle."""
SCALE_LIMITS = (0.25, 4.0)
"""The zoom factors `VolumeAugmentation.scale` may span."""
DRAWS_PER_VOLUME = 6
"""Uniform draws per volume: 3 flips (z, y, x), the quarter turns, the angle and the zoom."""


@dataclass(frozen=True)
class VolumeAugmentation:
    """Random transformations of each volume of a batch, (z, y, x) axis order.

    Attributes:
        flip: Per axis (z, y, x), whether to flip it with probability 0.5.
        rotate_deg: Rotation in the axial (y, x) plane by a uniform angle in ±rotate_deg degrees (0 = off).
        rotate90: Also rotate the axial plane by a uniform 0, 1, 2 or 3 quarter turns. This applies only to
            volumes with height == width, as a quarter turn of any other volume changes its shape.
        scale: Isotropic zoom about the centre by a uniform factor in (low, high); > 1 magnifies. (1, 1) = off.
            The output shape is unchanged.
    """

    flip: tuple[bool, bool, bool] = (True, True, True)
    rotate_deg: float = 10.0
    rotate90: bool = False
    scale: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        flip = tuple(self.flip) if isinstance(self.flip, tuple | list) else ()
        if len(flip) != 3 or not all(isinstance(value, bool | np.bool_) for value in flip):
            raise ConfigError(f"VolumeAugmentation.flip {shown(self.flip)}: expected 3 booleans (z, y, x)")
        object.__setattr__(self, "flip", tuple(bool(value) for value in flip))
        angle = self.rotate_deg
        if isinstance(angle, bool) or not isinstance(angle, int | float) or not 0.0 <= angle <= MAX_ROTATE_DEG:
            raise ConfigError(
                f"VolumeAugmentation.rotate_deg {shown(angle)}: expected degrees in 0..{MAX_ROTATE_DEG:g} (0 = off)"
            )
        object.__setattr__(self, "rotate_deg", float(angle))
        if not isinstance(self.rotate90, bool | np.bool_):
            raise ConfigError(f"VolumeAugmentation.rotate90 {shown(self.rotate90)}: expected True or False")
        object.__setattr__(self, "rotate90", bool(self.rotate90))
        object.__setattr__(self, "scale", _scale(self.scale))

    @property
    def is_identity(self) -> bool:
        """Whether every transformation is off (then `augment_volumes` returns an exact copy)."""
        return not any(self.flip) and self.rotate_deg == 0.0 and not self.rotate90 and self.scale == (1.0, 1.0)


def _scale(value: object) -> tuple[float, float]:
    low_limit, high_limit = SCALE_LIMITS
    try:
        items = tuple(value)  # type: ignore[call-overload]
        low, high = (float(item) for item in items)
        valid = not any(isinstance(item, bool) for item in items) and low_limit <= low <= high <= high_limit
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"VolumeAugmentation.scale {shown(value)}: expected (low, high) zoom factors with "
            f"{low_limit:g} <= low <= high <= {high_limit:g} ((1, 1) = off)"
        )
    return low, high


@dataclass(frozen=True)
class VolumeTransform:
    """One volume's drawn transformation, applied in this order: flips, quarter turns, rotation with zoom.

    Attributes:
        flips: Whether each axis (z, y, x) is flipped.
        quarter_turns: Quarter turns (0..3) in the axial plane, as `np.rot90(volume, k, axes=(y, x))`.
        angle_deg: Axial rotation in degrees (a positive angle turns the +y axis towards +x; `axial_affine`).
        zoom: Isotropic zoom factor (> 1 magnifies).
    """

    flips: tuple[bool, bool, bool] = (False, False, False)
    quarter_turns: int = 0
    angle_deg: float = 0.0
    zoom: float = 1.0

    @property
    def warps(self) -> bool:
        """Whether the affine step (rotation or zoom) changes anything; if not, the transform is exact."""
        return self.angle_deg != 0.0 or self.zoom != 1.0


def draw_transforms(
    count: int, augmentation: VolumeAugmentation, seed: tuple[int, ...], *, square: bool = True
) -> list[VolumeTransform]:
    """The transforms of `count` volumes, drawn from `np.random.default_rng(np.random.SeedSequence(seed))`.

    Volume i takes draws DRAWS_PER_VOLUME·i to DRAWS_PER_VOLUME·(i + 1) − 1, whatever is switched on.
    `square` says whether the volumes' height equals their width (quarter turns need it).
    """
    draws = np.random.default_rng(np.random.SeedSequence(_seed(seed))).random((count, DRAWS_PER_VOLUME))
    low, high = augmentation.scale
    transforms = []
    for row in draws:
        flips = tuple(bool(enabled and value < 0.5) for enabled, value in zip(augmentation.flip, row[:3]))
        turns = min(int(row[3] * 4), 3) if augmentation.rotate90 and square else 0
        angle = float((2.0 * row[4] - 1.0) * augmentation.rotate_deg) if augmentation.rotate_deg else 0.0
        zoom = float(low + row[5] * (high - low)) if high > low else low
        transforms.append(VolumeTransform((flips[0], flips[1], flips[2]), turns, angle, zoom))
    return transforms


def _seed(seed: tuple[int, ...]) -> tuple[int, ...]:
    parts = tuple(seed) if isinstance(seed, tuple | list) else ()
    if not parts or not all(isinstance(p, int | np.integer) and not isinstance(p, bool) and p >= 0 for p in parts):
        raise ConfigError(
            f"augmentation seed {shown(seed)}: expected a tuple of non-negative integers, e.g. (run seed, epoch, batch)"
        )
    return tuple(int(part) for part in parts)


def axial_affine(shape: tuple[int, int, int], angle_deg: float, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """The output → input (matrix, offset) of `scipy.ndimage.affine_transform` that rotates a (z, y, x)
    volume of `shape` by `angle_deg` in the (y, x) plane and zooms it by `zoom` on every axis, both about
    the centre of the volume.

    The forward map is p_out = c + zoom · R(angle) · (p_in − c). R(angle) = [[cos, −sin], [sin, cos]]
    acts on (y, x) index coordinates, so a positive angle turns the +y axis towards +x (a voxel below the
    centre moves to its right for +90°). affine_transform needs the inverse,
    p_in = c + R(−angle) · (p_out − c) / zoom, written as matrix · p_out + offset.
    """
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]]).T / zoom
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    return matrix, centre - matrix @ centre


def apply_transform(volume: np.ndarray, transform: VolumeTransform) -> np.ndarray:
    """One uint8 volume (d, h, w, c) transformed, the same for every channel; same shape and dtype."""
    flipped = [axis for axis, flip in enumerate(transform.flips) if flip]
    result = np.flip(volume, axis=flipped) if flipped else volume
    if transform.quarter_turns:
        if volume.shape[1] != volume.shape[2]:
            raise ValueError(f"quarter turns of a volume of shape {volume.shape}: expected height == width")
        result = np.rot90(result, transform.quarter_turns, axes=(1, 2))
    if not transform.warps:
        return np.ascontiguousarray(result)
    matrix, offset = axial_affine(result.shape[:3], transform.angle_deg, transform.zoom)
    warped = np.empty(result.shape, dtype=np.uint8)
    for channel in range(result.shape[3]):
        values = ndimage.affine_transform(
            np.ascontiguousarray(result[..., channel]),
            matrix,
            offset=offset,
            output=np.float32,
            order=1,
            mode="constant",
            cval=0.0,
        )
        warped[..., channel] = np.clip(np.rint(values), 0.0, 255.0)
    return warped


def augment_volumes(batch: np.ndarray, augmentation: VolumeAugmentation, seed: tuple[int, ...]) -> np.ndarray:
    """An independent random transformation of each volume of a uint8 batch (n, d, h, w, c); same shape and dtype.

    The transforms are drawn from `seed` (`draw_transforms`), so the same batch, augmentation and seed give
    identical bytes. An augmentation with everything off returns an exact copy.
    """
    batch = np.asarray(batch)
    if batch.ndim != 5 or batch.dtype != np.uint8:
        raise ValueError(
            f"augment_volumes batch: {batch.dtype} of shape {batch.shape}; expected uint8 (n, depth, height, width, "
            "channels)"
        )
    transforms = draw_transforms(len(batch), augmentation, seed, square=batch.shape[2] == batch.shape[3])
    if augmentation.is_identity:
        return batch.copy()
    augmented = np.empty_like(batch)
    for index, (volume, transform) in enumerate(zip(batch, transforms)):
        augmented[index] = apply_transform(volume, transform)
    logger.debug("augmented %d volume(s) of shape %s with seed %s", len(batch), batch.shape[1:], seed)
    return augmented

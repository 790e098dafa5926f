"""The stored voxels of a volume, defined once: resample to a spacing → fit to a shape → window to uint8.

`preprocess_volume` is the single definition of what a volume file becomes (uint8, (depth, height, width, 1)),
as `preprocess_image` is for 2D images: a cache stores its output, and a prediction on a new file calls it
directly, so a model sees the same input either way. Every step is deterministic (SciPy interpolation,
fixed rounding), so the same input and the same `VolumeParams` give identical bytes.

Non-finite voxels (a .npy array or a MetaImage may hold NaN outside the body; ITK's NIfTI reader already
turns them into 0) are replaced before any interpolation: NaN and -inf by the window's low value (or the volume's finite
minimum), +inf by its high value (or finite maximum). Interpolating them would spread NaN into their
neighbours, and NaN has no uint8 value.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from medbench.data.volumes import MAX_VOLUME_VOXELS, RESIZE_MODES, Volume, read_volume
from medbench.errors import ConfigError, ImageError, shown

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_SIDE",
    "RESIZE_MODES",
    "VolumeParams",
    "pad_or_crop",
    "preprocess_volume",
    "resample_to_shape",
    "resample_to_spacing",
    "window_to_uint8",
]

MAX_SIDE = 1024
"""The longest output side `VolumeParams.shape` accepts, in voxels."""


@dataclass(frozen=True)
class VolumeParams:
    """Everything that decides the stored voxels of a volume.

    Attributes:
        shape: Output (depth, height, width) in voxels, each 1..MAX_SIDE.
        spacing: Voxel size (z, y, x) in mm to resample to first, or None to keep the file's grid.
        window: Intensity (low, high), e.g. HU (-1000, 400): values are clipped to it, then mapped linearly
            onto 0..255. None uses the volume's own finite minimum..maximum (a flat volume becomes 0).
        resize: "pad_crop" centre-pads each axis (with the window's low value, or the minimum) or
            centre-crops it to `shape`; "resample" interpolates the whole volume to `shape` (linear).
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float] | None = None
    window: tuple[float, float] | None = None
    resize: str = "pad_crop"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _shape(self.shape))
        if self.spacing is not None:
            object.__setattr__(self, "spacing", _spacing("VolumeParams.spacing", self.spacing))
        if self.window is not None:
            object.__setattr__(self, "window", _window("VolumeParams.window", self.window))
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"VolumeParams.resize {shown(self.resize)}: expected one of {', '.join(RESIZE_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (lists for tuples, None kept)."""
        return {
            "shape": list(self.shape),
            "spacing": None if self.spacing is None else list(self.spacing),
            "window": None if self.window is None else list(self.window),
            "resize": self.resize,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VolumeParams:
        """The inverse of `to_dict`; an unknown or missing key is a `ConfigError`."""
        fields = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - fields or "shape" not in data:
            keys = sorted(data) if isinstance(data, dict) else data
            raise ConfigError(
                f"VolumeParams {shown(keys)}: expected a dict with the key shape and optionally "
                f"{', '.join(sorted(fields - {'shape'}))}"
            )
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in data.items()})


def _shape(value: object, name: str = "VolumeParams.shape") -> tuple[int, int, int]:
    try:
        sides = tuple(value)  # type: ignore[call-overload]
    except TypeError:
        sides = ()
    whole = all(isinstance(side, int | np.integer) and not isinstance(side, bool) for side in sides)
    if len(sides) != 3 or not whole or not all(1 <= side <= MAX_SIDE for side in sides):
        raise ConfigError(f"{name} {shown(value)}: expected 3 whole numbers (depth, height, width), each 1..{MAX_SIDE}")
    if math.prod(sides) > MAX_VOLUME_VOXELS:
        raise ConfigError(
            f"{name} {sides}: {math.prod(sides):,} voxels; expected at most {MAX_VOLUME_VOXELS:,} (MAX_VOLUME_VOXELS)"
        )
    return int(sides[0]), int(sides[1]), int(sides[2])


def _numbers(value: object, count: int) -> tuple[float, ...] | None:
    """`value` as `count` finite floats, or None when it is not that."""
    if isinstance(value, str | bytes):
        return None
    try:
        items = tuple(value)  # type: ignore[call-overload]
        numbers = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        return None
    plain = not any(isinstance(item, bool) for item in items) and all(math.isfinite(n) for n in numbers)
    return numbers if len(numbers) == count and plain else None


def _spacing(name: str, value: object) -> tuple[float, float, float]:
    numbers = _numbers(value, 3)
    if numbers is None or not all(n > 0 for n in numbers):
        raise ConfigError(f"{name} {shown(value)}: expected 3 voxel sizes (z, y, x) in mm, each > 0{_or_none(name)}")
    return numbers[0], numbers[1], numbers[2]


def _window(name: str, value: object) -> tuple[float, float]:
    numbers = _numbers(value, 2)
    if numbers is None or not numbers[0] < numbers[1]:
        raise ConfigError(
            f"{name} {shown(value)}: expected (low, high) finite intensities with low < high{_or_none(name)}"
        )
    return numbers[0], numbers[1]


def _or_none(name: str) -> str:
    return ", or None" if name.startswith("VolumeParams.") else ""


def resample_to_spacing(volume: Volume, spacing: tuple[float, float, float], *, order: int = 1) -> Volume:
    """`volume` resampled to voxels of `spacing` (z, y, x) mm, the new grid centred on the old one's extent.

    Along each axis the new size is round(old size × old spacing / new spacing) (half up, at least 1),
    and the voxels are exactly `spacing` apart. The grid's extent changes only by that rounding, so the
    new grid is centred on the old one and `origin` moves to the new first voxel. `order` is the
    spline order (1 = linear). Beyond the edge, the nearest voxel is repeated, so the border does not
    darken. A result of more than MAX_VOLUME_VOXELS voxels is refused (`ImageError` naming the source).
    """
    target = _spacing("spacing", spacing)
    steps = tuple(new / old for new, old in zip(target, volume.spacing))
    shape = tuple(max(1, math.floor(n / step + 0.5)) for n, step in zip(volume.shape, steps))
    if shape == volume.shape and all(step == 1.0 for step in steps):
        return volume
    if math.prod(shape) > MAX_VOLUME_VOXELS:
        raise ImageError(
            f"resampled from {volume.spacing} to {target} mm would be {'×'.join(map(str, shape))} voxels; expected "
            f"at most {MAX_VOLUME_VOXELS:,} (MAX_VOLUME_VOXELS): choose a coarser spacing",
            file=volume.source or "volume",
        )
    voxels, first = _centred_zoom(volume.voxels, shape, steps, order)
    direction = np.asarray(volume.direction, dtype=np.float64).reshape(3, 3)
    shift = direction @ (np.asarray(first[::-1]) * np.asarray(volume.spacing[::-1]))
    origin = tuple(float(value) for value in np.asarray(volume.origin) + shift)
    logger.debug("%s: resampled %s → %s voxels (%s mm)", volume.source, volume.shape, shape, target)
    voxels.flags.writeable = False
    return dataclasses.replace(volume, voxels=voxels, spacing=target, origin=origin)


def resample_to_shape(voxels: np.ndarray, shape: tuple[int, int, int], *, order: int = 1) -> np.ndarray:
    """The 3D array interpolated to `shape`, each output voxel covering an equal share of the input's extent.

    Output voxel i along an axis of n → m voxels samples input coordinate (i + 0.5) · n / m − 0.5 (the
    whole voxel extents are matched, as an image resize does). float32; spline `order` (1 = linear).
    """
    shape = _shape(shape, "shape")
    voxels = np.asarray(voxels, dtype=np.float32)
    if voxels.shape == shape:
        return voxels.copy()
    return _centred_zoom(voxels, shape, tuple(n / m for n, m in zip(voxels.shape, shape)), order)[0]


def _centred_zoom(
    voxels: np.ndarray, shape: tuple[int, ...], steps: tuple[float, ...], order: int
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Sample `voxels` on a grid of `shape` whose voxels are `steps` input voxels apart and whose centre is the
    input's centre. Returns the float32 result and the input index coordinates of output voxel [0, 0, 0]."""
    if not (isinstance(order, int) and 0 <= order <= 5):
        raise ConfigError(f"order {shown(order)}: expected a spline order 0..5 (1 = linear)")
    first = tuple((n - 1) / 2.0 - (m - 1) / 2.0 * step for n, m, step in zip(voxels.shape, shape, steps))
    result = ndimage.affine_transform(
        np.asarray(voxels, dtype=np.float32),
        np.asarray(steps, dtype=np.float64),
        offset=first,
        output_shape=shape,
        output=np.float32,
        order=order,
        mode="nearest",
    )
    return result, first


def window_to_uint8(voxels: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Clip `voxels` to `window` (low, high) and map it linearly onto 0..255, rounded to the nearest level.

    low → 0 and high → 255. With `window` None, the finite minimum..maximum of `voxels` is the window, and
    a flat volume becomes all 0. NaN becomes 0, +inf 255 and -inf 0.
    """
    low, high = _finite_range(voxels) if window is None else _window("window", window)
    return _to_uint8(np.asarray(voxels, dtype=np.float32), low, high)


def _finite_range(voxels: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values, (0, 0) when there are none (a masked copy only when some are not)."""
    values = np.asarray(voxels)
    finite = np.isfinite(values)
    if finite.all():
        return float(values.min()), float(values.max())
    kept = values[finite]
    return (float(kept.min()), float(kept.max())) if kept.size else (0.0, 0.0)


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.clip(values, np.float32(low), np.float32(high)) - np.float32(low)) * np.float32(255.0 / (high - low))
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.clip(np.rint(scaled), 0.0, 255.0).astype(np.uint8)


def pad_or_crop(voxels: np.ndarray, shape: tuple[int, ...], fill: float) -> np.ndarray:
    """Centre-pad (with `fill`) or centre-crop each axis of `voxels` to `shape` (one side per axis of the array).

    An odd difference puts the extra voxel at the end. Padding 3 → 6 adds 1 before and 2 after, and cropping
    6 → 3 drops 1 before and 2 after, so the centre voxel stays at the centre (index n // 2 → m // 2 when
    both sizes are odd).
    """
    voxels = np.asarray(voxels)
    if len(shape) != voxels.ndim or not all(isinstance(m, int | np.integer) and m >= 1 for m in shape):
        raise ValueError(f"pad_or_crop shape {shown(shape)}: expected {voxels.ndim} positive sides for {voxels.shape}")
    crop = tuple(slice((n - m) // 2, (n - m) // 2 + m) if n > m else slice(None) for n, m in zip(voxels.shape, shape))
    cropped = voxels[crop]
    pads = tuple(((m - n) // 2, m - n - (m - n) // 2) if m > n else (0, 0) for n, m in zip(cropped.shape, shape))
    if any(before or after for before, after in pads):
        return np.pad(cropped, pads, mode="constant", constant_values=fill)
    return cropped.copy()


def preprocess_volume(path_or_volume: str | os.PathLike[str] | Volume, params: VolumeParams) -> np.ndarray:
    """A volume file (or Volume) → its stored voxels: uint8 (depth, height, width, 1), deterministic.

    Steps: non-finite voxels replaced (see the module docstring) → resample to `params.spacing` (linear)
    → fit to `params.shape` (`params.resize`) → window to 0..255. The window is the volume's own finite
    range when `params.window` is None, taken before resampling (linear interpolation keeps values within it).
    Raises `ImageError` for a file that cannot be read.
    """
    volume = path_or_volume if isinstance(path_or_volume, Volume) else read_volume(path_or_volume)
    low, high = params.window if params.window is not None else _finite_range(volume.voxels)
    if not np.isfinite(volume.voxels).all():
        finite = np.nan_to_num(volume.voxels, nan=low, posinf=high, neginf=low)
        finite.flags.writeable = False
        volume = dataclasses.replace(volume, voxels=finite)
    if params.spacing is not None:
        volume = resample_to_spacing(volume, params.spacing)
    if params.resize == "pad_crop":
        voxels = pad_or_crop(volume.voxels, params.shape, low)
    else:
        voxels = resample_to_shape(volume.voxels, params.shape)
    return np.ascontiguousarray(_to_uint8(voxels, low, high)[..., np.newaxis])

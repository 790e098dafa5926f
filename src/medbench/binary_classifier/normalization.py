"""pyBIA's per-channel clip-and-min-max normalisation of image stacks, in NumPy.

For channel ``c``: ``x' = (clip(x, min_c, max_c) - min_c) / (max_c - min_c)``, so every pixel lands in
[0, 1]: values at or below ``min_c`` become 0, at or above ``max_c`` 1. `min_pixel` and `max_pixel` are
one number for every channel or one per channel (pyBIA's ``max_pixel=[100, 100, 100]``). The division
is done last and per pixel, so a pixel equal to ``max_c`` gives exactly 1 and none exceeds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from medbench.errors import ConfigError

__all__ = ["MAX_CHANNELS", "as_stack", "checked_limits", "normalize_stack", "pixel_limits"]

MAX_CHANNELS = 3
"""pyBIA's limit: one to three filters (channels) per image."""

PixelLimit = float | Sequence[float]


def pixel_limits(value: PixelLimit, channels: int, name: str) -> tuple[float, ...]:
    """`value` (a number or one number per channel) as one finite float per channel.

    Raises:
        ConfigError: a sequence whose length is not `channels`, or a value that is not a finite number.
    """
    try:
        depth = np.ndim(value)
    except ValueError:  # a ragged nested list
        depth = 2
    if depth > 1:
        raise ConfigError(f"{name}={value!r}: expected a number or a flat list of one number per channel")
    values = [value] if depth == 0 else list(value)  # type: ignore[arg-type]
    if len(values) not in (1, channels):
        raise ConfigError(
            f"{name} has {len(values)} values for images with {channels} channel(s): "
            f"expected one number, or {channels} (one per channel)"
        )
    limits = []
    for entry in values:
        if isinstance(entry, bool) or not isinstance(entry, int | float | np.integer | np.floating):
            raise ConfigError(f"{name}={value!r}: expected numbers, got {entry!r}")
        if not math.isfinite(float(entry)):
            raise ConfigError(f"{name}={value!r}: expected finite numbers, got {entry!r}")
        limits.append(float(entry))
    return tuple(limits * channels) if len(limits) == 1 else tuple(limits)


def checked_limits(
    min_pixel: PixelLimit, max_pixel: PixelLimit, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (min, max) limits, each min below its max.

    Raises:
        ConfigError: a limit of the wrong length or type, or ``min_pixel >= max_pixel`` for a channel.
    """
    lows = pixel_limits(min_pixel, channels, "min_pixel")
    highs = pixel_limits(max_pixel, channels, "max_pixel")
    for channel, (low, high) in enumerate(zip(lows, highs)):
        if not low < high:
            raise ConfigError(
                f"min_pixel {low} >= max_pixel {high} for channel {channel}: expected min_pixel < max_pixel"
            )
    return lows, highs


def as_stack(data: ArrayLike, name: str) -> np.ndarray:
    """`data` as a 4D stack (n, height, width, channels) of 1-3 channels; (n, height, width) gets one channel.

    Raises:
        ConfigError: naming `name`, for a shape that is not a stack, no images, too many channels,
            a non-numeric dtype or NaN pixels.
    """
    stack = np.asarray(data)
    if stack.ndim == 3:
        stack = stack[..., np.newaxis]
    if stack.ndim != 4:
        raise ConfigError(
            f"{name} has shape {np.shape(data)}: expected a stack (n, height, width, channels) "
            "or (n, height, width) of grayscale images"
        )
    if len(stack) == 0:
        raise ConfigError(f"{name} has shape {np.shape(data)}: expected at least one image")
    if not 1 <= stack.shape[-1] <= MAX_CHANNELS:
        raise ConfigError(
            f"{name} has shape {np.shape(data)}: {stack.shape[-1]} channels, expected 1 to {MAX_CHANNELS} "
            "(channels last)"
        )
    if not (np.issubdtype(stack.dtype, np.integer) or np.issubdtype(stack.dtype, np.floating)):
        raise ConfigError(f"{name} has dtype {stack.dtype}: expected integer or floating-point pixels")
    if np.issubdtype(stack.dtype, np.floating) and np.isnan(stack).any():
        raise ConfigError(
            f"{name} holds {int(np.isnan(stack).sum())} NaN pixels: expected numbers "
            "(replace them first, e.g. with np.nan_to_num)"
        )
    return stack


def normalize_stack(
    data: ArrayLike, min_pixel: PixelLimit = 0.0, max_pixel: PixelLimit = 255.0, *, name: str = "data"
) -> np.ndarray:
    """Clip each channel of `data` to [min, max] and map it onto [0, 1] (pyBIA's min-max normalisation).

    Args:
        data: a stack (n, height, width, channels) of 1-3 channels, or (n, height, width).
        min_pixel: the value mapped to 0, one for all channels or one per channel.
        max_pixel: the value mapped to 1, likewise; above `min_pixel` in every channel.
        name: what error messages call `data`.

    Returns:
        float32 array of shape (n, height, width, channels), every value in [0, 1].

    Raises:
        ConfigError: a bad stack (see `as_stack`) or bad limits (see `checked_limits`).
    """
    stack = as_stack(data, name)
    lows, highs = checked_limits(min_pixel, max_pixel, stack.shape[-1])
    low = np.asarray(lows, dtype=np.float32)
    high = np.asarray(highs, dtype=np.float32)
    if not np.all(low < high):
        raise ConfigError(
            f"min_pixel {lows} and max_pixel {highs} are equal in float32 for some channel: expected limits "
            "further apart"
        )
    clipped = np.clip(stack.astype(np.float32), low, high)
    return (clipped - low) / (high - low)

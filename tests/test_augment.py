"""Offline augmentation (pyBIA's routine): property tests on shapes, value ranges, identity and determinism, and the
steps' own effects checked directly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.augment import Augmentation, augmentation
from medbench.errors import ConfigError


def _stack(n: int = 3, size: int = 24, channels: int = 3, dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.uniform(5, 200, (n, size, size, channels))
    return data.astype(dtype)


options = st.fixed_dictionaries(
    {},
    optional={
        "batch": st.integers(1, 3),
        "width_shift": st.integers(0, 4),
        "height_shift": st.integers(0, 4),
        "horizontal": st.booleans(),
        "vertical": st.booleans(),
        "rotation": st.booleans(),
        "fill": st.sampled_from(["constant", "nearest", "reflect", "wrap"]),
        "image_size": st.integers(10, 24),
        "zoom_range": st.just((0.9, 1.1)),
        "skew_angle": st.floats(0, 20),
        "blend_multiplier": st.sampled_from([0, 1, 1.5]),
        "blending_func": st.sampled_from(["mean", "max", "min", "random"]),
        "num_images_to_blend": st.integers(1, 3),
        "mask_shape": st.sampled_from(["circle", "square"]),
    },
)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(options=options, channels=st.sampled_from([1, 3, 5]), dtype=st.sampled_from(["uint8", "float32"]))
def test_shapes_ranges_and_determinism(options: dict, channels: int, dtype: str) -> None:
    data = _stack(channels=channels, dtype=dtype)
    first = augmentation(data, seed=11, **options)
    again = augmentation(data, seed=11, **options)
    np.testing.assert_array_equal(first, again)
    config = Augmentation(**options)
    count = len(data) * config.batch
    if config.blend_multiplier:
        count = int(round(count * config.blend_multiplier))
    size = config.image_size or data.shape[1]
    assert first.shape == (count, size, size, channels) and first.dtype == data.dtype
    low = 0.0 if options.get("fill") == "constant" or options.get("skew_angle") else float(data.min())
    assert first.min() >= min(low, float(data.min())) - 1e-3 and first.max() <= float(data.max()) + 1e-3


def test_everything_off_is_the_identity_and_2d_stacks_stay_2d() -> None:
    data = _stack(dtype="uint8")
    np.testing.assert_array_equal(augmentation(data), data)
    gray = data[..., 0]
    assert augmentation(gray, batch=2, horizontal=True).shape == (6, 24, 24)


def test_flips_and_shifts_move_pixels_exactly_and_channels_move_together() -> None:
    data = _stack(n=1, channels=5)
    flipped = augmentation(data, horizontal=True, batch=40, seed=1)
    for image in flipped:
        assert np.array_equal(image, data[0]) or np.array_equal(image, data[0][:, ::-1])
    assert any(np.array_equal(image, data[0][:, ::-1]) for image in flipped)
    shifted = augmentation(data, width_shift=3, batch=10, seed=2, fill="constant")
    for image in shifted:
        offsets = [
            s
            for s in range(-3, 4)
            if np.allclose(image[:, max(s, 0) : 24 + min(s, 0)], data[0][:, max(-s, 0) : 24 - max(s, 0)])
        ]
        assert offsets, "every copy is the image moved by a whole number of pixels"
    rotated = augmentation(np.repeat(data[..., :1], 5, axis=-1), rotation=True, batch=4, seed=3)
    for image in rotated:
        for channel in range(1, 5):
            np.testing.assert_array_equal(image[..., channel], image[..., 0])


def test_crop_blend_and_cutouts_do_what_they_say() -> None:
    data = _stack(n=4, dtype="float32")
    cropped = augmentation(data, image_size=10)
    np.testing.assert_array_equal(cropped, data[:, 7:17, 7:17])
    blended = augmentation(data, blend_multiplier=2, blending_func="max", num_images_to_blend=4, seed=5)
    assert blended.shape[0] == 8
    masked = augmentation(np.full((2, 30, 30, 1), 9.0, np.float32), mask_size=6, num_masks=1, mask_shape="square")
    zeros = (masked == 0).sum(axis=(1, 2, 3))
    assert ((zeros > 0) & (zeros <= 49)).all()


def test_a_seed_reproduces_and_another_differs() -> None:
    data = _stack()
    kwargs = {"rotation": True, "zoom_range": (0.8, 1.2), "width_shift": 2}
    assert not np.array_equal(augmentation(data, seed=1, **kwargs), augmentation(data, seed=2, **kwargs))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fill": "mirror"}, "fill 'mirror'"),
        ({"blend_multiplier": 0.5}, "blend_multiplier 0.5: expected 0"),
        ({"mask_size": 4}, "mask_size and num_masks go together"),
        ({"batch": 0}, "batch 0"),
        ({"zoom_range": (1.2, 0.8)}, "zoom_range"),
    ],
)
def test_bad_settings_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        augmentation(_stack(), **options)
    with pytest.raises(ConfigError, match="larger than the images"):
        augmentation(_stack(), image_size=30)

"""Transformations named in benchmark names, applied in the declared order."""

from __future__ import annotations

import numpy as np
import pytest

from medbench.data.transforms import compose, parse_transform
from medbench.errors import BenchmarkNameError


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(60, 140, 64, dtype=np.float32), (64, 1))
    return np.clip(base + rng.normal(0, 8, (64, 64)), 0, 255).astype(np.uint8)


def high_frequency(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image.astype(np.float32), axis=1)).mean())


def test_unsharp_mask_adds_detail_and_radius_zero_is_identity(image: np.ndarray) -> None:
    assert high_frequency(parse_transform("sharp21")(image)) > high_frequency(image)
    np.testing.assert_array_equal(parse_transform("sharp01")(image), image)


def test_equalisation_spreads_the_histogram(image: np.ndarray) -> None:
    for token in ("histeq", "clahe", "clahe4"):
        out = parse_transform(token)(image)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out.std() > image.std()


def test_blur_and_median_remove_detail(image: np.ndarray) -> None:
    for token in ("blur2", "median3", "median4"):
        assert high_frequency(parse_transform(token)(image)) < high_frequency(image)


def test_window_maps_its_range_onto_the_full_scale() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = parse_transform("window128w64")(ramp)
    assert out[ramp <= 96].max() == 0 and out[ramp >= 160].min() == 255


def test_rgb_images_keep_their_shape(image: np.ndarray) -> None:
    rgb = np.stack([image] * 3, axis=-1)
    for token in ("sharp21", "histeq", "clahe", "blur1", "median3", "window100w50"):
        assert parse_transform(token)(rgb).shape == rgb.shape


def test_order_matters(image: np.ndarray) -> None:
    a = compose(["histeq", "blur2"])(image)
    b = compose(["blur2", "histeq"])(image)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, parse_transform("blur2")(parse_transform("histeq")(image)))


def test_unknown_transform_is_named() -> None:
    with pytest.raises(BenchmarkNameError, match="'sharpen'"):
        parse_transform("sharpen")

"""Transformations named in benchmark names, applied in the declared order."""

from __future__ import annotations

import numpy as np
import pytest

from medbench.errors import BenchmarkNameError
from medbench.preprocessing.transforms import IMPLEMENTATIONS, compose, parse_transform, unsharp_mask


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(60, 140, 64, dtype=np.float32), (64, 1))
    return np.clip(base + rng.normal(0, 8, (64, 64)), 0, 255).astype(np.uint8)


def high_frequency(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image.astype(np.float32), axis=1)).mean())


def test_unsharp_mask_adds_detail_and_radius_zero_is_identity(image: np.ndarray) -> None:
    assert high_frequency(parse_transform("sharp21")(image)) > high_frequency(image)
    np.testing.assert_array_equal(unsharp_mask(image, radius=0, amount=1), image)
    # A transformation that changes nothing cannot be what a benchmark meant: its token is refused.
    with pytest.raises(BenchmarkNameError, match=r"'sharp01': radius 0 is out of range; expected sharpRA"):
        parse_transform("sharp01")


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


TOKENS = ("sharp21", "histeq", "clahe", "clahe4", "blur2", "median3", "median4", "window100w50")


@pytest.mark.parametrize("token", TOKENS)
def test_every_layout_gives_the_grayscale_result_per_channel(token: str, image: np.ndarray) -> None:
    """(H, W, 1) from the cache and replicated RGB must transform exactly like the plain (H, W) image."""
    transform = parse_transform(token)
    gray = transform(image)
    single = transform(image[..., None])
    rgb = transform(np.repeat(image[..., None], 3, axis=2))
    assert single.shape == image.shape + (1,) and rgb.shape == image.shape + (3,)
    assert gray.dtype == single.dtype == rgb.dtype == np.uint8
    np.testing.assert_array_equal(single[..., 0], gray)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], gray)


def test_histeq_flattens_the_histogram(image: np.ndarray) -> None:
    def flatness(values: np.ndarray) -> float:  # largest gap between the CDF and a uniform CDF
        cdf = np.cumsum(np.bincount(values.ravel(), minlength=256)) / values.size
        return float(np.abs(cdf - np.linspace(1 / 256, 1, 256)).max())

    out = parse_transform("histeq")(image)
    assert flatness(out) < 0.05 < flatness(image)


def test_clahe_raises_local_contrast() -> None:
    rng = np.random.default_rng(2)
    flat = np.clip(120 + rng.normal(0, 3, (64, 64)), 0, 255).astype(np.uint8)

    def local_contrast(values: np.ndarray) -> float:
        tiles = values.astype(np.float32).reshape(8, 8, 8, 8).swapaxes(1, 2)
        return float(tiles.std(axis=(2, 3)).mean())

    assert local_contrast(parse_transform("clahe")(flat)) > 2 * local_contrast(flat)


def test_blur_lowers_variance_of_noise() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    assert parse_transform("blur2")(noise).astype(np.float32).var() < 0.2 * noise.astype(np.float32).var()


def test_median_removes_salt_and_pepper() -> None:
    rng = np.random.default_rng(4)
    clean = np.full((64, 64), 100, np.uint8)
    noisy = clean.copy()
    noisy[rng.random(clean.shape) < 0.05] = 0
    noisy[rng.random(clean.shape) < 0.05] = 255
    assert (noisy != clean).mean() > 0.08
    assert (parse_transform("median3")(noisy) != clean).mean() < 0.01
    assert (parse_transform("blur1")(noisy) != clean).mean() > 0.5  # a gaussian only smears the specks


def test_window_endpoints_and_middle() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = parse_transform("window100w50")(ramp)
    assert out[ramp == 75].item() == 0 and out[ramp == 125].item() == 255
    assert abs(int(out[ramp == 100].item()) - 127) <= 1
    assert (np.diff(out.ravel().astype(int)) >= 0).all()
    with pytest.raises(BenchmarkNameError):
        parse_transform("window100w0")


def test_sharpening_raises_edge_energy() -> None:
    step = np.full((32, 32), 80, np.uint8)
    step[:, 16:] = 160
    soft = parse_transform("blur1")(step)

    def edge_energy(values: np.ndarray) -> float:
        return float(np.square(np.diff(values.astype(np.float32), axis=1)).sum())

    assert edge_energy(parse_transform("sharp21")(soft)) > 1.5 * edge_energy(soft)


def test_blur_then_sharpen_differs_from_sharpen_then_blur() -> None:
    """Both are linear and would commute, but sharpening a full-range edge clips its overshoot."""
    edge = np.zeros((32, 32), np.uint8)
    edge[:, 16:] = 255
    blur_first = compose(["blur3", "sharp21"])(edge)
    sharpen_first = compose(["sharp21", "blur3"])(edge)
    assert np.abs(blur_first.astype(int) - sharpen_first.astype(int)).max() > 5
    np.testing.assert_array_equal(blur_first, parse_transform("sharp21")(parse_transform("blur3")(edge)))
    np.testing.assert_array_equal(compose([])(edge), edge)


def test_every_form_of_the_vocabulary_has_an_implementation() -> None:
    from medbench.benchmark.vocabulary import TRANSFORMS

    assert set(IMPLEMENTATIONS) == set(TRANSFORMS)

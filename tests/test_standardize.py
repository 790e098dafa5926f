"""Standardize modes match Keras' preprocess_input and run as pure TensorFlow ops."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras.applications import imagenet_utils

from medbench.architectures.info import STANDARDIZE_MODES, check_mode, standardize_modes
from medbench.architectures.standardization import standardize
from medbench.errors import ConfigError


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(4, 9, 7, 3)).astype(np.float32)


@pytest.mark.parametrize("mode", ["torch", "tf", "caffe"])
def test_matches_keras_preprocess_input(images: np.ndarray, mode: str) -> None:
    expected = imagenet_utils.preprocess_input(images.copy(), data_format="channels_last", mode=mode)
    result = standardize(tf.constant(images), mode)
    assert result.dtype == tf.float32
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["torch", "tf", "caffe"])
def test_single_image_matches_keras(images: np.ndarray, mode: str) -> None:
    image = images[0]
    expected = imagenet_utils.preprocess_input(image.copy(), data_format="channels_last", mode=mode)
    np.testing.assert_allclose(standardize(image, mode).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_unit_and_none(images: np.ndarray) -> None:
    np.testing.assert_allclose(standardize(images, "unit").numpy(), images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(standardize(images, "none").numpy(), images)


def test_zscore_is_per_image(images: np.ndarray) -> None:
    images[1] = images[1] * 0.1 + 100.0
    result = standardize(images, "zscore").numpy()
    for original, out in zip(images, result):
        expected = (original - original.mean()) / original.std()
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
        assert abs(out.mean()) < 1e-4
        assert out.std() == pytest.approx(1.0, abs=1e-4)


def test_zscore_flat_image_is_zero_not_nan() -> None:
    flat = np.full((2, 8, 8, 3), 37.0, dtype=np.float32)
    result = standardize(flat, "zscore").numpy()
    assert np.isfinite(result).all()
    np.testing.assert_array_equal(result, 0.0)


@pytest.mark.parametrize(("mode", "top"), [("minmax", 1.0), ("grayscale", 255.0)])
def test_minmax_and_grayscale_map_each_image_range(images: np.ndarray, mode: str, top: float) -> None:
    images[1] = images[1] * 0.1 + 100.0
    images[2] = 37.0  # flat
    result = standardize(images, mode).numpy()
    for original, out in zip(images[:2], result[:2]):
        expected = (original - original.min()) / (original.max() - original.min()) * top
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4 * top)
        assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(top, rel=1e-6)
    np.testing.assert_array_equal(result[2], 0.0)


def test_uint8_input_returns_float32() -> None:
    pixels = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    result = standardize(pixels, "tf")
    assert result.dtype == tf.float32
    np.testing.assert_allclose(result.numpy(), pixels / 127.5 - 1.0, rtol=1e-6, atol=1e-6)


def test_runs_inside_tf_data(images: np.ndarray) -> None:
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2).map(lambda x: standardize(x, "torch"))
    result = np.concatenate([batch.numpy() for batch in dataset])
    expected = imagenet_utils.preprocess_input(images.copy(), data_format="channels_last", mode="torch")
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_unknown_mode_lists_modes(images: np.ndarray) -> None:
    with pytest.raises(ConfigError) as error:
        standardize(images, "imagenet")
    message = str(error.value)
    assert "'imagenet'" in message
    for mode in STANDARDIZE_MODES:
        assert mode in message


@pytest.mark.parametrize("mode", ["torch", "caffe"])
def test_channel_specific_modes_need_rgb(mode: str) -> None:
    gray = np.zeros((2, 8, 8, 1), dtype=np.float32)
    with pytest.raises(ConfigError, match="3 channels"):
        standardize(gray, mode)


@pytest.mark.parametrize("mode", ["tf", "unit", "zscore", "minmax", "grayscale", "none"])
def test_generic_modes_accept_any_channel_count(mode: str) -> None:
    gray = np.random.default_rng(1).uniform(0, 255, size=(2, 8, 8, 1)).astype(np.float32)
    assert standardize(gray, mode).shape == gray.shape


def test_mode_names() -> None:
    assert standardize_modes() == ("torch", "tf", "caffe", "unit", "zscore", "minmax", "grayscale", "none")
    assert check_mode("torch") == "torch"

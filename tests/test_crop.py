"""Lung-field cropping: sensible boxes on real NIH chest X-rays at every size, robust fallbacks.

Images: NIH Clinical Center, ChestX-ray14 (Wang et al., CVPR 2017), https://nihcc.app.box.com/v/ChestXray-NIHCC.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data

from medbench.errors import ImageError
from medbench.preprocessing.crop import CENTRAL_FRACTION, crop_lung_field, lung_field_box

SAMPLE_IMAGES = SHARED_DATA / "nih-cxr14-sample" / "images"
SIZES = (64, 128, 224, 256, 512, 1024)


@pytest.fixture(scope="module")
def chest_xrays() -> list[np.ndarray]:
    """Twenty real 512 px chest X-rays (every 20th of the sorted sample), grayscale uint8."""
    paths = sorted(SAMPLE_IMAGES.glob("*.png"))[::20][:20]
    assert len(paths) == 20, f"expected at least 400 images in {SAMPLE_IMAGES}"
    return [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in paths]


def relative(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """(top, left, bottom, right) as fractions of the image height and width."""
    top, left, height, width = box
    return np.array([top / shape[0], left / shape[1], (top + height) / shape[0], (left + width) / shape[1]])


def resized(image: np.ndarray, size: int) -> np.ndarray:
    shrinking = size < image.shape[0]
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def chest(size: int) -> np.ndarray:
    """A synthetic chest: bright body, two dark elliptical lungs, dark air at the sides."""
    image = np.full((size, size), 40, np.uint8)
    cv2.rectangle(image, (size // 10, 0), (size - size // 10, size - 1), 200, -1)
    for cx in (0.33, 0.67):
        cv2.ellipse(image, (int(cx * size), int(0.45 * size)), (int(0.13 * size), int(0.3 * size)), 0, 0, 360, 70, -1)
    return cv2.GaussianBlur(image, (0, 0), size / 100)


@needs_shared_data
def test_boxes_on_real_images_cover_the_chest(chest_xrays: list[np.ndarray]) -> None:
    for index, image in enumerate(chest_xrays):
        top, left, bottom, right = relative(lung_field_box(image), image.shape)
        height, width = bottom - top, right - left
        assert 0.3 <= height * width <= 0.95, f"image {index}: area fraction {height * width:.2f}"
        assert 0.25 <= (top + bottom) / 2 <= 0.75 and 0.25 <= (left + right) / 2 <= 0.75, f"image {index}: centre"
        assert 0.6 <= height / width <= 1.7, f"image {index}: aspect {height / width:.2f}"


@needs_shared_data
def test_box_is_the_same_at_every_size(chest_xrays: list[np.ndarray]) -> None:
    """The original template match broke below about 246 px; relative boxes must agree from 64 to 1024 px."""
    for index, image in enumerate(chest_xrays):
        reference = relative(lung_field_box(image), image.shape)
        for size in SIZES:
            scaled = relative(lung_field_box(resized(image, size)), (size, size))
            assert np.abs(scaled - reference).max() <= 0.05, f"image {index} at {size} px: {scaled} vs {reference}"


@needs_shared_data
def test_one_and_three_channel_inputs_give_the_same_crop(chest_xrays: list[np.ndarray]) -> None:
    for image in chest_xrays[:5]:
        gray = crop_lung_field(image)
        single = crop_lung_field(image[..., None])
        rgb = crop_lung_field(np.repeat(image[..., None], 3, axis=2))
        assert single.shape == gray.shape + (1,) and rgb.shape == gray.shape + (3,)
        np.testing.assert_array_equal(single[..., 0], gray)
        for channel in range(3):
            np.testing.assert_array_equal(rgb[..., channel], gray)


@needs_shared_data
def test_crop_is_the_box_and_is_deterministic(chest_xrays: list[np.ndarray]) -> None:
    image = chest_xrays[0]
    top, left, height, width = lung_field_box(image)
    np.testing.assert_array_equal(crop_lung_field(image), image[top : top + height, left : left + width])
    assert lung_field_box(image.copy()) == (top, left, height, width)


@needs_shared_data
def test_real_images_work_at_32_px(chest_xrays: list[np.ndarray]) -> None:
    for image in chest_xrays:
        small = resized(image, 32)
        top, left, height, width = lung_field_box(small)
        assert 0 <= top and 0 <= left and top + height <= 32 and left + width <= 32
        assert height * width >= 0.25 * 32 * 32


@pytest.mark.parametrize("size", [32, 64, 256, 1000])
def test_synthetic_chest_boxes_the_two_lungs(size: int) -> None:
    top, left, bottom, right = relative(lung_field_box(chest(size)), (size, size))
    # lungs span x 0.20..0.80 and y 0.15..0.75; the box holds them and stays inside the body
    assert left <= 0.22 and right >= 0.78 and top <= 0.17 and bottom >= 0.73
    assert left >= 0.08 and right <= 0.92 and top >= 0.0 and bottom <= 1.0


@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_image_falls_back_to_the_central_crop(value: int, caplog: pytest.LogCaptureFixture) -> None:
    image = np.full((300, 200), value, np.uint8)
    with caplog.at_level(logging.DEBUG, logger="medbench.preprocessing.crop"):
        box = lung_field_box(image)
    height, width = round(300 * CENTRAL_FRACTION), round(200 * CENTRAL_FRACTION)
    assert box == ((300 - height) // 2, (200 - width) // 2, height, width)
    assert "central crop" in caplog.text


def test_noise_and_text_fall_back_without_error() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    text = np.zeros((128, 128), np.uint8)
    cv2.putText(text, "PORTABLE", (5, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    for image in (noise, text):
        top, left, height, width = lung_field_box(image)
        assert height >= 0.3 * image.shape[0] and width >= 0.3 * image.shape[1]


@pytest.mark.parametrize(
    "shape", [(32, 32), (32, 32, 1), (32, 32, 3), (2, 2), (40, 90), (90, 40, 3), (3000, 2500)], ids=str
)
def test_dtype_and_channels_are_kept_at_every_size(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    if shape[0] >= 32:
        body = chest(min(shape[:2]))
        body = cv2.resize(body, (shape[1], shape[0]))
        image = np.repeat(body[..., None], shape[2], axis=2) if len(shape) == 3 else body
    cropped = crop_lung_field(image)
    assert cropped.dtype == np.uint8 and cropped.ndim == image.ndim and cropped.shape[2:] == image.shape[2:]
    assert 1 <= cropped.shape[0] <= shape[0] and 1 <= cropped.shape[1] <= shape[1]


def test_other_dtypes_are_kept() -> None:
    image = chest(128).astype(np.uint16) * 200
    cropped = crop_lung_field(image)
    assert cropped.dtype == np.uint16
    assert lung_field_box(image) == lung_field_box(chest(128))


@pytest.mark.parametrize("shape", [(5,), (1, 10), (10, 10, 2), (2, 3, 4, 5)], ids=str)
def test_non_images_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ImageError, match="expected"):
        lung_field_box(np.zeros(shape, np.uint8))

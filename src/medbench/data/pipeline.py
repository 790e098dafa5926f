"""The tf.data input pipeline: read → decode → crop → transform → resize → augment → standardize → batch.

Training data is shuffled (seeded) and augmented on the fly. Evaluation data keeps the order it was
given and carries each sample's id next to its image, so every stored prediction names its image
(the original re-shuffled its evaluation generator and misaligned saved predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from medbench.architectures.standardize import standardize
from medbench.data.transforms import compose

AUTOTUNE = tf.data.AUTOTUNE
CROP_FRACTION = 0.875
AFFINE_ROTATION_DEG = 15.0
AFFINE_TRANSLATION = 0.05
AFFINE_SCALE = (0.95, 1.05)
COLOR_BRIGHTNESS = 0.1 * 255.0
COLOR_CONTRAST = (0.9, 1.1)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides the pixels a model sees."""

    image_size: int
    batch_size: int
    standardize: str = "unit"
    crop: bool = False
    transformations: tuple[str, ...] = ()
    augmentations: tuple[str, ...] = ()
    seed: int = 0


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """Read a PNG/JPEG file as 8-bit RGB (grayscale is replicated, alpha dropped)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape((None, None, 3))
    return image


def center_crop(image: tf.Tensor, fraction: float = CROP_FRACTION) -> tf.Tensor:
    """Keep the central `fraction` of each side, where the lung fields of a frontal chest X-ray lie."""
    shape = tf.shape(image)
    height = tf.cast(tf.round(tf.cast(shape[0], tf.float32) * fraction), tf.int32)
    width = tf.cast(tf.round(tf.cast(shape[1], tf.float32) * fraction), tf.int32)
    return tf.image.crop_to_bounding_box(image, (shape[0] - height) // 2, (shape[1] - width) // 2, height, width)


def _apply_transformations(image: tf.Tensor, tokens: tuple[str, ...]) -> tf.Tensor:
    transform = compose(tokens)
    result = tf.numpy_function(lambda array: np.ascontiguousarray(transform(array)), [image], tf.uint8, stateful=False)
    result.set_shape((None, None, 3))
    return result


def affine_matrix(seed: tf.Tensor, size: int) -> tf.Tensor:
    """A random rotation (±15°), translation (±5 %) and scale (0.95–1.05) about the image centre.

    Returned in the output→input form ImageProjectiveTransformV3 expects (8 numbers).
    """
    draws = tf.random.stateless_uniform((4,), seed=seed, minval=-1.0, maxval=1.0)
    angle = draws[0] * (AFFINE_ROTATION_DEG * math.pi / 180.0)
    shift = draws[1:3] * (AFFINE_TRANSLATION * size)
    low, high = AFFINE_SCALE
    scale = low + (draws[3] + 1.0) / 2.0 * (high - low)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1) / 2.0
    cx, cy = centre + shift[0], centre + shift[1]
    return tf.stack([cos, sin, centre - cos * cx - sin * cy, -sin, cos, centre + sin * cx - cos * cy, 0.0, 0.0])


def augment_affine(image: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    matrix = affine_matrix(seed, size)[tf.newaxis]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=matrix,
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]


def augment_color(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random brightness (±10 % of the range) and contrast (0.9–1.1) on [0, 255] pixels."""
    image = tf.image.stateless_random_brightness(image, COLOR_BRIGHTNESS, seed=seed)
    image = tf.image.stateless_random_contrast(image, *COLOR_CONTRAST, seed=seed + 1)
    return tf.clip_by_value(image, 0.0, 255.0)


def load_pixels(path: tf.Tensor, config: PipelineConfig) -> tf.Tensor:
    """Decode, crop, transform and resize one image to float32 RGB in [0, 255] — the deterministic part."""
    image = decode_image(path)
    if config.crop:
        image = center_crop(image)
    if config.transformations:
        image = _apply_transformations(image, config.transformations)
    image = tf.image.resize(image, (config.image_size, config.image_size), method="area", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def _augment(image: tf.Tensor, seed: tf.Tensor, config: PipelineConfig) -> tf.Tensor:
    if "affine" in config.augmentations:
        image = augment_affine(image, seed, config.image_size)
    if "color" in config.augmentations:
        image = augment_color(image, seed + 7)
    return image


def training_dataset(paths: Sequence[str], targets: np.ndarray, config: PipelineConfig) -> tf.data.Dataset:
    """Shuffled (reshuffled every epoch, seeded), augmented, standardized (images, targets) batches."""
    paths = np.asarray(paths, dtype=str)
    targets = np.asarray(targets, dtype=np.float32)
    samples = tf.data.Dataset.from_tensor_slices((paths, targets)).shuffle(
        len(paths), seed=config.seed, reshuffle_each_iteration=True
    )
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
    data = tf.data.Dataset.zip(samples, seeds)

    def load(sample: tuple[tf.Tensor, tf.Tensor], seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        path, target = sample
        image = _augment(load_pixels(path, config), seed, config)
        return standardize(image, config.standardize), target

    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(config.batch_size).prefetch(AUTOTUNE)


def evaluation_dataset(
    paths: Sequence[str], targets: np.ndarray, sample_ids: Sequence[str], config: PipelineConfig
) -> tf.data.Dataset:
    """(images, targets, sample ids) batches in exactly the given order, never shuffled or augmented."""
    data = tf.data.Dataset.from_tensor_slices(
        (np.asarray(paths, dtype=str), np.asarray(targets, dtype=np.float32), np.asarray(sample_ids, dtype=str))
    )

    def load(path: tf.Tensor, target: tf.Tensor, sample_id: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return standardize(load_pixels(path, config), config.standardize), target, sample_id

    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(config.batch_size).prefetch(AUTOTUNE)


def predict_with_ids(model: tf.keras.Model, dataset: tf.data.Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run `model` over an evaluation dataset: (sample ids, predictions, targets), row-aligned by construction."""
    ids: list[str] = []
    predictions: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for images, batch_targets, batch_ids in dataset:
        predictions.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
        targets.append(batch_targets.numpy())
        ids.extend(value.decode("utf-8") for value in batch_ids.numpy())
    if not ids:
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    return ids, np.concatenate(predictions), np.concatenate(targets).astype(np.float64)

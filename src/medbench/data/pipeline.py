"""The tf.data input pipeline: cached uint8 pixels → batch gather → augment → standardize → batches.

Images come preprocessed from an `ImageCache` (medbench.preprocessing): one `tf.numpy_function` per
batch gathers them from the memory-mapped shards, and everything after that works on whole batches.
Training order and augmentation of epoch e are a pure function of (seed, e), so a run resumed at
epoch k sees exactly the batches an uninterrupted run sees there. Evaluation data keeps the order it
was given and carries each sample's id next to its image, so every stored prediction names its image
(the original re-shuffled its evaluation generator and misaligned saved predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from medbench.architectures.standardize import standardize, standardize_lookup
from medbench.errors import ConfigError
from medbench.preprocessing.cache import ImageCache

AUTOTUNE = tf.data.AUTOTUNE
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
    augmentations: tuple[str, ...] = ()
    seed: int = 0
    channels_out: int = 3


def affine_matrices(draws: tf.Tensor, size: int) -> tf.Tensor:
    """Rotation (±15°), translation (±5 %) and scale (0.95–1.05) about the image centre, one per row of draws.

    `draws` holds 4 uniform numbers in [-1, 1) per image, shape (n, 4). Returns (n, 8) matrices in the
    output→input form ImageProjectiveTransformV3 expects.
    """
    angle = draws[:, 0] * (AFFINE_ROTATION_DEG * math.pi / 180.0)
    shift_x, shift_y = draws[:, 1] * (AFFINE_TRANSLATION * size), draws[:, 2] * (AFFINE_TRANSLATION * size)
    low, high = AFFINE_SCALE
    scale = low + (draws[:, 3] + 1.0) / 2.0 * (high - low)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1) / 2.0
    cx, cy = centre + shift_x, centre + shift_y
    zero = tf.zeros_like(cos)
    return tf.stack(
        [cos, sin, centre - cos * cx - sin * cy, -sin, cos, centre + sin * cx - cos * cy, zero, zero], axis=1
    )


def affine_matrix(seed: tf.Tensor, size: int) -> tf.Tensor:
    """One random affine matrix (8 numbers) drawn from `seed`; see `affine_matrices`."""
    draws = tf.random.stateless_uniform((4,), seed=seed, minval=-1.0, maxval=1.0)
    return affine_matrices(draws[tf.newaxis], size)[0]


def predict_with_ids(model: tf.keras.Model, dataset: tf.data.Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run `model` over an evaluation dataset: (sample ids, predictions, targets), row-aligned by construction.

    A model built under a multi-replica strategy is called directly: its `predict_on_batch` would
    give every replica the whole batch and return each row once per replica.
    """
    forward = model.predict_on_batch
    if model.distribute_strategy.num_replicas_in_sync > 1:
        forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    ids: list[str] = []
    predictions: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for images, batch_targets, batch_ids in dataset:
        predictions.append(np.asarray(forward(images), dtype=np.float64))
        targets.append(batch_targets.numpy())
        ids.extend(value.decode("utf-8") for value in batch_ids.numpy())
    if not ids:
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    return ids, np.concatenate(predictions), np.concatenate(targets).astype(np.float64)


_PERMUTATION_STREAM = 0
_AUGMENTATION_STREAM = 1


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch; the last, partial batch counts (it is kept)."""
    return math.ceil(n / batch_size)


def _check_cache(cache: ImageCache, config: PipelineConfig) -> None:
    size, _, channels = cache.image_shape
    if size != config.image_size:
        raise ConfigError(
            f"pipeline image_size {config.image_size} but the cache {cache.directory} holds {size} px images; "
            "expected a cache built with the same image size"
        )
    if config.channels_out not in (channels, 3):
        raise ConfigError(
            f"channels_out {config.channels_out}: the cache holds {channels}-channel images, so expected "
            f"{channels} or 3"
        )


def _gather(cache: ImageCache, rows: tf.Tensor) -> tf.Tensor:
    """uint8 images of a batch of cache rows: one numpy call per batch."""
    images = tf.numpy_function(cache.images, [rows], tf.uint8, stateful=False)
    images.set_shape((None, *cache.image_shape))
    return images


def warp_affine(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Warp each image of a uint8 batch (n, h, w, c) by its output→input matrix, with OpenCV.

    `matrices` holds ImageProjectiveTransformV3's 8 numbers per image; bilinear, corners filled with 0.
    OpenCV's warp is about five times faster than TensorFlow's on CPU and agrees with it to one grey level.
    """
    warped = np.empty_like(images)
    size = (images.shape[2], images.shape[1])
    for image, matrix, target in zip(images, matrices, warped):
        inverse = np.asarray(matrix[:6], dtype=np.float64).reshape(2, 3)
        result = cv2.warpAffine(
            image, inverse, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
        )
        target[...] = result.reshape(target.shape)
    return warped


def augment_affine_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """An independent random affine warp of each image of a batch (n, h, w, c), uint8 or float; corners fill with 0.

    uint8 batches are warped by OpenCV (`warp_affine`), float batches by TensorFlow; both use the same
    matrices, drawn from `seed`.
    """
    size = images.shape[1]
    draws = tf.random.stateless_uniform((tf.shape(images)[0], 4), seed=seed, minval=-1.0, maxval=1.0)
    matrices = affine_matrices(draws, size)
    if images.dtype == tf.uint8:
        warped = tf.numpy_function(warp_affine, [images, matrices], tf.uint8, stateful=False)
        warped.set_shape(images.shape)
        return warped
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrices,
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def augment_color_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Per image: brightness ±10 % of the range, then contrast 0.9–1.1 about its channel means; [0, 255] kept."""
    shape = (tf.shape(images)[0], 1, 1, 1)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    delta = tf.random.stateless_uniform(shape, seed=seeds[0], minval=-COLOR_BRIGHTNESS, maxval=COLOR_BRIGHTNESS)
    factor = tf.random.stateless_uniform(shape, seed=seeds[1], minval=COLOR_CONTRAST[0], maxval=COLOR_CONTRAST[1])
    images = images + delta
    mean = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
    return tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, augmentations: Sequence[str]) -> tf.Tensor:
    """The benchmark's augmentations ("affine", "color") on a batch in [0, 255], drawn from `seed`.

    A uint8 batch stays uint8 under `affine` alone (warped and rounded, so the lookup-table
    standardization still applies); `color` works on floats.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if "affine" in augmentations:
        images = augment_affine_batch(images, seeds[0])
    if "color" in augmentations:
        images = augment_color_batch(tf.cast(images, tf.float32), seeds[1])
    return images


def _finish(images: tf.Tensor, config: PipelineConfig) -> tf.Tensor:
    """A batch in [0, 255] → `channels_out` channels → standardized float32.

    A uint8 grayscale batch bound for three channels goes through one lookup table (see
    `standardize_lookup`); anything else is cast, replicated and standardized.
    """
    table = standardize_lookup(config.standardize)
    if images.dtype == tf.uint8 and images.shape[-1] == 1 and config.channels_out == 3 and table is not None:
        return tf.gather(tf.constant(table), tf.cast(images[..., 0], tf.int32))
    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 1 and config.channels_out == 3:
        images = tf.repeat(images, 3, axis=-1)
    return standardize(images, config.standardize)


def standardize_images(images: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """uint8 (n, h, w, c) images from `preprocess_image` → what the model takes (for ad-hoc prediction)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ConfigError(f"expected uint8 images of shape (n, height, width, 1 or 3), got {images.shape}")
    return _finish(tf.convert_to_tensor(images), config).numpy()


def epoch_seed(seed: int | tf.Tensor, epoch: int | tf.Tensor, stream: int) -> tf.Tensor:
    """The stateless seed of one random stream (permutation or augmentation) of one epoch."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, stream)


def training_dataset(
    cache: ImageCache,
    rows: np.ndarray,
    targets: np.ndarray,
    config: PipelineConfig,
    *,
    first_epoch: int = 0,
    epochs: int = 1,
) -> tf.data.Dataset:
    """(images, targets) batches of epochs `first_epoch`..`epochs - 1`, one after the other.

    Epoch e is a permutation drawn from seed (config.seed, e) cut into batches (the last one partial);
    batch b of epoch e is augmented with seeds folded from (config.seed, e, b). Nothing depends on
    earlier epochs, so a resumed run gets the same data. Use with
    ``model.fit(data, initial_epoch=first_epoch, epochs=epochs, steps_per_epoch=steps_per_epoch(n, batch))``.
    """
    _check_cache(cache, config)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float32)
    if len(rows) != len(targets):
        raise ConfigError(f"{len(rows)} cache rows but {len(targets)} target rows; expected one target row per image")
    if len(rows) == 0:
        raise ConfigError("no training samples")
    n, batch_size = len(rows), config.batch_size
    steps = steps_per_epoch(n, batch_size)
    rows_t, targets_t = tf.constant(rows), tf.constant(targets)
    seed, augmentations = config.seed, tuple(config.augmentations)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=epoch_seed(seed, epoch, _PERMUTATION_STREAM)
        )
        augmentation = epoch_seed(seed, epoch, _AUGMENTATION_STREAM)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        numbers = tf.data.Dataset.range(steps)
        return tf.data.Dataset.zip(batches, numbers).map(
            lambda index, number: (index, tf.random.experimental.stateless_fold_in(augmentation, number))
        )

    def load(index: tf.Tensor, batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = _gather(cache, tf.gather(rows_t, index))
        if augmentations:
            images = augment_batch(images, batch_seed, augmentations)
        return _finish(images, config), tf.gather(targets_t, index)

    data = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def evaluation_dataset(
    cache: ImageCache,
    rows: np.ndarray,
    targets: np.ndarray,
    sample_ids: Sequence[str],
    config: PipelineConfig,
) -> tf.data.Dataset:
    """(images, targets, sample ids) batches in exactly the given order, never shuffled or augmented."""
    _check_cache(cache, config)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    data = tf.data.Dataset.from_tensor_slices(
        (rows, np.asarray(targets, dtype=np.float32), np.asarray(sample_ids, dtype=str))
    ).batch(config.batch_size)

    def load(batch_rows: tf.Tensor, batch_targets: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, ...]:
        images = _gather(cache, batch_rows)
        return _finish(images, config), batch_targets, ids

    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)

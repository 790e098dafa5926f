"""The tf.data input pipeline: cached uint8 pixels → batch gather → augment → uint8 batches for the model.

Images come preprocessed from an `ImageCache` (medbench.preprocessing): one `tf.numpy_function` per
batch gathers them from the memory-mapped shards, and everything after that works on whole batches.
Volumes (a 3D benchmark) take the same path, as 5D batches (n, depth, height, width, 1).
Batches stay uint8 with the cache's channels (1 for grayscale): the model standardizes them and
expands them to its backbone's channels itself (`medbench.architectures.standardization`), on the
device, from a quarter of the bytes a float32 batch would take.
Training order and augmentation of epoch e are a pure function of (seed, e), so a run resumed at
epoch k sees exactly the batches an uninterrupted run sees there. Evaluation data keeps the order it
was given and carries each sample's id next to its image, so every stored prediction names its image
(the original re-shuffled its evaluation generator and misaligned saved predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from medbench.architectures.base import IMAGE_INPUT, METADATA_INPUT
from medbench.errors import ConfigError
from medbench.pipeline.augmentation import augment_batch
from medbench.pipeline.config import PipelineConfig
from medbench.pipeline.enumeration import batch_variants, variant_count
from medbench.preprocessing.cache import ImageCache

AUTOTUNE = tf.data.AUTOTUNE
_PERMUTATION_STREAM = 0
_AUGMENTATION_STREAM = 1


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch; the last, partial batch counts (it is kept)."""
    return math.ceil(n / batch_size)


def _check_cache(cache: ImageCache, config: PipelineConfig) -> None:
    shape = cache.image_shape[:-1]
    if shape != config.spatial_shape:
        if config.dimension == 2 and len(shape) == 2:
            raise ConfigError(
                f"pipeline image_size {config.image_size} but the cache {cache.directory} holds {shape[0]} px images; "
                "expected a cache built with the same image size"
            )
        raise ConfigError(
            f"pipeline samples of shape {config.spatial_shape} ({config.dimension}D) but the cache {cache.directory} "
            f"holds samples of shape {shape}; expected a cache built with the same dimension and size"
        )


def _gather(cache: ImageCache, rows: tf.Tensor) -> tf.Tensor:
    """uint8 images of a batch of cache rows: one numpy call per batch."""
    images = tf.numpy_function(cache.images, [rows], tf.uint8, stateful=False)
    images.set_shape((None, *cache.image_shape))
    return images


def _checked_metadata(metadata: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(metadata, dtype=np.float32)
    if values.ndim != 2 or len(values) != n:
        raise ConfigError(f"metadata of shape {values.shape}; expected one row of features per image ({n} rows)")
    if not np.isfinite(values).all():
        raise ConfigError("metadata holds NaN or infinity; expected encoded features (MetadataEncoding.transform)")
    return values


def epoch_seed(seed: int | tf.Tensor, epoch: int | tf.Tensor, stream: int) -> tf.Tensor:
    """The stateless seed of one random stream (permutation or augmentation) of one epoch."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, stream)


def _inputs(images: tf.Tensor, metadata: tf.Tensor | None) -> tf.Tensor | dict[str, tf.Tensor]:
    """What the model takes: the images, or images and metadata by input name."""
    return images if metadata is None else {IMAGE_INPUT: images, METADATA_INPUT: metadata}


def training_dataset(
    cache: ImageCache,
    rows: np.ndarray,
    targets: np.ndarray,
    config: PipelineConfig,
    *,
    first_epoch: int = 0,
    epochs: int = 1,
    metadata: np.ndarray | None = None,
) -> tf.data.Dataset:
    """(inputs, targets) batches of epochs `first_epoch`..`epochs - 1`, one after the other.

    The inputs are the uint8 images, or with `metadata` (one float row per image) a dict of the images
    and their metadata under the model's input names.

    With an enumeration (`config.enumeration`), every image enters each epoch in each of its variants, as if
    the set held those copies: `steps_per_epoch(n * variant_count(enumeration), batch)` steps.
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
    features = None if metadata is None else _checked_metadata(metadata, len(rows))
    k = variant_count(config.enumeration)
    variants = np.tile(np.arange(k, dtype=np.int64), len(rows))
    rows, targets = np.repeat(rows, k), np.repeat(targets, k, axis=0)
    features = None if features is None else np.repeat(features, k, axis=0)
    n, batch_size = len(rows), config.batch_size
    steps = steps_per_epoch(n, batch_size)
    rows_t, targets_t, variants_t = tf.constant(rows), tf.constant(targets), tf.constant(variants)
    metadata_t = None if features is None else tf.constant(features)
    seed, augmentations, enumeration = config.seed, tuple(config.augmentations), config.enumeration

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

    def load(index: tf.Tensor, batch_seed: tf.Tensor) -> tuple[tf.Tensor | dict[str, tf.Tensor], tf.Tensor]:
        images = _gather(cache, tf.gather(rows_t, index))
        if k > 1:
            shape = images.shape
            images = tf.numpy_function(
                lambda batch, chosen: batch_variants(batch, chosen, enumeration),
                [images, tf.gather(variants_t, index)],
                tf.uint8,
                stateful=False,
            )
            images.set_shape(shape)
        if augmentations:
            images = augment_batch(images, batch_seed, augmentations)
        features = None if metadata_t is None else tf.gather(metadata_t, index)
        return _inputs(images, features), tf.gather(targets_t, index)

    data = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def evaluation_dataset(
    cache: ImageCache,
    rows: np.ndarray,
    targets: np.ndarray,
    sample_ids: Sequence[str],
    config: PipelineConfig,
    metadata: np.ndarray | None = None,
) -> tf.data.Dataset:
    """(inputs, targets, sample ids) batches in exactly the given order, never shuffled or augmented; the
    inputs as in `training_dataset`."""
    _check_cache(cache, config)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    features = np.zeros((len(rows), 0), np.float32) if metadata is None else _checked_metadata(metadata, len(rows))
    data = tf.data.Dataset.from_tensor_slices(
        (rows, np.asarray(targets, dtype=np.float32), np.asarray(sample_ids, dtype=str), features)
    ).batch(config.batch_size)

    def load(batch_rows: tf.Tensor, batch_targets: tf.Tensor, ids: tf.Tensor, batch_features: tf.Tensor) -> tuple:
        images = _gather(cache, batch_rows)
        return _inputs(images, None if metadata is None else batch_features), batch_targets, ids

    return data.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)

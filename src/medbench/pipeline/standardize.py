"""Intensity standardization of image batches, as the pretrained backbones expect it.

The input pipeline standardizes once per batch, so the models themselves carry no preprocessing
layer. The modes (`medbench.architectures.info.STANDARDIZE_MODES`) follow
`keras.applications.imagenet_utils.preprocess_input` ("torch", "tf", "caffe") plus three generic
ones for models trained from scratch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from medbench.architectures.info import check_mode
from medbench.errors import ConfigError
from medbench.pipeline.config import PipelineConfig

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
ZSCORE_EPSILON = 1e-7


def standardize(images: tf.Tensor, mode: str) -> tf.Tensor:
    """Standardize RGB pixel values in [0, 255] with shape (..., H, W, 3) as `mode` says.

    Pure TensorFlow ops, so it runs inside `tf.data.Dataset.map`. Returns float32.
    "torch" and "caffe" need exactly 3 channels; the other modes accept any channel count.
    """
    check_mode(mode)
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if mode in ("torch", "caffe"):
        channels = x.shape[-1] if x.shape.rank else None
        if channels is not None and channels != 3:
            raise ConfigError(
                f"standardize mode {mode!r} needs RGB images with 3 channels in the last axis, "
                f"got shape {tuple(x.shape)}"
            )
    if mode == "torch":
        return (x / 255.0 - tf.constant(IMAGENET_MEAN_RGB)) / tf.constant(IMAGENET_STD_RGB)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        return tf.reverse(x, axis=[-1]) - tf.constant(CAFFE_MEAN_BGR)
    if mode == "unit":
        return x / 255.0
    if mode == "zscore":
        mean, variance = tf.nn.moments(x, axes=[-3, -2, -1], keepdims=True)
        return (x - mean) / tf.maximum(tf.sqrt(variance), ZSCORE_EPSILON)
    return x


def standardize_lookup(mode: str) -> np.ndarray | None:
    """A (256, 3) float32 table with `standardize` of every 8-bit gray level as RGB, or None for "zscore".

    Gathering a uint8 grayscale batch through it replaces the cast, the replication to three
    channels and the standardization with one memory pass (identical values to float rounding).
    """
    if check_mode(mode) == "zscore":
        return None
    levels = np.repeat(np.arange(256, dtype=np.float32)[:, np.newaxis], 3, axis=1)
    with tf.init_scope():  # eager even when called while a tf.data map function is traced
        return np.asarray(standardize(tf.constant(levels[np.newaxis]), mode)[0], dtype=np.float32)


def standardize_batch(images: tf.Tensor, mode: str, channels_out: int = 3) -> tf.Tensor:
    """A batch in [0, 255] → `channels_out` channels → standardized float32.

    A uint8 grayscale batch bound for three channels goes through one lookup table (see
    `standardize_lookup`); anything else is cast, replicated and standardized.
    """
    table = standardize_lookup(mode)
    if images.dtype == tf.uint8 and images.shape[-1] == 1 and channels_out == 3 and table is not None:
        return tf.gather(tf.constant(table), tf.cast(images[..., 0], tf.int32))
    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 1 and channels_out == 3:
        images = tf.repeat(images, 3, axis=-1)
    return standardize(images, mode)


def standardize_images(images: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """uint8 (n, h, w, c) images from `preprocess_image` → what the model takes (for ad-hoc prediction)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ConfigError(f"expected uint8 images of shape (n, height, width, 1 or 3), got {images.shape}")
    return standardize_batch(tf.convert_to_tensor(images), config.standardize, config.channels_out).numpy()

"""Intensity standardization of RGB images, as the pretrained backbones expect it.

The input pipeline calls `standardize` once per batch, so the models themselves carry no
preprocessing layer. The modes follow `keras.applications.imagenet_utils.preprocess_input`
("torch", "tf", "caffe") plus three generic ones for models trained from scratch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from medbench.errors import ConfigError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
ZSCORE_EPSILON = 1e-7

STANDARDIZE_MODES: dict[str, str] = {
    "torch": "x/255 minus the ImageNet RGB mean, divided by the ImageNet RGB std (DenseNet)",
    "tf": "x/127.5 - 1, i.e. [-1, 1] (ResNetV2, Inception, Xception, MobileNetV2)",
    "caffe": "RGB to BGR, minus the ImageNet BGR mean, no scaling (ResNet, VGG)",
    "unit": "x/255, i.e. [0, 1] (models trained from scratch)",
    "zscore": "per image: minus its mean, divided by its std (eps-safe for flat images)",
    "none": "identity (models that rescale internally, e.g. Keras EfficientNet)",
}


def standardize_modes() -> tuple[str, ...]:
    """Names `standardize` accepts, in a stable order."""
    return tuple(STANDARDIZE_MODES)


def check_mode(mode: str) -> str:
    """Return `mode` if `standardize` understands it, else raise a ConfigError listing the modes."""
    if mode not in STANDARDIZE_MODES:
        raise ConfigError(f"unknown standardize mode {mode!r}: expected one of {', '.join(STANDARDIZE_MODES)}")
    return mode


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

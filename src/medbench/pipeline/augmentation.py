"""Augmentation of whole uint8 batches on the host: random affine warps (OpenCV) and colour jitter.

Every draw comes from a stateless seed, so batch b of epoch e is augmented the same way in an
uninterrupted and in a resumed run. Volume batches (n, depth, height, width, channels) take the same two
augmentations: `affine` becomes `augment_volumes` (flips, an axial rotation and a zoom, NumPy and SciPy)
seeded from the batch's seed, and the colour jitter works on any rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import tensorflow as tf

from medbench.pipeline.volume_augmentation import VolumeAugmentation, augment_volumes

AFFINE_ROTATION_DEG = 15.0
AFFINE_TRANSLATION = 0.05
AFFINE_SCALE = (0.95, 1.05)
COLOR_BRIGHTNESS = 0.1 * 255.0
COLOR_CONTRAST = (0.9, 1.1)
VOLUME_AFFINE = VolumeAugmentation()
"""What `affine` does to a volume: flips of each axis, ±10° axial rotation, 0.9–1.1 zoom."""
_UINT64 = 2**64


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


def _volume_seed(seed: np.ndarray) -> tuple[int, ...]:
    """A stateless TF seed (two int64) as the non-negative integers `augment_volumes` takes."""
    return tuple(int(part) % _UINT64 for part in np.asarray(seed).reshape(-1))


def augment_affine_volumes(volumes: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`VOLUME_AFFINE` of each volume of a uint8 batch (n, d, h, w, c), drawn from `seed` (`augment_volumes`)."""
    warped = tf.numpy_function(
        lambda batch, key: augment_volumes(batch, VOLUME_AFFINE, _volume_seed(key)),
        [volumes, seed],
        tf.uint8,
        stateful=False,
    )
    warped.set_shape(volumes.shape)
    return warped


def augment_color_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Per image (or volume): brightness ±10 % of the range, then contrast 0.9–1.1 about its channel means;
    [0, 255] kept. Works on batches of any rank (n, ..., channels)."""
    rank = images.shape.rank
    shape = tf.concat([tf.shape(images)[:1], tf.ones([rank - 1], tf.int32)], axis=0)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    delta = tf.random.stateless_uniform(shape, seed=seeds[0], minval=-COLOR_BRIGHTNESS, maxval=COLOR_BRIGHTNESS)
    factor = tf.random.stateless_uniform(shape, seed=seeds[1], minval=COLOR_CONTRAST[0], maxval=COLOR_CONTRAST[1])
    images = images + delta
    mean = tf.reduce_mean(images, axis=tuple(range(1, rank - 1)), keepdims=True)
    return tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, augmentations: Sequence[str]) -> tf.Tensor:
    """The benchmark's augmentations ("affine", "color") on a batch in [0, 255], drawn from `seed`.

    A uint8 batch stays uint8, which is what the model takes: `affine` warps it as uint8 and `color`
    works on floats whose result is rounded back to the nearest grey level. A uint8 batch of volumes (rank 5)
    is warped by `augment_affine_volumes`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if "affine" in augmentations:
        volumes = images.shape.rank == 5
        images = augment_affine_volumes(images, seeds[0]) if volumes else augment_affine_batch(images, seeds[0])
    if "color" in augmentations:
        coloured = augment_color_batch(tf.cast(images, tf.float32), seeds[1])
        images = tf.cast(tf.round(coloured), tf.uint8) if images.dtype == tf.uint8 else coloured
    return images

"""What every method shares: which classes to explain per image, and maps brought to the image's size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from medbench.errors import ConfigError
from medbench.xai.view import ModelView

ClassSpec = int | str | Sequence[int | str] | np.ndarray | None
"""The classes to explain: None (each image's top predicted class), one index or name, several (the same
for every image), or an (n_images, k) array of indices (each image its own)."""


def class_index(value: int | str, class_names: Sequence[str] | None, n_classes: int) -> int:
    """The output index of a class given by index or by name (case-insensitive); ConfigError listing the valid."""
    names = list(class_names) if class_names is not None else []
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        folded = {name.casefold(): index for index, name in enumerate(names)}
        if value.casefold() in folded:
            return folded[value.casefold()]
        valid = ", ".join(names) if names else "none (the model's classes have no names here)"
        raise ConfigError(f"class {value!r}: expected a class index 0..{n_classes - 1} or one of the names: {valid}")
    index = int(value)
    if not 0 <= index < n_classes:
        named = f" ({', '.join(names)})" if names else ""
        raise ConfigError(f"class index {index}: expected 0..{n_classes - 1}, the model's {n_classes} classes{named}")
    return index


def class_indices(
    classes: ClassSpec,
    n_images: int,
    n_classes: int,
    *,
    class_names: Sequence[str] | None = None,
    outputs: np.ndarray | None = None,
) -> np.ndarray:
    """An (n_images, k) int array of output indices; None picks each image's top class from `outputs`."""
    if classes is None:
        if outputs is None:
            raise ConfigError("no classes given and no model outputs to choose each image's top class from")
        return np.argmax(np.asarray(outputs), axis=-1).astype(np.int64)[:, np.newaxis]
    if isinstance(classes, np.ndarray) and classes.ndim == 2:
        if classes.shape[0] != n_images:
            raise ConfigError(f"classes of shape {classes.shape}: expected one row per image ({n_images})")
        flat = [class_index(int(value), class_names, n_classes) for value in classes.ravel()]
        return np.asarray(flat, dtype=np.int64).reshape(classes.shape)
    items = [classes] if isinstance(classes, int | str | np.integer) else list(classes)
    if not items:
        raise ConfigError("an empty list of classes: expected at least one class index or name")
    row = [class_index(item if isinstance(item, str) else int(item), class_names, n_classes) for item in items]
    return np.tile(np.asarray(row, dtype=np.int64), (n_images, 1))


def gather_scores(scores: tf.Tensor, indices: np.ndarray) -> tf.Tensor:
    """(batch, k) scores of each image's own classes from (batch, n_classes) scores."""
    return tf.gather(scores, tf.constant(indices, tf.int32), batch_dims=1)


def upsample(maps: tf.Tensor | np.ndarray, size: Sequence[int]) -> np.ndarray:
    """(n, k, *small) maps resized to (n, k, *size): bilinear for images, trilinear (two passes) for volumes."""
    maps = tf.cast(tf.convert_to_tensor(maps), tf.float32)
    n, k = int(maps.shape[0]), int(maps.shape[1])
    small = tuple(int(side) for side in maps.shape[2:])
    size = tuple(int(side) for side in size)
    if len(small) != len(size) or len(size) not in (2, 3):
        raise ConfigError(f"maps of spatial shape {small} cannot be resized to {size}: expected 2 or 3 matching axes")
    if small == size:
        return maps.numpy()
    if len(size) == 2:
        flat = tf.reshape(maps, (n * k, *small, 1))
        return tf.reshape(tf.image.resize(flat, size, method="bilinear"), (n, k, *size)).numpy()
    depth, height, width = small
    planes = tf.reshape(maps, (n * k * depth, height, width, 1))
    planes = tf.image.resize(planes, size[1:], method="bilinear")
    columns = tf.reshape(planes, (n * k, depth, size[1] * size[2], 1))
    columns = tf.image.resize(columns, (size[0], size[1] * size[2]), method="bilinear")
    return tf.reshape(columns, (n, k, *size)).numpy()


def input_maps(gradients: tf.Tensor) -> tf.Tensor:
    """Per-pixel maps from (batch, *spatial, channels) input gradients: the largest |value| over the channels."""
    return tf.reduce_max(tf.abs(gradients), axis=-1)


def prepared(view: ModelView, images: np.ndarray, classes: ClassSpec, class_names: Sequence[str] | None):
    """(uint8 batch, (n, k) class indices) for a method call; None classes take each image's top class."""
    images = view.check_images(images)
    outputs = view.predict(images)[1] if classes is None else None
    return images, class_indices(classes, len(images), view.n_classes, class_names=class_names, outputs=outputs)

"""Intensity standardization inside the model: uint8 images in, the backbone's expected floats out.

Every SimpleBaseArchitecture begins with a `Standardization` layer built from its architecture's mode
(`medbench.architectures.info.STANDARDIZE_MODES`), so the input pipeline ships uint8 batches (a quarter
of the bytes of float32, standardized on the device for free) and a saved `model.keras` takes uint8
images directly. Grayscale images are expanded to the backbone's three channels in the same layer.
Volume batches (batch, depth, height, width, channels) of the 3D architectures go through the same layer:
the per-image modes then standardize each volume as a whole.
The modes follow `keras.applications.imagenet_utils.preprocess_input` ("torch", "tf", "caffe") plus
generic ones for models trained from scratch, AUCMEDI's per-image "minmax" and "grayscale" among them.

Models saved before standardization moved into the graph take standardized float32 images;
`load_run_model` wraps such a model in the same layer, so every saved run takes uint8 images.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from medbench.architectures.info import check_mode
from medbench.errors import ConfigError, StorageError

logger = logging.getLogger(__name__)

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
ZSCORE_EPSILON = 1e-7
PER_IMAGE_RANGE = {"minmax": 1.0, "grayscale": 255.0}
"""The modes that map each image's own [min, max] onto [0, top] (AUCMEDI's "minmax" and "grayscale")."""
PER_IMAGE_MODES = frozenset({"zscore", *PER_IMAGE_RANGE})
"""Modes whose output depends on the whole image, so no per-gray-level lookup table can compute them."""
LAYER_NAME = "standardize"
MODEL_EXPECTED = (
    "expected a .keras model as medbench saves it (was a copy or download interrupted? re-run the experiment "
    "(medbench exec --rerun), or use another of its saved epochs)"
)


def _per_image_axes(rank: int | None, spatial_axes: int | None) -> list[int]:
    """The axes one image (or volume) spans: its spatial axes and channels, the last `spatial_axes` + 1.

    By default a 5D tensor is a batch of volumes (3 spatial axes) and anything else images (2), so a 4D
    batch of images and a single (H, W, C) image are reduced exactly as before volumes existed.
    """
    if spatial_axes is None:
        spatial_axes = 3 if rank == 5 else 2
    return list(range(-spatial_axes - 1, 0))


def standardize(images: tf.Tensor, mode: str, *, spatial_axes: int | None = None) -> tf.Tensor:
    """Standardize pixel values in [0, 255] with shape (..., H, W, C) or (..., D, H, W, C) as `mode` says.

    Returns float32. "torch" and "caffe" need exactly 3 channels; the other modes accept any channel count.
    The per-image modes ("zscore", "minmax", "grayscale") reduce over each image's or volume's
    `spatial_axes` axes and its channels: 2 (images) unless the tensor is 5D, a batch of volumes (3);
    pass `spatial_axes=3` for a single (D, H, W, C) volume.
    """
    check_mode(mode)
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)
    axes = _per_image_axes(x.shape.rank, spatial_axes)
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
        mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
        return (x - mean) / tf.maximum(tf.sqrt(variance), ZSCORE_EPSILON)
    if mode in PER_IMAGE_RANGE:
        low = tf.reduce_min(x, axis=axes, keepdims=True)
        span = tf.reduce_max(x, axis=axes, keepdims=True) - low
        return tf.math.divide_no_nan(x - low, span) * PER_IMAGE_RANGE[mode]
    return x


def gray_lookup(mode: str) -> np.ndarray | None:
    """A (256, 3) float32 table: `standardize` of every 8-bit gray level replicated to RGB (per-image modes: None).

    Gathering a uint8 gray batch through it is the cast, the replication and the standardization in one
    memory pass, with exactly the values `standardize` gives (the table is computed eagerly).
    """
    if check_mode(mode) in PER_IMAGE_MODES:
        return None
    levels = np.repeat(np.arange(256, dtype=np.float32)[:, np.newaxis], 3, axis=1)
    with tf.init_scope():
        return np.asarray(standardize(tf.constant(levels[np.newaxis]), mode)[0], dtype=np.float32)


@keras.saving.register_keras_serializable(package="medbench")
class Standardization(keras.layers.Layer):
    """uint8 (or [0, 255] float) images → `channels` float32 channels standardized as `mode` says.

    It takes image batches (batch, H, W, C) and volume batches (batch, D, H, W, C); the per-image modes
    standardize each image or volume over all its axes but the batch's. A uint8 gray batch bound for RGB
    goes through one 256-entry lookup table (`gray_lookup`): a gather instead of a cast, a replication and
    the arithmetic. Always float32, whatever the dtype policy, so that mixed precision starts at the backbone.
    """

    def __init__(self, mode: str, channels: int = 3, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = check_mode(mode)
        if channels not in (1, 3):
            raise ConfigError(f"Standardization channels {channels!r}: expected 1 or 3")
        self.channels = channels
        table = gray_lookup(self.mode) if channels == 3 else None
        self._lookup = None if table is None else tf.constant(table)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        gray_to_rgb = self.channels == 3 and images.shape[-1] == 1
        if gray_to_rgb and images.dtype == tf.uint8 and self._lookup is not None:
            return tf.gather(self._lookup, tf.cast(images[..., 0], tf.int32))
        x = tf.cast(images, tf.float32)
        if gray_to_rgb:
            x = tf.repeat(x, 3, axis=-1)
        return standardize(x, self.mode)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "channels": self.channels}


def has_standardization(model: keras.Model) -> bool:
    """True when `model` standardizes its own input (it was built with a Standardization layer)."""
    return any(isinstance(layer, Standardization) for layer in model.layers)


def with_standardization(model: keras.Model, mode: str, channels: int) -> keras.Model:
    """`model` (taking standardized float images or volumes) behind a uint8 input with `channels` channels."""
    image = keras.Input(shape=(*model.input_shape[1:-1], channels), dtype="uint8", name="image")
    outputs = model(Standardization(mode, channels=model.input_shape[-1], name=LAYER_NAME)(image))
    return keras.Model(image, outputs, name=model.name)


def zip_problem(path: Path) -> str | None:
    """What is wrong with the zip archive at `path` (every member's CRC is checked), or None when it is whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        return f"{type(error).__name__}: {str(error)[:200]}"
    return None if bad is None else f"member {bad[:100]!r} fails its CRC check"


def _damaged_model_error(path: Path, error: Exception) -> StorageError:
    """One error naming a model file that cannot be loaded and why (not Keras' misleading "File not found")."""
    if not path.exists():
        return StorageError(f"{path}: file does not exist; {MODEL_EXPECTED}")
    if not path.is_file():
        return StorageError(f"{path}: is not a regular file; {MODEL_EXPECTED}")
    problem = zip_problem(path)
    if problem is not None:
        return StorageError(
            f"{path}: is not a complete Keras model file (truncated or corrupt zip: {problem}); {MODEL_EXPECTED}"
        )
    return StorageError(
        f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: {str(error)[:200]}); {MODEL_EXPECTED}"
    )


def load_run_model(path: Path, mode: str, channels: int) -> keras.Model:
    """A saved model that takes uint8 images, whether it was saved with its standardization or before it moved in.

    A file that is missing, truncated or corrupt raises one StorageError naming it and what is wrong.

    Args:
        path: the `.keras` file (a run's model.keras or an epoch checkpoint).
        mode: the standardize mode of the run's architecture (for models saved without the layer).
        channels: the channels of the run's cached images (1 for grayscale, 3 for colour).
    """
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise _damaged_model_error(path, ValueError("not a zip file"))
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise _damaged_model_error(path, error) from None
    if has_standardization(model):
        return model
    logger.info("%s predates in-model standardization: wrapped in a %r Standardization layer", path.name, mode)
    return with_standardization(model, mode, channels)

"""AUCMEDI's second pillar, `DataGenerator`: model-ready batches of a sample list, as a Keras `PyDataset`.

The pixels are medbench's: `preprocess_image` (2D) or `preprocess_volume` (3D, a `resize` of three sides)
defines each sample's uint8 pixels, with ``prepare_images=True`` computed once into medbench's
content-hashed preprocessing cache (images or volumes), so a prepared and an unprepared generator yield
the same batches. Augmentation works on those uint8 pixels
and the standardization is medbench's `standardize`, the same function a medbench model applies in its
first layer, on the host as AUCMEDI does.

Differences from AUCMEDI, on purpose: an unknown keyword is an error naming it (AUCMEDI handed unknown
keywords to its image loader, where a misspelt one vanished); `resize` is required and 2D images are
resized to a square (medbench's cache stores square images); `subfunctions` are medbench's named
transformations (``["clahe", "sharp21"]``) applied before resizing; `data_aug` is medbench's augmentation
names (``("affine", "color")``, drawn from `seed`, epoch and batch) or any object with AUCMEDI's
``apply(image) -> image``; the batches of a shuffled generator are a pure function of (`seed`, epoch).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from medbench.architectures.standardization import standardize
from medbench.errors import ConfigError
from medbench.preprocessing.params import PreprocessParams, preprocess_image

logger = logging.getLogger(__name__)

__all__ = ["AUCMEDI_STANDARDIZE_MODES", "DataGenerator", "medbench_mode"]

AUCMEDI_STANDARDIZE_MODES = {
    "z-score": "zscore",
    "minmax": "minmax",
    "grayscale": "grayscale",
    "tf": "tf",
    "caffe": "caffe",
    "torch": "torch",
}
"""AUCMEDI's standardize modes and medbench's names for them (medbench's own "unit" and "none" work too)."""
_MEDBENCH_ONLY = ("unit", "none")


def medbench_mode(mode: str | None) -> str | None:
    """medbench's name of an AUCMEDI standardize mode (None: no standardization)."""
    if mode is None:
        return None
    if mode in AUCMEDI_STANDARDIZE_MODES:
        return AUCMEDI_STANDARDIZE_MODES[mode]
    if mode in _MEDBENCH_ONLY:
        return mode
    valid = ", ".join([*AUCMEDI_STANDARDIZE_MODES, *_MEDBENCH_ONLY])
    raise ConfigError(f"DataGenerator: standardize_mode {mode!r}; expected one of {valid} or None")


class DataGenerator(keras.utils.PyDataset):
    """Batches ``images`` (+ ``labels`` (+ ``sample_weights``)) of `samples` in `path_imagedir`.

    A batch is ``x``, ``(x, y)`` or ``(x, y, w)``; with `metadata`, ``x`` is ``(images, metadata)``. Images
    are float32 (n, h, w, c) or (n, d, h, w, c), c = 1 with `grayscale` else 3 (volumes: 1).
    """

    def __init__(
        self,
        samples: Sequence[str],
        path_imagedir: str | os.PathLike[str],
        labels: np.ndarray | None = None,
        metadata: np.ndarray | None = None,
        image_format: str | None = None,
        subfunctions: Sequence[str] = (),
        batch_size: int = 32,
        resize: tuple[int, ...] | None = (224, 224),
        standardize_mode: str | None = "z-score",
        data_aug: Any = None,
        shuffle: bool = False,
        grayscale: bool = False,
        sample_weights: np.ndarray | None = None,
        workers: int = 1,
        prepare_images: bool = False,
        seed: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise ConfigError(
                f"DataGenerator: unknown keyword {sorted(kwargs)}; expected samples, path_imagedir, labels, metadata, "
                "image_format, subfunctions, batch_size, resize, standardize_mode, data_aug, shuffle, grayscale, "
                "sample_weights, workers, prepare_images, seed, cache_dir"
            )
        super().__init__(workers=max(1, int(workers)), use_multiprocessing=False)
        self.samples = [str(sample) for sample in samples]
        if not self.samples:
            raise ConfigError("DataGenerator: samples is empty; expected at least one sample")
        self.path_imagedir = Path(path_imagedir).absolute()  # resolved now: later changes of cwd do not move it
        self.image_format = image_format
        self.paths = [str(self.path_imagedir / (f"{s}.{image_format}" if image_format else s)) for s in self.samples]
        self.labels = self._rows(labels, "labels")
        self.metadata = self._rows(metadata, "metadata")
        self.sample_weights = self._rows(sample_weights, "sample_weights")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"DataGenerator: batch_size {batch_size!r}; expected a positive whole number")
        self.batch_size = batch_size
        self.standardize_mode = medbench_mode(standardize_mode)
        self.data_aug = self._augmentation(data_aug)
        self.shuffle, self.seed = bool(shuffle), 0 if seed is None else int(seed)
        self.grayscale = bool(grayscale)
        self.volumes = resize is not None and len(tuple(resize)) == 3
        self.params = self._params(resize, tuple(subfunctions))
        self.prepare_images = bool(prepare_images)
        self._prepared = self._prepare(cache_dir) if self.prepare_images else None
        self._epoch, self._length = 0, None
        self._order = self._epoch_order(0)

    def _rows(self, values: Any, what: str) -> np.ndarray | None:
        if values is None:
            return None
        array = np.asarray(values, dtype=np.float32)
        if len(array) != len(self.samples):
            raise ConfigError(f"DataGenerator: {len(self.samples)} samples but {len(array)} {what}; expected one each")
        return array

    def _augmentation(self, data_aug: Any) -> Any:
        if data_aug is None or callable(getattr(data_aug, "apply", None)):
            return data_aug
        names = (data_aug,) if isinstance(data_aug, str) else tuple(data_aug)
        from medbench.benchmark.vocabulary import AUGMENTATIONS

        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(
                f"DataGenerator: data_aug {unknown}; expected medbench augmentation names "
                f"({', '.join(AUGMENTATIONS)}) or an object with apply(image)"
            )
        return names

    def _params(self, resize: tuple[int, ...] | None, subfunctions: tuple[str, ...]) -> Any:
        if resize is None:
            raise ConfigError("DataGenerator: resize=None is not supported; expected the model's input size")
        shape = tuple(int(side) for side in resize)
        if self.volumes:
            from medbench.preprocessing.volume import VolumeParams

            if subfunctions:
                raise ConfigError(f"DataGenerator: subfunctions {list(subfunctions)} apply to 2D images only")
            return VolumeParams(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ConfigError(f"DataGenerator: resize {resize!r}; expected a square (size, size) or a volume (d, h, w)")
        return PreprocessParams(shape[0], transformations=subfunctions, channels=1 if self.grayscale else 3)

    def _load(self, index: int) -> np.ndarray:
        """The uint8 pixels of one sample, preprocessed by medbench."""
        if self._prepared is not None:
            return self._prepared(index)
        if self.volumes:
            from medbench.preprocessing.volume import preprocess_volume

            return preprocess_volume(self.paths[index], self.params)
        return preprocess_image(self.paths[index], self.params)

    def _prepare(self, cache_dir: str | os.PathLike[str] | None) -> Any:
        """Preprocess every sample once, into medbench's content-hashed preprocessing cache."""
        from medbench.preprocessing.cache import build_cache

        root = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "medbench-aucmedi-cache"
        cache = build_cache(self.paths, self.params, root, workers=self.workers, strict=True, progress=False)
        rows = cache.rows(self.paths)
        logger.info("DataGenerator: %d images prepared in %s", len(rows), cache.directory)
        return lambda index: cache.images(rows[index : index + 1])[0]

    def _epoch_order(self, epoch: int) -> np.ndarray:
        order = np.arange(len(self.samples))
        if self.shuffle:
            np.random.default_rng((self.seed, epoch)).shuffle(order)
        return order

    @property
    def num_batches(self) -> int:
        return self._length if self._length is not None else math.ceil(len(self.samples) / self.batch_size)

    def set_length(self, length: int) -> None:
        """Serve `length` batches an epoch (cycling through the samples), as AUCMEDI's `iterations` asks."""
        self._length = int(length)

    def reset_length(self) -> None:
        self._length = None

    def on_epoch_end(self) -> None:
        self._epoch += 1
        self._order = self._epoch_order(self._epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, index: int) -> Any:
        per_epoch = math.ceil(len(self.samples) / self.batch_size)
        start = (index % per_epoch) * self.batch_size
        chosen = self._order[start : start + self.batch_size]
        images = np.stack([self._load(int(i)) for i in chosen])
        images = self._augmented(images, index)
        batch = images.astype(np.float32)
        if self.standardize_mode is not None:
            batch = standardize(tf.constant(batch), self.standardize_mode).numpy()
        x = batch if self.metadata is None else (batch, self.metadata[chosen])
        if self.labels is None:
            return x
        if self.sample_weights is None:
            return x, self.labels[chosen]
        return x, self.labels[chosen], self.sample_weights[chosen]

    def _augmented(self, images: np.ndarray, index: int) -> np.ndarray:
        if self.data_aug is None:
            return images
        if not isinstance(self.data_aug, tuple):
            return np.stack([np.asarray(self.data_aug.apply(image)) for image in images]).astype(images.dtype)
        if self.volumes:
            from medbench.pipeline.volume_augmentation import VolumeAugmentation, augment_volumes

            return augment_volumes(images, VolumeAugmentation(), (self.seed, self._epoch, index))
        from medbench.pipeline.augmentation import augment_batch

        seed = tf.constant([self.seed, self._epoch * 1_000_003 + index], dtype=tf.int64)
        return augment_batch(tf.constant(images), seed, self.data_aug).numpy()

"""`BinaryClassifier`: pyBIA's CNN classifier for small data, on medbench's registry, head and losses.

Two NumPy stacks, positives (label 1) and negatives (label 0), of shape (n, height, width, channels)
with 1-3 channels (or (n, height, width) for one), optional validation stacks of either class, and
pyBIA's clip-and-min-max normalisation (`normalization`). `create()` builds the registry architecture
for the images' shape and trains it; `predict(data)` returns 0/1 labels or, with ``return_proba=True``,
the probability of the positive class; `save(folder)` writes the Keras model and a JSON config from
which `BinaryClassifier.load(folder)` predicts identically.

    clf = BinaryClassifier(lenses, others, architecture="AlexNet", max_pixel=[100, 100, 100], epochs=10)
    clf.create()
    labels = clf.predict(new_images)
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike

from medbench.atomic import write_json_atomic, write_saved_atomic
from medbench.binary_classifier.config import BinaryClassifierConfig
from medbench.binary_classifier.model import build_network, compile_network, recalibrate_batch_norm
from medbench.binary_classifier.normalization import as_stack, checked_limits, normalize_stack
from medbench.errors import ConfigError

__all__ = ["CONFIG_FILE", "FORMAT", "MODEL_FILE", "BinaryClassifier"]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
FORMAT = "medbench.BinaryClassifier"
FORMAT_VERSION = 1
PREDICT_BATCH = 256


class BinaryClassifier:
    """A binary CNN classifier trained on a positive and a negative image stack (pyBIA's `Classifier`).

    Args:
        positive_class: images of the positive class (label 1), (n, height, width, channels) or
            (n, height, width); None only for a classifier that is loaded, not created.
        negative_class: images of the negative class (label 0), the same image shape.
        val_positive: optional validation images of the positive class.
        val_negative: optional validation images of the negative class.
        config: the options (`BinaryClassifierConfig`); keyword `options` replace its fields, e.g.
            ``architecture="ResNet18", min_pixel=0, max_pixel=[100, 100, 100], epochs=10``.

    Attributes:
        config: the options, `min_pixel`/`max_pixel` given per channel once the channels are known.
        image_shape: (height, width, channels) of every image, or None before any is given.
        model: the Keras model after `create()`, `build()` or `load()`, else None.
        history: per-epoch training metrics after `create()` (and in a loaded classifier).

    Raises:
        ConfigError: an unknown option or a bad value, a stack that is not (n, h, w[, c]) with 1-3 channels,
            stacks whose image shapes or channel counts differ, or limits that do not fit the channels.
    """

    def __init__(
        self,
        positive_class: ArrayLike | None = None,
        negative_class: ArrayLike | None = None,
        val_positive: ArrayLike | None = None,
        val_negative: ArrayLike | None = None,
        *,
        config: BinaryClassifierConfig | None = None,
        **options: Any,
    ) -> None:
        self.config = BinaryClassifierConfig.from_options(config, **options)
        given = {
            "positive_class": positive_class,
            "negative_class": negative_class,
            "val_positive": val_positive,
            "val_negative": val_negative,
        }
        stacks = {name: as_stack(data, name) for name, data in given.items() if data is not None}
        self.positive_class = stacks.get("positive_class")
        self.negative_class = stacks.get("negative_class")
        self.val_positive = stacks.get("val_positive")
        self.val_negative = stacks.get("val_negative")
        self.image_shape: tuple[int, int, int] | None = None
        shapes = {name: tuple(int(side) for side in stack.shape[1:]) for name, stack in stacks.items()}
        if shapes:
            first, shape = next(iter(shapes.items()))
            for name, other in shapes.items():
                if other[-1] != shape[-1]:
                    raise ConfigError(
                        f"{name} has {other[-1]} channel(s) but {first} has {shape[-1]}: expected every stack "
                        "to have the same channels"
                    )
                if other != shape:
                    raise ConfigError(
                        f"{name} holds {other[0]}x{other[1]} px images but {first} {shape[0]}x{shape[1]} px: "
                        "expected one image size for every stack"
                    )
            self._set_image_shape(shape)
        self.model: keras.Model | None = None
        self.history: dict[str, list[float]] = {}

    def _set_image_shape(self, shape: tuple[int, ...]) -> None:
        """Fix the image shape and give the limits per channel (checking them against the channels)."""
        height, width, channels = shape
        lows, highs = checked_limits(self.config.min_pixel, self.config.max_pixel, channels)
        self.config = BinaryClassifierConfig.from_options(self.config, min_pixel=lows, max_pixel=highs)
        self.image_shape = (int(height), int(width), int(channels))

    def normalize(self, data: ArrayLike, name: str = "data") -> np.ndarray:
        """`data` as the model takes it: a float32 stack, normalised unless `config.normalize` is False.

        Raises:
            ConfigError: a bad stack, or images of another shape than the classifier's.
        """
        stack = as_stack(data, name)
        if self.image_shape is not None and tuple(stack.shape[1:]) != self.image_shape:
            expected = "(n, {}, {}, {})".format(*self.image_shape)
            raise ConfigError(f"{name} has shape {np.shape(data)}: expected {expected}, the classifier's images")
        if not self.config.normalize:
            return stack.astype(np.float32)
        return normalize_stack(stack, self.config.min_pixel, self.config.max_pixel, name=name)

    def _labelled(self, stacks: Mapping[str, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised images of the given stacks, positives first, and their (n, 1) float32 labels (1, 0)."""
        images, labels = [], []
        for (name, stack), label in zip(stacks.items(), (1.0, 0.0)):
            if stack is not None:
                images.append(self.normalize(stack, name))
                labels.append(np.full((len(stack), 1), label, np.float32))
        return np.concatenate(images), np.concatenate(labels)

    def build(self) -> keras.Model:
        """Build and compile a fresh model for the images' shape (seeded by `config.seed`), without training.

        Raises:
            ConfigError: no image stack was given, so the input shape is unknown.
        """
        if self.image_shape is None:
            raise ConfigError(
                "BinaryClassifier has no images: expected positive_class and negative_class stacks "
                "to build for (or BinaryClassifier.load(folder) for a saved one)"
            )
        keras.utils.set_random_seed(self.config.seed)
        self.model = compile_network(build_network(self.config, self.image_shape), self.config)
        return self.model

    def create(self) -> BinaryClassifier:
        """Build the model and train it on the two classes (validated on the validation stacks, if any).

        Returns:
            self, trained; its `history` holds the per-epoch loss and binary accuracy (and their "val_" twins).

        Raises:
            ConfigError: positive_class or negative_class is missing.
        """
        missing = [name for name in ("positive_class", "negative_class") if getattr(self, name) is None]
        if missing:
            raise ConfigError(
                f"create() needs {' and '.join(missing)}: expected an image stack (n, height, width[, channels]) "
                "of each class"
            )
        x, y = self._labelled({"positive_class": self.positive_class, "negative_class": self.negative_class})
        validation = None
        if self.val_positive is not None or self.val_negative is not None:
            validation = self._labelled({"val_positive": self.val_positive, "val_negative": self.val_negative})
        model = self.build()
        callbacks = []
        if self.config.patience:
            monitor = "val_loss" if validation is not None else "loss"
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor, patience=self.config.patience, restore_best_weights=True)
            )
        logger.info(
            "training %s on %d positive and %d negative %s images for %d epochs (%s)",
            self.config.architecture,
            len(self.positive_class),
            len(self.negative_class),
            "x".join(str(side) for side in self.image_shape or ()),
            self.config.epochs,
            self.config.loss,
        )
        history = model.fit(
            x,
            y,
            batch_size=self.config.batch_size,
            epochs=self.config.epochs,
            validation_data=validation,
            shuffle=True,
            callbacks=callbacks,
            verbose=self.config.verbose,
        )
        self.history = {name: [float(value) for value in values] for name, values in history.history.items()}
        if self.config.recalibrate_bn:
            recalibrate_batch_norm(model, x, self.config.batch_size, self.config.seed)
        logger.info("trained: %s", ", ".join(f"{name} {values[-1]:.4f}" for name, values in self.history.items()))
        return self

    def predict(self, data: ArrayLike, return_proba: bool = False) -> np.ndarray:
        """Predict a stack of images of the classifier's shape.

        Args:
            data: (n, height, width, channels) images (or (n, height, width) for one channel), unnormalised.
            return_proba: return the positive class's probabilities instead of labels.

        Returns:
            shape (n,): 0/1 labels (int64; 1 where the probability is at least `config.threshold`), or with
            `return_proba` the float32 probabilities in [0, 1].

        Raises:
            ConfigError: no model yet (neither `create()` nor `load()`), or images of another shape.
        """
        if self.model is None:
            raise ConfigError(
                "predict() before create(): expected a trained classifier (call create(), or "
                "BinaryClassifier.load(folder) for a saved one)"
            )
        probabilities = self.model.predict(self.normalize(data), batch_size=PREDICT_BATCH, verbose=0)
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(-1)
        if return_proba:
            return probabilities
        return (probabilities >= self.config.threshold).astype(np.int64)

    def save(self, folder: str | Path) -> Path:
        """Write `folder`/model.keras and `folder`/config.json (each atomically; the config last).

        Returns:
            The folder.

        Raises:
            ConfigError: there is no model to save.
        """
        if self.model is None or self.image_shape is None:
            raise ConfigError("save() before create(): expected a trained classifier to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_saved_atomic(folder / MODEL_FILE, self.model.save)
        height, width, channels = self.image_shape
        record = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "image_size": [height, width],
            "channels": channels,
            "config": self.config.to_dict(),
            "history": self.history,
        }
        write_json_atomic(folder / CONFIG_FILE, record)
        logger.info("saved the %s classifier to %s", self.config.architecture, folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BinaryClassifier:
        """The classifier `save(folder)` wrote, ready to predict (it holds no training images).

        Raises:
            ConfigError: `folder` is not a folder holding a saved classifier (naming what is missing),
                or its files cannot be read as one.
        """
        folder = Path(folder)
        missing = [name for name in (CONFIG_FILE, MODEL_FILE) if not (folder / name).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: no saved BinaryClassifier ({', '.join(missing)} missing): expected a folder written "
                f"by BinaryClassifier.save, holding {CONFIG_FILE} and {MODEL_FILE}"
            )
        record = _read_record(folder / CONFIG_FILE)
        classifier = cls(config=BinaryClassifierConfig.from_dict(record["config"], source=str(folder / CONFIG_FILE)))
        height, width = record["image_size"]
        classifier._set_image_shape((height, width, record["channels"]))
        try:
            classifier.model = keras.models.load_model(folder / MODEL_FILE, compile=False)
        except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise ConfigError(
                f"{folder / MODEL_FILE}: not a Keras model ({error}): expected the {MODEL_FILE} that "
                "BinaryClassifier.save writes"
            ) from error
        expected = (None, *classifier.image_shape)
        if tuple(classifier.model.input_shape) != expected:
            raise ConfigError(
                f"{folder / MODEL_FILE} takes input {tuple(classifier.model.input_shape)} but {CONFIG_FILE} says "
                f"{expected}: expected the two files of one save"
            )
        classifier.history = {name: list(values) for name, values in record.get("history", {}).items()}
        logger.info("loaded the %s classifier from %s", classifier.config.architecture, folder)
        return classifier


def _read_record(path: Path) -> Mapping[str, Any]:
    """config.json as `save` writes it, checked for its format and keys."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"{path}: not readable as JSON ({error}): expected the config BinaryClassifier.save writes"
        ) from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ConfigError(f'{path}: expected a JSON object with "format": {FORMAT!r} (BinaryClassifier.save\'s config)')
    size, channels = record.get("image_size"), record.get("channels")
    valid_size = isinstance(size, list) and len(size) == 2 and all(isinstance(side, int) and side > 0 for side in size)
    if not valid_size or not isinstance(channels, int) or not 1 <= channels <= 3 or "config" not in record:
        raise ConfigError(
            f'{path}: expected "image_size" [height, width], "channels" 1-3 and "config" (BinaryClassifier.save\'s)'
        )
    return record

"""`BinaryClassifierConfig`: what a `BinaryClassifier` is built, normalised and trained with (no TensorFlow).

Every field is checked when the record is made, so a bad option fails before any training; the
channel count of `min_pixel`/`max_pixel` is checked against the images in `BinaryClassifier`. The
record round-trips through the JSON that `BinaryClassifier.save` writes (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from medbench.architectures.registry import get_architecture
from medbench.benchmark.vocabulary import OPTIMIZERS
from medbench.errors import ConfigError

__all__ = ["ARCHITECTURE_ALIASES", "LOSSES", "BinaryClassifierConfig", "resolve_architecture"]

ARCHITECTURE_ALIASES = {"cnn": "2D.AlexNet", "custom_cnn": "2D.CustomCNN", "custom": "2D.CustomCNN"}
"""pyBIA's `clf` names that are not registry names ("alexnet", "vgg16" and "resnet18" already are)."""
LOSSES = ("binary_crossentropy", "weighted_binary_crossentropy", "focal")
"""Losses on the sigmoid's probabilities: medbench's BCE, WBCE (positive weight `weight`) and binary focal loss."""


def resolve_architecture(name: str) -> str:
    """The "2D." registry key for `name`: a registry name (any case, prefix optional) or a pyBIA `clf` name.

    Raises:
        ConfigError: an unknown name (listing the registry keys) or a "3D." volume network.
    """
    if not isinstance(name, str):
        raise ConfigError(f"architecture={name!r}: expected a registry key such as '2D.CustomCNN'")
    key = get_architecture(ARCHITECTURE_ALIASES.get(name.strip().lower(), name)).key
    if not key.startswith("2D."):
        raise ConfigError(f"architecture {name!r} is the volume network {key}: expected a 2D (image) architecture")
    return key


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r}: expected an integer of at least {minimum}")


def _number(name: str, value: object, low: float, high: float, *, open_low: bool, open_high: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ConfigError(f"{name}={value!r}: expected a finite number")
    number = float(value)
    below = number <= low if open_low else number < low
    above = number >= high if open_high else number > high
    if below or above:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(f"{name}={value!r}: expected a number in {interval}")
    return number


def _pixel_limit(name: str, value: object) -> float | tuple[float, ...]:
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise ConfigError(f"{name}=[]: expected a number or one number per channel")
    for entry in values:
        if isinstance(entry, bool) or not isinstance(entry, int | float) or not math.isfinite(float(entry)):
            raise ConfigError(f"{name}={value!r}: expected a finite number or a list of them, one per channel")
    return tuple(float(entry) for entry in values) if isinstance(value, list | tuple) else float(values[0])


@dataclass(frozen=True)
class BinaryClassifierConfig:
    """The options of a `BinaryClassifier` (pyBIA's names where it has them).

    Attributes:
        architecture: registry key of the backbone ("2D.CustomCNN", "AlexNet", "VGG16", "ResNet18", …) or a
            pyBIA `clf` name ("cnn" is AlexNet, "custom_cnn"); stored as the registry key.
        normalize: apply the clip-and-min-max normalisation (False: pixels are fed as they are, as float32).
        min_pixel: the value mapped to 0: one number, or one per channel.
        max_pixel: the value mapped to 1, likewise; above `min_pixel` in every channel.
        epochs: training epochs.
        batch_size: training batch size.
        optimizer: a Keras optimizer name of medbench's vocabulary ("Adam", "SGD", …).
        learning_rate: the optimizer's learning rate.
        loss: one of `LOSSES`.
        weight: the positive class's weight for "weighted_binary_crossentropy" (pyBIA's `weight`).
        focal_alpha: the positives' weight in the focal loss (1 - alpha for the negatives).
        focal_gamma: the focal loss's focusing parameter.
        fcl: add Dense(512, relu) + Dropout(dropout) to the head.
        dropout: that block's dropout rate.
        threshold: probabilities at or above it are predicted positive.
        recalibrate_bn: after training, set the BatchNormalization statistics to their averages over the
            training images (`model.recalibrate_batch_norm`); with few steps per epoch the moving averages lag.
        patience: stop after this many epochs without improvement of the validation loss (training loss
            without validation data) and keep the best weights; 0 never stops early.
        seed: seeds Python, NumPy and TensorFlow before building (initial weights and shuffling).
        verbose: Keras' `fit` verbosity (0 silent).
    """

    architecture: str = "2D.CustomCNN"
    normalize: bool = True
    min_pixel: float | tuple[float, ...] = 0.0
    max_pixel: float | tuple[float, ...] = 255.0
    epochs: int = 25
    batch_size: int = 32
    optimizer: str = "Adam"
    learning_rate: float = 1e-3
    loss: str = "binary_crossentropy"
    weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    fcl: bool = False
    dropout: float = 0.3
    threshold: float = 0.5
    recalibrate_bn: bool = True
    patience: int = 0
    seed: int = 0
    verbose: int = 0

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "architecture", resolve_architecture(self.architecture))
        for name in ("normalize", "fcl", "recalibrate_bn"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r}: expected True or False")
        set_field(self, "min_pixel", _pixel_limit("min_pixel", self.min_pixel))
        set_field(self, "max_pixel", _pixel_limit("max_pixel", self.max_pixel))
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("patience", self.patience, 0)
        _positive_int("seed", self.seed, 0)
        _positive_int("verbose", self.verbose, 0)
        optimizers = {name.lower(): name for name in OPTIMIZERS}
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in optimizers:
            raise ConfigError(f"optimizer={self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        set_field(self, "optimizer", optimizers[self.optimizer.lower()])
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r}: expected one of {', '.join(LOSSES)}")
        set_field(
            self, "learning_rate", _number("learning_rate", self.learning_rate, 0, 10, open_low=True, open_high=False)
        )
        set_field(self, "weight", _number("weight", self.weight, 0, math.inf, open_low=True, open_high=True))
        set_field(self, "focal_alpha", _number("focal_alpha", self.focal_alpha, 0, 1, open_low=False, open_high=False))
        set_field(self, "focal_gamma", _number("focal_gamma", self.focal_gamma, 0, 10, open_low=False, open_high=False))
        set_field(self, "dropout", _number("dropout", self.dropout, 0, 1, open_low=False, open_high=True))
        set_field(self, "threshold", _number("threshold", self.threshold, 0, 1, open_low=True, open_high=True))

    @classmethod
    def from_options(cls, base: BinaryClassifierConfig | None = None, **options: Any) -> BinaryClassifierConfig:
        """`base` (default: the defaults) with `options` replacing its fields.

        Raises:
            ConfigError: an option that is not a field (naming it and listing the fields), or a bad value.
        """
        unknown = sorted(set(options) - {field.name for field in fields(cls)})
        if unknown:
            raise ConfigError(
                f"unknown BinaryClassifier option(s) {', '.join(unknown)}: expected "
                f"{', '.join(field.name for field in fields(cls))}"
            )
        return replace(base, **options) if base is not None else cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (per-channel limits as lists)."""
        record = asdict(self)
        for name in ("min_pixel", "max_pixel"):
            if isinstance(record[name], tuple):
                record[name] = list(record[name])
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], *, source: str = "config") -> BinaryClassifierConfig:
        """The config `to_dict` wrote; `source` names the file in error messages."""
        if not isinstance(record, Mapping):
            raise ConfigError(
                f"{source}: expected a JSON object of BinaryClassifier options, got {type(record).__name__}"
            )
        try:
            return cls.from_options(None, **dict(record))
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from error

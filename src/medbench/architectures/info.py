"""ArchitectureInfo: the small per-architecture record the registry holds (timm's default config).

A record says how to build the headless backbone, which input size and intensity standardization its
pretrained weights expect, and which Keras ImageNet file holds those weights. This module imports no
TensorFlow and nothing else of medbench's architectures, so every other module can depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

BACKBONE_NAME = "backbone"
"""The name of the nested backbone model inside every SimpleBaseArchitecture."""
DIMENSION_PREFIX = "2D."

STANDARDIZE_MODES: Mapping[str, str] = MappingProxyType(
    {
        "torch": "x/255 minus the ImageNet RGB mean, divided by the ImageNet RGB std (DenseNet)",
        "tf": "x/127.5 - 1, i.e. [-1, 1] (ResNetV2, Inception, Xception, MobileNetV2)",
        "caffe": "RGB to BGR, minus the ImageNet BGR mean, no scaling (ResNet, VGG)",
        "unit": "x/255, i.e. [0, 1] (models trained from scratch)",
        "zscore": "per image: minus its mean, divided by its std (eps-safe for flat images)",
        "minmax": "per image: its range mapped onto [0, 1] (a flat image is 0)",
        "grayscale": "per image: its range mapped onto [0, 255] (a flat image is 0)",
        "none": "identity (models that rescale internally, e.g. Keras EfficientNet)",
    }
)
"""The intensity standardizations a backbone may expect (implemented in `medbench.pipeline.standardize`)."""


def standardize_modes() -> tuple[str, ...]:
    """Names of the standardize modes, in a stable order."""
    return tuple(STANDARDIZE_MODES)


def check_mode(mode: str) -> str:
    """Return `mode` if it is a standardize mode, else raise a ConfigError listing the modes."""
    if mode not in STANDARDIZE_MODES:
        raise ConfigError(f"unknown standardize mode {mode!r}: expected one of {', '.join(STANDARDIZE_MODES)}")
    return mode


class BackboneBuilder(Protocol):
    """Builds a headless backbone (4D feature map output) and loads a local weights file into it.

    `weights` is a local file or None (random initialization); `imagenet` says that the file is
    Keras' official ImageNet file, for the few architectures that treat it specially.
    """

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model: ...


@dataclass(frozen=True)
class ArchitectureInfo:
    """One registry entry.

    Attributes:
        key: registry key, "<dimension>.<Name>", e.g. "2D.DenseNet121".
        builder: builds the headless backbone for an input shape and loads a local weights file.
        input_size: (height, width) the ImageNet weights were trained at; the default input size.
        standardize: standardize mode (`STANDARDIZE_MODES`) the pretrained weights expect.
        weights_file: file name of Keras' ImageNet "notop" weights, None if there are none.
        min_input_size: smallest height/width the architecture accepts.
        weights_url: where Keras downloads `weights_file` from (named in error messages only).
        parameters: weights of the headless backbone (the same at every input size), for listings;
            `tests/test_architectures.py` checks it against the built model.
    """

    key: str
    builder: BackboneBuilder
    input_size: tuple[int, int] = (224, 224)
    standardize: str = "tf"
    weights_file: str | None = None
    min_input_size: int = 32
    weights_url: str | None = None
    parameters: int | None = None

    def __post_init__(self) -> None:
        check_mode(self.standardize)

    @property
    def name(self) -> str:
        """The key without its dimension prefix, e.g. "DenseNet121" (the keras.applications name)."""
        return self.key.partition(".")[2] or self.key

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Default input shape: `input_size` with 3 channels."""
        return (*self.input_size, 3)

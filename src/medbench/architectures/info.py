"""ArchitectureInfo: the small per-architecture record the registry holds (timm's default config).

A record says how to build the headless backbone, which input size and intensity standardization its
pretrained weights expect, and which Keras ImageNet file holds those weights. Its key names its dimension:
"2D." entries take images (height, width, channels), "3D." entries volumes (depth, height, width,
channels). This module imports no TensorFlow and nothing else of medbench's architectures, so every
other module can depend on it.
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
"""The prefix of image architectures, the historic default: lookup lets it be left out."""
VOLUME_PREFIX = "3D."
"""The prefix of volume architectures, which lookup always needs (AUCMEDI's "3D.ResNet18")."""
DIMENSION_PREFIXES = (DIMENSION_PREFIX, VOLUME_PREFIX)
SPATIAL_AXES: Mapping[str, int] = MappingProxyType({"2D": 2, "3D": 3})
"""Spatial axes of the inputs of each dimension: (height, width) or (depth, height, width)."""
DEFAULT_CHANNELS: Mapping[str, int] = MappingProxyType({"2D": 3, "3D": 1})
"""Channels of the default input: images may be RGB; volumes (CT, MRI) are single-channel. The model's
Standardization layer expands either to the backbone's three channels."""

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


def dimension_of(key: str) -> str:
    """The dimension "2D" or "3D" of `key`, from its prefix (any case); a key without one is "2D" (images)."""
    folded = key.strip().upper()
    return next((prefix[:-1] for prefix in DIMENSION_PREFIXES if folded.startswith(prefix)), "2D")


class BackboneBuilder(Protocol):
    """Builds a headless backbone (4D or, for volumes, 5D feature map output) and loads a local weights file.

    `input_shape` is (height, width, channels) for a 2D entry, (depth, height, width, channels) for a 3D one.

    `weights` is a local file or None (random initialization); `imagenet` says that the file is
    Keras' official ImageNet file, for the few architectures that treat it specially.
    """

    def __call__(
        self,
        input_shape: tuple[int | None, ...],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model: ...


@dataclass(frozen=True)
class ArchitectureInfo:
    """One registry entry.

    Attributes:
        key: registry key, "<dimension>.<Name>", e.g. "2D.DenseNet121" or "3D.ResNet18".
        builder: builds the headless backbone for an input shape and loads a local weights file.
        input_size: (height, width) the ImageNet weights were trained at, or (depth, height, width) for a
            3D entry; the default input size.
        standardize: standardize mode (`STANDARDIZE_MODES`) the pretrained weights expect.
        weights_file: file name of Keras' ImageNet "notop" weights, None if there are none.
        min_input_size: smallest height/width (and depth, for 3D) the architecture accepts.
        weights_url: where Keras downloads `weights_file` from (named in error messages only).
        parameters: weights of the headless backbone (the same at every input size), for listings;
            `tests/test_architectures.py` checks it against the built model.
    """

    key: str
    builder: BackboneBuilder
    input_size: tuple[int, ...] = (224, 224)
    standardize: str = "tf"
    weights_file: str | None = None
    min_input_size: int = 32
    weights_url: str | None = None
    parameters: int | None = None

    def __post_init__(self) -> None:
        check_mode(self.standardize)
        if len(self.input_size) != self.spatial_axes:
            sides = "(depth, height, width)" if self.spatial_axes == 3 else "(height, width)"
            raise ConfigError(
                f"architecture {self.key!r}: input_size {tuple(self.input_size)} does not fit a {self.dimension} "
                f"entry, expected {sides}"
            )

    @property
    def dimension(self) -> str:
        """The dimension: "2D" (images) or "3D" (volumes), from the key's prefix."""
        return dimension_of(self.key)

    @property
    def spatial_axes(self) -> int:
        """2 for images (height, width), 3 for volumes (depth, height, width)."""
        return SPATIAL_AXES[self.dimension]

    @property
    def name(self) -> str:
        """The key without its dimension prefix, e.g. "DenseNet121" (the keras.applications name)."""
        return self.key.partition(".")[2] or self.key

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Default input shape: `input_size` with 3 channels (2D) or 1 channel (3D, `DEFAULT_CHANNELS`)."""
        return (*self.input_size, DEFAULT_CHANNELS[self.dimension])

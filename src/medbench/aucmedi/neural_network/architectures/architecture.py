"""AUCMEDI's `Architecture` interface over medbench's registry: a backbone of any registry key plus a `Classifier`.

``architecture_dict[key](classification_head, channels, input_shape=None, pretrained_weights=False)``
gives an object whose `create_model()` builds the Keras model and whose `input` is the shape it takes,
channels included (``(224, 224, 3)``). The model takes float32 images already standardized by the
`DataGenerator`, AUCMEDI's contract; a grayscale input is repeated to the backbone's three channels in
the model. Pretrained weights are Keras' ImageNet files from the local weights folder, never downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any, ClassVar

import keras

from medbench.architectures.base import BACKBONE_CHANNELS, IMAGE_INPUT, checked_input_shape
from medbench.architectures.info import BACKBONE_NAME, ArchitectureInfo
from medbench.architectures.registry import architecture_names, get_architecture
from medbench.architectures.standardization import LAYER_NAME, Standardization
from medbench.architectures.weights import resolve_weights
from medbench.aucmedi.neural_network.architectures.classifier import Classifier
from medbench.errors import ConfigError

__all__ = ["Architecture", "architecture_class", "architecture_dict", "supported_standardize_mode"]

AUCMEDI_MODE_NAMES = {"zscore": "z-score"}
"""medbench's standardize modes under AUCMEDI's names where they differ."""


class Architecture:
    """A registry backbone with AUCMEDI's constructor; subclasses name their registry `key`."""

    key: ClassVar[str] = ""

    def __init__(
        self,
        classification_head: Classifier,
        channels: int,
        input_shape: tuple[int, ...] | None = None,
        pretrained_weights: bool = False,
    ) -> None:
        info = self.info
        if channels not in (1, 3):
            raise ConfigError(f"{info.key}: channels {channels!r}; expected 1 (grayscale) or 3 (RGB)")
        spatial = tuple(input_shape) if input_shape is not None else tuple(info.input_shape[:-1])
        if len(spatial) == len(info.input_shape):
            if spatial[-1] != channels:
                raise ConfigError(
                    f"{info.key}: input_shape {spatial} has {spatial[-1]} channels but channels={channels}"
                )
            spatial = spatial[:-1]
        self.input = checked_input_shape(info, (*spatial, channels))
        self.classifier = classification_head
        self.channels = channels
        self.pretrained_weights = bool(pretrained_weights)

    @property
    def info(self) -> ArchitectureInfo:
        return get_architecture(self.key)

    @property
    def standardize_mode(self) -> str:
        """The mode the backbone's pretrained weights expect, in AUCMEDI's spelling."""
        return AUCMEDI_MODE_NAMES.get(self.info.standardize, self.info.standardize)

    def create_model(self) -> keras.Model:
        """The uncompiled model: float32 input "image" → (gray to RGB) → backbone → classifier head."""
        info = self.info
        weights = resolve_weights(info, "imagenet" if self.pretrained_weights else None)
        image = keras.Input(shape=self.input, dtype="float32", name=IMAGE_INPUT)
        x = image
        if self.channels != BACKBONE_CHANNELS:
            x = Standardization("none", channels=BACKBONE_CHANNELS, name=LAYER_NAME)(image)
        backbone = info.builder(
            (*self.input[:-1], BACKBONE_CHANNELS), weights=weights, imagenet=self.pretrained_weights, name=BACKBONE_NAME
        )
        return self.classifier.build(image, backbone(x))


@cache
def architecture_class(key: str) -> type[Architecture]:
    """The `Architecture` subclass of one registry key, named like AUCMEDI's (``DenseNet121``)."""
    info = get_architecture(key)
    return type(info.name, (Architecture,), {"key": info.key, "__doc__": f"AUCMEDI's {info.key} on medbench."})


class _ByKey(Mapping[str, Any]):
    """Every registry key (exactly as registered) → a value computed from it; later registrations show up too."""

    def __init__(self, value: Callable[[str], Any]) -> None:
        self._value = value

    def __getitem__(self, key: str) -> Any:
        if key not in architecture_names():
            raise KeyError(key)
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        return iter(architecture_names())

    def __len__(self) -> int:
        return len(architecture_names())


def _aucmedi_mode(key: str) -> str:
    mode = get_architecture(key).standardize
    return AUCMEDI_MODE_NAMES.get(mode, mode)


architecture_dict: Mapping[str, type[Architecture]] = _ByKey(architecture_class)
"""Registry key → `Architecture` class, AUCMEDI's ``architecture_dict``."""
supported_standardize_mode: Mapping[str, str] = _ByKey(_aucmedi_mode)
"""Registry key → the standardize mode its pretrained weights expect, AUCMEDI's ``supported_standardize_mode``."""

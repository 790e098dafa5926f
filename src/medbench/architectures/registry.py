"""Architecture registry: "2D.DenseNet121" and friends → backbone builder, input size, standardize mode.

Like AUCMEDI's `architecture_dict` + `supported_standardize_mode` and timm's model registry: one
`ArchitectureInfo` per key says how to build the headless backbone, which input size and intensity
standardization its pretrained weights expect, and which Keras ImageNet file holds those weights.
Backbones are built by `keras.applications` with `weights=None`; pretrained weights are loaded
from a local file afterwards, so Keras never downloads anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import keras

from medbench.architectures.standardize import check_mode
from medbench.architectures.vanilla import SmallCNN
from medbench.architectures.weights import load_weights_file
from medbench.errors import ConfigError

BACKBONE_NAME = "backbone"
DIMENSION_PREFIX = "2D."

_KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_EFFICIENTNET_BASE_URL = "https://storage.googleapis.com/keras-applications/"
# Keras' EfficientNet stores the ImageNet std, not its square, as the Normalization variance and
# adds Rescaling(1/sqrt(std)) after it when weights == "imagenet" (tensorflow/tensorflow#49930).
_EFFICIENTNET_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


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
class KerasApplication:
    """Builder for a `keras.applications` model without top, weights loaded from a local file."""

    factory: Callable[..., keras.Model]

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        model = self.factory(include_top=False, weights=None, input_shape=input_shape, name=name)
        if weights is not None:
            load_weights_file(model, weights)
        return model


@dataclass(frozen=True)
class KerasEfficientNet(KerasApplication):
    """Keras EfficientNet; with the ImageNet file it reproduces Keras' extra std rescaling.

    Keras adds a weightless `Rescaling(1/sqrt(std))` after the stem Normalization only when it
    loads ImageNet weights itself. Dividing by sqrt(std) after dividing by sqrt(variance) equals
    dividing by sqrt(variance * std), so the same function is obtained by folding std into the
    loaded Normalization variance.
    """

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        model = super().__call__(input_shape, weights=weights, imagenet=imagenet, name=name)
        if weights is not None and imagenet:
            normalization = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
            std = keras.ops.convert_to_tensor(_EFFICIENTNET_IMAGENET_STD_RGB, dtype="float32")
            normalization.adapt_variance.assign(normalization.adapt_variance * std)
            normalization.finalize_state()
        return model


@dataclass(frozen=True)
class SmallCNNBuilder:
    """Builder for medbench's own SmallCNN (vanilla.py)."""

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        return SmallCNN(input_shape, weights=weights, name=name)


@dataclass(frozen=True)
class ArchitectureInfo:
    """One registry entry.

    Attributes:
        key: registry key, "<dimension>.<Name>", e.g. "2D.DenseNet121".
        builder: builds the headless backbone for an input shape and loads a local weights file.
        input_size: (height, width) the ImageNet weights were trained at; the default input size.
        standardize: `standardize.standardize` mode the pretrained weights expect.
        weights_file: file name of Keras' ImageNet "notop" weights, None if there are none.
        min_input_size: smallest height/width the architecture accepts.
        weights_url: where Keras downloads `weights_file` from (named in error messages only).
    """

    key: str
    builder: BackboneBuilder
    input_size: tuple[int, int] = (224, 224)
    standardize: str = "tf"
    weights_file: str | None = None
    min_input_size: int = 32
    weights_url: str | None = None

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


def _keras_app(
    name: str,
    *,
    weights_file: str,
    url_folder: str,
    standardize: str,
    input_size: int = 224,
    min_input_size: int = 32,
) -> ArchitectureInfo:
    return ArchitectureInfo(
        key=DIMENSION_PREFIX + name,
        builder=KerasApplication(getattr(keras.applications, name)),
        input_size=(input_size, input_size),
        standardize=standardize,
        weights_file=weights_file,
        min_input_size=min_input_size,
        weights_url=f"{_KERAS_BASE_URL}{url_folder}/{weights_file}",
    )


def _densenet(depth: int) -> ArchitectureInfo:
    return _keras_app(
        f"DenseNet{depth}",
        weights_file=f"densenet{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder="densenet",
        standardize="torch",
    )


def _resnet(depth: int, *, v2: bool) -> ArchitectureInfo:
    suffix = "v2" if v2 else ""
    return _keras_app(
        f"ResNet{depth}{suffix.upper()}",
        weights_file=f"resnet{depth}{suffix}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder="resnet",
        standardize="tf" if v2 else "caffe",
    )


def _vgg(depth: int) -> ArchitectureInfo:
    return _keras_app(
        f"VGG{depth}",
        weights_file=f"vgg{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder=f"vgg{depth}",
        standardize="caffe",
    )


def _efficientnet(variant: int, input_size: int) -> ArchitectureInfo:
    name = f"EfficientNetB{variant}"
    weights_file = f"efficientnetb{variant}_notop.h5"
    return ArchitectureInfo(
        key=DIMENSION_PREFIX + name,
        builder=KerasEfficientNet(getattr(keras.applications, name)),
        input_size=(input_size, input_size),
        standardize="none",
        weights_file=weights_file,
        weights_url=_EFFICIENTNET_BASE_URL + weights_file,
    )


_ENTRIES: tuple[ArchitectureInfo, ...] = (
    _densenet(121),
    _densenet(169),
    _densenet(201),
    _resnet(50, v2=False),
    _resnet(101, v2=False),
    _resnet(152, v2=False),
    _resnet(50, v2=True),
    _resnet(101, v2=True),
    _resnet(152, v2=True),
    _keras_app(
        "InceptionV3",
        weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder="inception_v3",
        standardize="tf",
        input_size=299,
        min_input_size=75,
    ),
    _keras_app(
        "InceptionResNetV2",
        weights_file="inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder="inception_resnet_v2",
        standardize="tf",
        input_size=299,
        min_input_size=75,
    ),
    _keras_app(
        "Xception",
        weights_file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_folder="xception",
        standardize="tf",
        input_size=299,
        min_input_size=71,
    ),
    *(_efficientnet(variant, size) for variant, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))),
    # Keras picks the MobileNetV2 file by input rows (96-224) and falls back to 224 otherwise;
    # the 224 file fits every input size since the backbone is fully convolutional.
    _keras_app(
        "MobileNetV2",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        url_folder="mobilenet_v2",
        standardize="tf",
    ),
    _vgg(16),
    _vgg(19),
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "SmallCNN",
        builder=SmallCNNBuilder(),
        input_size=(64, 64),
        standardize="unit",
        weights_file=None,
    ),
)

_REGISTRY: dict[str, ArchitectureInfo] = {info.key: info for info in _ENTRIES}
ARCHITECTURES: Mapping[str, ArchitectureInfo] = MappingProxyType(_REGISTRY)


def _lookup_name(key: str) -> str:
    """Case-folded key without the "2D." prefix: "2D.DenseNet121" and "densenet121" match."""
    name = key.strip().lower()
    prefix = DIMENSION_PREFIX.lower()
    return name[len(prefix) :] if name.startswith(prefix) else name


def register_architecture(info: ArchitectureInfo, *, overwrite: bool = False) -> ArchitectureInfo:
    """Add `info` to the registry (e.g. a custom backbone); refuses to replace unless `overwrite`."""
    clash = [key for key in _REGISTRY if _lookup_name(key) == _lookup_name(info.key)]
    if clash and not overwrite:
        raise ConfigError(
            f"architecture {info.key!r} is already registered as {clash[0]!r}: expected a new key or overwrite=True"
        )
    for key in clash:
        del _REGISTRY[key]
    _REGISTRY[info.key] = info
    return info


def architecture_names() -> tuple[str, ...]:
    """All registry keys, in registration order."""
    return tuple(_REGISTRY)


def get_architecture(key: str) -> ArchitectureInfo:
    """The entry for `key`: case-insensitive, the "2D." prefix optional ("densenet121" works)."""
    wanted = _lookup_name(key)
    for info in _REGISTRY.values():
        if _lookup_name(info.key) == wanted:
            return info
    raise ConfigError(
        f"unknown architecture {key!r}: expected one of {', '.join(_REGISTRY)} "
        "(case-insensitive, the '2D.' prefix may be left out)"
    )

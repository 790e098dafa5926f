"""SimpleBaseArchitecture: a registry backbone with its standardization and the classifier head, as one model.

The model takes uint8 images (1 or 3 channels), or uint8 volumes (depth, height, width, channels) for a
"3D." key, and begins with a `Standardization` layer built from the registry's mode
(`get_architecture(key).standardize`), which also expands grayscale to the backbone's three channels;
so the input pipeline ships uint8 batches and a saved model takes uint8 images directly. The backbone
is a nested model named "backbone", so callers can freeze it with
`model.get_layer("backbone").trainable = False`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras

from medbench.architectures.head import classifier_head
from medbench.architectures.info import BACKBONE_NAME, ArchitectureInfo
from medbench.architectures.registry import get_architecture
from medbench.architectures.standardization import LAYER_NAME, Standardization
from medbench.architectures.weights import is_imagenet, resolve_weights
from medbench.errors import ConfigError

logger = logging.getLogger(__name__)

IMAGE_INPUT = "image"
METADATA_INPUT = "metadata"
BACKBONE_CHANNELS = 3
"""Every backbone sees RGB: ImageNet weights need it, and grayscale is replicated in the standardization."""


def _input_shape(info: ArchitectureInfo, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The input shape for `info` from `input_shape`, or the registry default; its channels are 1 or 3.

    2D entries take (H, W) (3 channels added) or (H, W, C); 3D entries (D, H, W) (1 channel added) or
    (D, H, W, C). A shape of the other dimension is refused with a message naming the key.
    """
    if input_shape is None:
        return info.input_shape
    if info.dimension == "3D":
        return _volume_shape(info, tuple(input_shape))
    shape = tuple(input_shape)
    if len(shape) == 4:
        raise ConfigError(
            f"input_shape {shape} for {info.key}: a volume shape (depth, height, width, channels), but {info.key} "
            "is a 2D architecture: expected (height, width) or (height, width, channels); volumes need a '3D.' key"
        )
    if len(shape) == 2:
        shape = (*shape, 3)
    if len(shape) != 3 or not all(isinstance(size, int) and size > 0 for size in shape) or shape[2] not in (1, 3):
        raise ConfigError(
            f"input_shape {tuple(input_shape)} for {info.key}: expected (height, width) or "
            "(height, width, channels) of positive integers with 1 (grayscale) or 3 (RGB) channels"
        )
    height, width, _ = shape
    if min(height, width) < info.min_input_size:
        raise ConfigError(
            f"input_shape {shape} for {info.key}: expected height and width of at least {info.min_input_size} px"
        )
    return shape


def _volume_shape(info: ArchitectureInfo, shape: tuple[int, ...]) -> tuple[int, ...]:
    """(D, H, W, C) for the 3D entry `info`; (D, H, W) gets its default channel count."""
    expected = "expected (depth, height, width) or (depth, height, width, channels)"
    looks_2d = len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3) and shape[-1] < info.min_input_size)
    if looks_2d:
        raise ConfigError(
            f"input_shape {shape} for {info.key}: an image shape (height, width[, channels]), but {info.key} "
            f"is a 3D architecture: {expected}; images need a '2D.' key"
        )
    full = (*shape, info.input_shape[-1]) if len(shape) == 3 else shape
    if len(full) != 4 or not all(isinstance(size, int) and size > 0 for size in full) or full[3] not in (1, 3):
        raise ConfigError(
            f"input_shape {shape} for {info.key}: {expected} of positive integers with 1 (grayscale) "
            "or 3 (RGB) channels"
        )
    if min(full[:3]) < info.min_input_size:
        raise ConfigError(
            f"input_shape {full} for {info.key}: expected depth, height and width of at least "
            f"{info.min_input_size} voxels"
        )
    return full


def SimpleBaseArchitecture(
    backbone: str,
    n_classes: int,
    *,
    input_shape: tuple[int, ...] | None = None,
    weights: str | Path | None = None,
    activation: str = "sigmoid",
    fcl: bool | Sequence[int] = False,
    dropout: float = 0.3,
    n_metadata: int = 0,
    weights_dir: str | Path | None = None,
    name: str | None = None,
) -> keras.Model:
    """Build registry backbone `backbone` + classifier head as an uncompiled Keras model.

    Args:
        backbone: registry key, e.g. "2D.DenseNet121" (case-insensitive, "2D." optional) or "3D.ResNet18"
            ("3D." required).
        n_classes: output units.
        input_shape: (H, W) or (H, W, C) of the uint8 images fed, C 1 (grayscale, expanded to the
            backbone's 3 channels inside the model) or 3; default the registry's input size with 3 channels.
            For a 3D key (D, H, W) (1 channel) or (D, H, W, C); default its input size with 1 channel.
        weights: None (random init), "imagenet" (Keras' notop file from `weights_dir`, never
            downloaded; 2D only) or the path of a backbone weights file.
        activation: "sigmoid" (multi-label), "softmax" or "linear".
        fcl: add Dense(512, relu) + Dropout(dropout) in the head (a sequence: one such block per width).
        dropout: dropout rate of that block.
        n_metadata: number of metadata variables; > 0 adds a second input named "metadata".
        weights_dir: folder of the ImageNet files; default `Settings.from_env().weights_dir`
            (env MEDBENCH_WEIGHTS_DIR).
        name: model name; default the architecture name in lower case.

    Returns:
        A model with input "image" (uint8, shape `input_shape`, a 5D batch for 3D keys) — plus "metadata", shape
        (n_metadata,), when n_metadata > 0 — and output (batch, n_classes), float32.

    Raises:
        WeightsNotFoundError: the weights file is missing (the message names file and folder).
        ConfigError: unknown backbone, bad shape or option, or a weights file that does not fit.
    """
    info = get_architecture(backbone)
    shape = _input_shape(info, input_shape)
    if n_metadata < 0:
        raise ConfigError(f"n_metadata {n_metadata}: expected 0 (no metadata input) or more")
    imagenet = is_imagenet(weights)
    if imagenet and info.dimension == "3D" and info.weights_file is None:
        raise ConfigError(
            f"{info.key} has no local ImageNet weights: medbench holds no ImageNet files for 3D backbones and "
            f"never downloads; expected weights=None (random initialization) or the path of a weights file "
            f"saved from a {info.key} backbone"
        )
    weights_path = resolve_weights(info, weights, weights_dir)

    image = keras.Input(shape=shape, dtype="uint8", name=IMAGE_INPUT)
    standardized = Standardization(info.standardize, channels=BACKBONE_CHANNELS, name=LAYER_NAME)(image)
    backbone_model = info.builder(
        (*shape[:-1], BACKBONE_CHANNELS), weights=weights_path, imagenet=imagenet, name=BACKBONE_NAME
    )
    features = backbone_model(standardized)
    metadata = keras.Input(shape=(n_metadata,), name=METADATA_INPUT) if n_metadata else None
    outputs = classifier_head(features, n_classes, activation=activation, fcl=fcl, dropout=dropout, metadata=metadata)
    inputs = [image, metadata] if metadata is not None else image
    model = keras.Model(inputs, outputs, name=name or info.name.lower())
    logger.debug("built %s: input %s, %d classes, weights %s", info.key, shape, n_classes, weights_path)
    return model


def checked_input_shape(info: ArchitectureInfo, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The full input shape (channels last) a model of `info` takes for `input_shape`, checked as
    `SimpleBaseArchitecture` checks it (AUCMEDI's architectures use it too)."""
    return _input_shape(info, input_shape)

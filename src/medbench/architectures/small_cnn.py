"""Plain convolution stacks: SmallCNN, medbench's small backbone for CPU work, tests and demos, and
AUCMEDI's Vanilla network, for images (2D) and volumes (3D).

SmallCNN is four conv-BN-ReLU-maxpool blocks (16, 32, 64, 128 filters; about 100k parameters): fast at
32-128 px. Vanilla is AUCMEDI's default architecture, four conv-ReLU-maxpool blocks (32, 64, 128, 256
filters, no batch normalization) with "zscore" input. Both take any input size of at least 32 px and
any channel count, and have no pretrained weights. Their 3D versions ("3D.SmallCNN", "3D.Vanilla") use
Conv3D and MaxPooling3D and take volumes of at least 16 voxels a side; 3D.SmallCNN halves the filters
(8, 16, 32, 64) since a 3x3x3 kernel holds three times the weights of a 3x3 one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import DIMENSION_PREFIX, VOLUME_PREFIX, ArchitectureInfo
from medbench.architectures.registry import register_architecture
from medbench.architectures.scratch import BN_MOMENTUM, finish_model, scratch_builder
from medbench.architectures.weights import is_imagenet
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

MIN_INPUT_SIZE = 32
MIN_VOLUME_SIZE = 16
"""Four 2x poolings leave a 16-voxel side one voxel."""
DEFAULT_FILTERS = (16, 32, 64, 128)
VOLUME_FILTERS = (8, 16, 32, 64)
VANILLA_FILTERS = (32, 64, 128, 256)


def SmallCNN(
    input_shape: tuple[int | None, ...] = (None, None, 3),
    *,
    weights: str | Path | None = None,
    filters: Sequence[int] = DEFAULT_FILTERS,
    batch_norm: bool = True,
    name: str = "small_cnn",
) -> keras.Model:
    """Build the headless SmallCNN; its output is the feature map of the last block (5D for volumes).

    Args:
        input_shape: (height, width, channels), or (depth, height, width, channels) for the 3D network;
            spatial sizes may be None (fully convolutional).
        weights: None (random initialization) or the path of a weights file saved from a
            SmallCNN of the same filters. There are no ImageNet weights.
        filters: filters of each block; each block halves the spatial size.
        batch_norm: conv-BN-ReLU blocks (SmallCNN) or conv-ReLU blocks with biases (Vanilla).
        name: model name.
    """
    title = "SmallCNN" if batch_norm else "Vanilla"
    if is_imagenet(weights):
        raise ConfigError(
            f"{title} has no ImageNet weights: expected weights=None (random initialization) "
            f"or the path of a weights file saved from a {title}"
        )
    spatial = tuple(input_shape)[:-1]
    if len(spatial) == 3:
        minimum, sides = MIN_VOLUME_SIZE, "depth, height and width of at least {} voxels"
    elif len(spatial) == 2:
        minimum, sides = MIN_INPUT_SIZE, "height and width of at least {} px"
    else:
        raise ConfigError(
            f"{title} input_shape {tuple(input_shape)}: expected (height, width, channels) or "
            "(depth, height, width, channels)"
        )
    for size in spatial:
        if size is not None and size < minimum:
            raise ConfigError(f"{title} input_shape {tuple(input_shape)}: expected {sides.format(minimum)}")
    import keras
    from keras import layers

    convolution = layers.Conv3D if len(spatial) == 3 else layers.Conv2D
    pooling = layers.MaxPooling3D if len(spatial) == 3 else layers.MaxPooling2D
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, n_filters in enumerate(filters, start=1):
        x = convolution(n_filters, 3, padding="same", use_bias=not batch_norm, name=f"block{block}_conv")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.Activation("relu", name=f"block{block}_relu")(x)
        x = pooling(2, name=f"block{block}_pool")(x)
    return finish_model(inputs, x, name, weights)


register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "SmallCNN",
        builder=scratch_builder(SmallCNN),
        input_size=(64, 64),
        standardize="unit",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=98_160,
    )
)
register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "Vanilla",
        builder=scratch_builder(SmallCNN, filters=VANILLA_FILTERS, batch_norm=False),
        input_size=(224, 224),
        standardize="zscore",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=388_416,
    )
)
register_architecture(
    ArchitectureInfo(
        key=VOLUME_PREFIX + "SmallCNN",
        builder=scratch_builder(SmallCNN, filters=VOLUME_FILTERS),
        input_size=(32, 32, 32),
        standardize="unit",
        weights_file=None,
        min_input_size=MIN_VOLUME_SIZE,
        parameters=73_704,
    )
)
register_architecture(
    ArchitectureInfo(
        key=VOLUME_PREFIX + "Vanilla",
        builder=scratch_builder(SmallCNN, filters=VANILLA_FILTERS, batch_norm=False),
        input_size=(128, 128, 128),
        standardize="zscore",
        weights_file=None,
        min_input_size=MIN_VOLUME_SIZE,
        parameters=1_164_288,
    )
)

"""AlexNet (Krizhevsky et al., 2012) as pyBIA builds it, headless, for small images trained from scratch.

Five convolutions (96 11x11 stride 4, 256 5x5, 384 3x3, 384 3x3, 256 3x3, ReLU) with 3x3 stride-2 max
pooling after the first, second and fifth, and a BatchNormalization after each block (pyBIA's
"batch_norm" regularizer; its other one, local response normalization, has no Keras layer). The fully
connected top (two Dense(4096) with dropout) is left out, as `include_top=False` leaves it out of VGG16:
the classifier head pools the last feature map.

Small inputs: the strides are AlexNet's, but every convolution and pooling pads "same", as pyBIA's do.
A 64 px image then leaves a 2x2x256 map (16, 8, 4, 2 px after the first convolution and each pooling)
and a 32 px image 1x1. With the original's "valid" padding a 64 px image would shrink to nothing at the
third pooling, so pyBIA's 50-100 px stamps could not pass. There are no ImageNet weights ("unit" input,
like the other networks trained from scratch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.registry import register_architecture
from medbench.architectures.scratch import BN_MOMENTUM, check_scratch_input, finish_model, scratch_builder
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

MIN_INPUT_SIZE = 32
FILTERS = (96, 256, 384, 384, 256)
KERNELS = (11, 5, 3, 3, 3)
STRIDES = (4, 1, 1, 1, 1)
POOLED = (True, True, False, False, True)
"""Which convolutions a 3x3 stride-2 max pooling follows."""
POOL_SIZE, POOL_STRIDE = 3, 2


def AlexNet(
    input_shape: tuple[int | None, ...] = (None, None, 3),
    *,
    weights: str | Path | None = None,
    filters: Sequence[int] = FILTERS,
    batch_norm: bool = True,
    name: str = "alexnet",
) -> keras.Model:
    """Build the headless AlexNet; its output is the last block's feature map.

    Args:
        input_shape: (height, width, channels), any channel count; height and width at least 32 px or None.
        weights: None (random initialization) or a weights file saved from an AlexNet of the same filters.
        filters: the five convolutions' filters (pyBIA tunes them; AlexNet's by default).
        batch_norm: a BatchNormalization after each block (after its pooling, as pyBIA places it).
        name: model name.
    """
    check_scratch_input("AlexNet", input_shape, weights, MIN_INPUT_SIZE)
    if len(filters) != len(FILTERS):
        raise ConfigError(
            f"AlexNet filters {tuple(filters)}: expected {len(FILTERS)} filter counts, one per convolution"
        )
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, (n_filters, kernel, stride, pooled) in enumerate(zip(filters, KERNELS, STRIDES, POOLED), start=1):
        x = layers.Conv2D(
            n_filters, kernel, strides=stride, padding="same", activation="relu", name=f"block{block}_conv"
        )(x)
        if pooled:
            x = layers.MaxPooling2D(POOL_SIZE, strides=POOL_STRIDE, padding="same", name=f"block{block}_pool")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
    return finish_model(inputs, x, name, weights)


register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "AlexNet",
        builder=scratch_builder(AlexNet),
        input_size=(224, 224),
        standardize="unit",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=3_752_704,
    )
)

"""ResNet-18 (He et al., 2016) for images, headless, trained from scratch ("unit" input).

`keras.applications` has no ResNet-18; this is the paper's: a 7x7 stride-2 convolution and a 3x3 stride-2
max pooling, then four stages of two basic blocks (two 3x3 conv-BN layers and an identity shortcut, or a
1x1 stride-2 conv-BN projection where a stage halves the size) with 64, 128, 256 and 512 filters.
Every layer pads "same", so any input of at least 32 px works: 64 px leaves a 2x2x512 map, 32 px 1x1.
The 3D ResNet-18 of the volume family is "3D.ResNet18" (`models_3d`).
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
BLOCKS = (2, 2, 2, 2)
"""Basic blocks per stage: ResNet-18 (ResNet-34 is (3, 4, 6, 3))."""
STAGE_FILTERS = (64, 128, 256, 512)
BN_EPSILON = 1.001e-5
"""Keras' ResNet epsilon."""


def _basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    """Two 3x3 conv-BN layers plus the shortcut (projected where the shape changes), then ReLU."""
    from keras import layers

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_0_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_1_conv")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_1_bn")(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_2_bn")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def ResNet18(
    input_shape: tuple[int | None, ...] = (None, None, 3),
    *,
    weights: str | Path | None = None,
    blocks: Sequence[int] = BLOCKS,
    name: str = "resnet18",
) -> keras.Model:
    """Build the headless ResNet-18; its output is the last stage's feature map.

    Args:
        input_shape: (height, width, channels), any channel count; height and width at least 32 px or None.
        weights: None (random initialization) or a weights file saved from a ResNet of the same blocks.
        blocks: basic blocks in each of the four stages.
        name: model name.
    """
    check_scratch_input("ResNet18", input_shape, weights, MIN_INPUT_SIZE)
    if len(blocks) != len(STAGE_FILTERS) or not all(isinstance(n, int) and n >= 1 for n in blocks):
        raise ConfigError(f"ResNet18 blocks {tuple(blocks)}: expected four positive block counts, one per stage")
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="conv1_conv")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, (n_blocks, filters) in enumerate(zip(blocks, STAGE_FILTERS), start=2):
        for block in range(1, n_blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _basic_block(x, filters, stride, name=f"conv{stage}_block{block}")
    return finish_model(inputs, x, name, weights)


register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "ResNet18",
        builder=scratch_builder(ResNet18),
        input_size=(224, 224),
        standardize="unit",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=11_186_112,
    )
)

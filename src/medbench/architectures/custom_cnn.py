"""CustomCNN: pyBIA's shallower-than-AlexNet network, one to three convolution layers each with its pooling.

pyBIA's `custom_model` is 1-3 convolutions (filters, kernel size, stride), each followed by a min, max or
average pooling (or none) and a BatchNormalization, then dense layers. Here the dense layers are the
classifier head's, so the backbone ends at the last block's feature map. Min pooling, which pyBIA wrote
as a Lambda (not serializable), is -maxpool(-x) with two `Rescaling(-1)` layers, so a saved model loads
in Keras' safe mode.

The registry's "2D.CustomCNN" uses three layers (32 7x7, 64 5x5, 128 3x3, each with a 3x3 stride-2
max pooling; about 0.13 M weights), fast on a CPU at 64 px. pyBIA's own default, one 256-filter 7x7
layer with stride-1 average pooling, keeps the full resolution with 256 channels and is slow there; build
it with ``CustomCNN(shape, conv_layers=[ConvLayer(256, 7, pooling="average", pool_stride=1)])`` or register
your own layers: ``register_architecture(ArchitectureInfo("2D.MyCNN", scratch_builder(CustomCNN,
conv_layers=(ConvLayer(...),)), (64, 64), "unit"))``. Every layer pads "same"; there are no ImageNet weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.registry import register_architecture
from medbench.architectures.scratch import BN_MOMENTUM, check_scratch_input, finish_model, scratch_builder
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

MIN_INPUT_SIZE = 32
MAX_LAYERS = 3
POOLINGS = ("max", "average", "min", None)


@dataclass(frozen=True)
class ConvLayer:
    """One convolution (ReLU, "same" padding) and its pooling, with pyBIA's parameter meanings.

    Attributes:
        filters: output channels.
        kernel_size: side of the square kernel.
        strides: convolution stride.
        pooling: "max", "average", "min" or None (no pooling).
        pool_size: side of the pooling window.
        pool_stride: pooling stride.
    """

    filters: int
    kernel_size: int = 3
    strides: int = 1
    pooling: str | None = "max"
    pool_size: int = 3
    pool_stride: int = 2

    def __post_init__(self) -> None:
        for field in ("filters", "kernel_size", "strides", "pool_size", "pool_stride"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ConvLayer {field}={value!r}: expected a positive integer")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"ConvLayer pooling={self.pooling!r}: expected one of {POOLINGS}")


DEFAULT_LAYERS = (ConvLayer(32, 7), ConvLayer(64, 5), ConvLayer(128, 3))


def _pool(x: keras.KerasTensor, layer: ConvLayer, name: str) -> keras.KerasTensor:
    from keras import layers

    window = {"pool_size": layer.pool_size, "strides": layer.pool_stride, "padding": "same"}
    if layer.pooling == "max":
        return layers.MaxPooling2D(**window, name=f"{name}_pool")(x)
    if layer.pooling == "average":
        return layers.AveragePooling2D(**window, name=f"{name}_pool")(x)
    negated = layers.Rescaling(-1.0, name=f"{name}_negate")(x)
    pooled = layers.MaxPooling2D(**window, name=f"{name}_pool")(negated)
    return layers.Rescaling(-1.0, name=f"{name}_min")(pooled)


def CustomCNN(
    input_shape: tuple[int | None, ...] = (None, None, 3),
    *,
    weights: str | Path | None = None,
    conv_layers: Sequence[ConvLayer] = DEFAULT_LAYERS,
    batch_norm: bool = True,
    name: str = "custom_cnn",
) -> keras.Model:
    """Build the headless CustomCNN; its output is the last block's feature map.

    Args:
        input_shape: (height, width, channels), any channel count; height and width at least 32 px or None.
        weights: None (random initialization) or a weights file saved from a CustomCNN of the same layers.
        conv_layers: one to three `ConvLayer`s.
        batch_norm: a BatchNormalization after each block (after its pooling, as pyBIA places it).
        name: model name.
    """
    check_scratch_input("CustomCNN", input_shape, weights, MIN_INPUT_SIZE)
    conv_layers = tuple(conv_layers)
    if not 1 <= len(conv_layers) <= MAX_LAYERS or not all(isinstance(layer, ConvLayer) for layer in conv_layers):
        raise ConfigError(
            f"CustomCNN conv_layers: {len(conv_layers)} given; expected 1 to {MAX_LAYERS} ConvLayer entries"
        )
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, layer in enumerate(conv_layers, start=1):
        x = layers.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding="same",
            activation="relu",
            name=f"block{block}_conv",
        )(x)
        if layer.pooling is not None:
            x = _pool(x, layer, f"block{block}")
        if batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
    return finish_model(inputs, x, name, weights)


register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "CustomCNN",
        builder=scratch_builder(CustomCNN),
        input_size=(64, 64),
        standardize="unit",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=130_752,
    )
)

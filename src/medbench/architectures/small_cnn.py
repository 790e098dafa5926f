"""Plain convolution stacks: SmallCNN, medbench's small backbone for CPU work, tests and demos, and
AUCMEDI's Vanilla network.

SmallCNN is four conv-BN-ReLU-maxpool blocks (16, 32, 64, 128 filters; about 100k parameters): fast at
32-128 px. Vanilla is AUCMEDI's default architecture, four conv-ReLU-maxpool blocks (32, 64, 128, 256
filters, no batch normalization) with "zscore" input. Both take any input size of at least 32 px and
any channel count, and have no pretrained weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import BACKBONE_NAME, DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.registry import register_architecture
from medbench.architectures.weights import is_imagenet, load_weights_file
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

MIN_INPUT_SIZE = 32
DEFAULT_FILTERS = (16, 32, 64, 128)
VANILLA_FILTERS = (32, 64, 128, 256)
# Small datasets give few steps per epoch: a faster moving average keeps inference statistics current.
BN_MOMENTUM = 0.9


def SmallCNN(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    *,
    weights: str | Path | None = None,
    filters: Sequence[int] = DEFAULT_FILTERS,
    batch_norm: bool = True,
    name: str = "small_cnn",
) -> keras.Model:
    """Build the headless SmallCNN; its output is the 4D feature map of the last block.

    Args:
        input_shape: (height, width, channels); spatial sizes may be None (fully convolutional).
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
    height, width, _ = input_shape
    for size in (height, width):
        if size is not None and size < MIN_INPUT_SIZE:
            raise ConfigError(
                f"{title} input_shape {tuple(input_shape)}: expected height and width of at least {MIN_INPUT_SIZE} px"
            )
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, n_filters in enumerate(filters, start=1):
        x = layers.Conv2D(n_filters, 3, padding="same", use_bias=not batch_norm, name=f"block{block}_conv")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.Activation("relu", name=f"block{block}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_weights_file(model, Path(weights))
    return model


@dataclass(frozen=True)
class SmallCNNBuilder:
    """The registry's builder for SmallCNN, or Vanilla with its filters and no batch normalization."""

    filters: tuple[int, ...] = DEFAULT_FILTERS
    batch_norm: bool = True

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        return SmallCNN(input_shape, weights=weights, filters=self.filters, batch_norm=self.batch_norm, name=name)


register_architecture(
    ArchitectureInfo(
        key=DIMENSION_PREFIX + "SmallCNN",
        builder=SmallCNNBuilder(),
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
        builder=SmallCNNBuilder(VANILLA_FILTERS, batch_norm=False),
        input_size=(224, 224),
        standardize="zscore",
        weights_file=None,
        min_input_size=MIN_INPUT_SIZE,
        parameters=388_416,
    )
)

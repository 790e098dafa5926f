"""What the backbones trained from scratch share (SmallCNN, Vanilla, AlexNet, ResNet18, CustomCNN).

They have no ImageNet weights, take any channel count and any input of at least their minimum side;
a weights file saved from the same backbone may be loaded after building. Each is a plain functional
builder, ``Network(input_shape, *, weights=None, name=..., **options)``, and `scratch_builder` binds its
options for the registry. Keras is imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medbench.architectures.info import BACKBONE_NAME
from medbench.architectures.weights import is_imagenet, load_weights_file
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

__all__ = ["BN_MOMENTUM", "ScratchBuilder", "check_scratch_input", "finish_model", "scratch_builder"]

BN_MOMENTUM = 0.9
"""The BatchNormalization momentum of these networks: small datasets give few steps per epoch, and Keras'
0.99 would leave the inference statistics near their initial values after a few epochs (as in SmallCNN)."""


def check_scratch_input(title: str, input_shape: tuple[int | None, ...], weights: object, minimum: int) -> None:
    """Refuse ImageNet weights and an input that is not (height, width, channels) of at least `minimum` px.

    Args:
        title: the network's name, as messages show it.
        input_shape: (height, width, channels); height and width may be None (any size).
        weights: None, a weights file, or "imagenet" (refused: these networks have none).
        minimum: the smallest height and width the network accepts.

    Raises:
        ConfigError: naming the network, the argument and what was expected.
    """
    if is_imagenet(weights):
        raise ConfigError(
            f"{title} has no ImageNet weights: expected weights=None (random initialization) "
            f"or the path of a weights file saved from a {title}"
        )
    shape = tuple(input_shape)
    if len(shape) != 3 or not (isinstance(shape[-1], int) and shape[-1] >= 1):
        raise ConfigError(f"{title} input_shape {shape}: expected (height, width, channels) with channels >= 1")
    for size in shape[:2]:
        if size is not None and size < minimum:
            raise ConfigError(f"{title} input_shape {shape}: expected height and width of at least {minimum} px")


def finish_model(inputs: Any, outputs: Any, name: str, weights: str | Path | None) -> keras.Model:
    """The functional model `inputs` → `outputs`, with the weights file loaded when one is given."""
    import keras

    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_weights_file(model, Path(weights))
    return model


@dataclass(frozen=True)
class ScratchBuilder:
    """The registry's builder (`BackboneBuilder`) for `build` with fixed keyword options."""

    build: Callable[..., keras.Model]
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(
        self,
        input_shape: tuple[int | None, ...],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        return self.build(input_shape, weights=weights, name=name, **dict(self.options))


def scratch_builder(build: Callable[..., keras.Model], **options: Any) -> ScratchBuilder:
    """`ScratchBuilder(build, options)`: e.g. ``scratch_builder(SmallCNN, filters=(32, 64), batch_norm=False)``."""
    return ScratchBuilder(build, tuple(sorted(options.items())))

"""Checks shared by the image backbones that are trained from scratch (AlexNet, ResNet18, CustomCNN).

They have no ImageNet weights, take any channel count and any input of at least their minimum side;
a weights file saved from the same backbone may be loaded after building. Nothing here imports Keras.
"""

from __future__ import annotations

from medbench.architectures.weights import is_imagenet
from medbench.errors import ConfigError

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

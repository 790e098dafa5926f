"""TIML's `method` column: a network plus fixed hyperparameters, read onto medbench's registry and head.

A method is ``<network>[-fc<k>k][-ml]``: the network is any architecture key of the registry, matched as
the registry matches (case-insensitive, ``2D.`` optional: TIML's ``VGG16``, ``RESNET50`` and
``DenseNet169`` are medbench's ``2D.VGG16``, ``2D.ResNet50`` and ``2D.DenseNet169``); ``-fc<k>k`` puts two
fully connected layers of k × 1024 units (with dropout) before the output, as TIML's ``-fc2k`` and
``-fc4k`` heads do; ``-ml`` trains a sigmoid per class (multi-label) instead of one softmax per image.
TIML's plain ``VGG16`` has two fully connected layers of 2048 and trains with SGD, as its manual says;
every other method keeps medbench's Adam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medbench.architectures.registry import get_architecture
from medbench.errors import ConfigError, RegistryError

__all__ = ["Method", "parse_method"]

_FORM = re.compile(r"^(?P<network>.+?)(?:-fc(?P<width>\d+)k)?(?P<multilabel>-ml)?$", re.IGNORECASE)
FC_LAYERS = 2
"""Dense layers of TIML's ``-fc<k>k`` heads."""
PLAIN_FC = {"2D.VGG16": (2048, 2048)}
"""The fully connected layers of TIML's methods without an ``-fc`` suffix that nevertheless have them."""
SGD_NETWORKS = frozenset({"2D.VGG16"})


@dataclass(frozen=True)
class Method:
    """What a TIML method means in medbench: the registry key, the head's dense layers, the task and optimizer."""

    name: str
    architecture: str
    fcl_units: tuple[int, ...] | None
    multilabel: bool
    optimizer: str
    imagenet: bool
    """Whether the architecture has Keras ImageNet weights (TIML's networks start from them)."""


def parse_method(text: str) -> Method:
    """The method a TIML ``method`` cell names; ConfigError naming the cell and the valid forms otherwise."""
    match = _FORM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"method {text!r}: expected <network>[-fc<k>k][-ml], e.g. VGG16, RESNET50-fc4k-ml")
    try:
        info = get_architecture(match["network"])
    except RegistryError as error:
        raise ConfigError(f"method {text!r}: {error}") from None
    if match["width"] is not None:
        width = int(match["width"])
        if not 1 <= width <= 64:
            raise ConfigError(f"method {text!r}: -fc{width}k: expected a width of 1k to 64k units")
        units: tuple[int, ...] | None = (width * 1024,) * FC_LAYERS
    else:
        units = PLAIN_FC.get(info.key)
    return Method(
        name=text.strip(),
        architecture=info.key,
        fcl_units=units,
        multilabel=match["multilabel"] is not None,
        optimizer="SGD" if info.key in SGD_NETWORKS else "Adam",
        imagenet=info.weights_file is not None,
    )

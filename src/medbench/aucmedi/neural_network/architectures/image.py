"""AUCMEDI's 2D architectures by class name (`from medbench.aucmedi.neural_network.architectures.image import
DenseNet121`): one `Architecture` subclass per "2D." registry key."""

from __future__ import annotations

from medbench.architectures.registry import architecture_names
from medbench.aucmedi.neural_network.architectures.architecture import Architecture, architecture_class

PREFIX = "2D."


def __getattr__(name: str) -> type[Architecture]:
    if PREFIX + name in architecture_names():
        return architecture_class(PREFIX + name)
    raise AttributeError(f"module {__name__!r} has no architecture {name!r}")


def __dir__() -> list[str]:
    return [key.removeprefix(PREFIX) for key in architecture_names() if key.startswith(PREFIX)]

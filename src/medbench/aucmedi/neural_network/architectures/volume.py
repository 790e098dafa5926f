"""AUCMEDI's 3D architectures by class name (`from medbench.aucmedi.neural_network.architectures.volume import
ResNet18`): one `Architecture` subclass per "3D." registry key."""

from __future__ import annotations

from medbench.architectures.registry import architecture_names
from medbench.aucmedi.neural_network.architectures.architecture import Architecture, architecture_class

PREFIX = "3D."


def __getattr__(name: str) -> type[Architecture]:
    if PREFIX + name in architecture_names():
        return architecture_class(PREFIX + name)
    raise AttributeError(f"module {__name__!r} has no architecture {name!r}")


def __dir__() -> list[str]:
    return [key.removeprefix(PREFIX) for key in architecture_names() if key.startswith(PREFIX)]

"""Backbones and the classification head: registry, SimpleBaseArchitecture, standardization."""

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.head import classifier_head
from medbench.architectures.registry import (
    ArchitectureInfo,
    architecture_names,
    get_architecture,
    register_architecture,
)
from medbench.architectures.standardize import standardize

__all__ = [
    "ArchitectureInfo",
    "SimpleBaseArchitecture",
    "architecture_names",
    "classifier_head",
    "get_architecture",
    "register_architecture",
    "standardize",
]

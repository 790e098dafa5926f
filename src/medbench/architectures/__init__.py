"""Backbones and the classification head: the registry, its families, SimpleBaseArchitecture, weights.

Modules: `info` (ArchitectureInfo, the registry's record, and the standardize modes), `registry`
(lookup and registration), one module per family that registers itself when imported (`convnext`,
`densenet`, `resnet`, `inception`, `efficientnet`, `mobilenet`, `nasnet`, `vgg`, `small_cnn`, and the
networks trained from scratch that pyBIA uses: `alexnet`, `resnet18`, `custom_cnn`; and `models_3d`, the
"3D." volume networks), `keras_application` (the shared Keras builder of `keras.applications` entries),
`scratch` (the input checks of the networks trained from scratch), `head` (the classifier head), `base`
(SimpleBaseArchitecture) and `weights` (local-only pretrained weights). Importing this package
registers every family without importing TensorFlow; `SimpleBaseArchitecture` and `classifier_head`
load Keras on first use.
"""

from typing import Any

from medbench.architectures import (  # noqa: F401
    alexnet,
    convnext,
    custom_cnn,
    densenet,
    efficientnet,
    inception,
    mobilenet,
    models_3d,
    nasnet,
    resnet,
    resnet18,
    small_cnn,
    vgg,
)
from medbench.architectures.info import ArchitectureInfo
from medbench.architectures.registry import ARCHITECTURES, architecture_names, get_architecture, register_architecture

__all__ = [
    "ARCHITECTURES",
    "ArchitectureInfo",
    "SimpleBaseArchitecture",
    "architecture_names",
    "classifier_head",
    "get_architecture",
    "register_architecture",
]


def __getattr__(name: str) -> Any:
    if name == "SimpleBaseArchitecture":
        from medbench.architectures.base import SimpleBaseArchitecture

        return SimpleBaseArchitecture
    if name == "classifier_head":
        from medbench.architectures.head import classifier_head

        return classifier_head
    raise AttributeError(f"module 'medbench.architectures' has no attribute {name!r}")

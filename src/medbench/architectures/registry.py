"""The architecture registry: "2D.DenseNet121", "3D.ResNet18" and friends → `ArchitectureInfo`.

Each family module (`densenet`, `resnet`, …, `small_cnn`, `models_3d`) registers its entries when it is
imported, as timm's model files do; `medbench.architectures` imports them all. Family modules import Keras
only when they build, so listing, looking up or checking architectures never starts TensorFlow. Lookup is
the registry rule shared with datasets: case-insensitive, and the "2D." prefix may be left out. A 3D key
must be written with its "3D." prefix, as in AUCMEDI, so "resnet50" stays the 2D ResNet50 and a volume
network is never picked by accident.
"""

from __future__ import annotations

from medbench.architectures.info import DIMENSION_PREFIX, VOLUME_PREFIX, ArchitectureInfo
from medbench.registry import Registry

ARCHITECTURES: Registry[ArchitectureInfo] = Registry(
    "architecture",
    lambda info: info.key,
    aliases_of=lambda info: (info.key.removeprefix(DIMENSION_PREFIX),),
    hint=(
        f"case-insensitive, the {DIMENSION_PREFIX!r} prefix may be left out; "
        f"3D keys must be written with {VOLUME_PREFIX!r}, e.g. '3D.ResNet18'"
    ),
)


def register_architecture(info: ArchitectureInfo, *, replace: bool = False) -> ArchitectureInfo:
    """Add `info` to the registry (e.g. a custom backbone); a different entry under its key needs `replace`."""
    return ARCHITECTURES.register(info, replace=replace)


def get_architecture(key: str) -> ArchitectureInfo:
    """The entry for `key`: case-insensitive, the "2D." prefix optional ("densenet121" works), "3D." required."""
    return ARCHITECTURES.get(key)


def architecture_names() -> tuple[str, ...]:
    """All registry keys, in registration order."""
    return ARCHITECTURES.names()

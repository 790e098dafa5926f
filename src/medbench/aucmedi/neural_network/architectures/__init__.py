"""AUCMEDI's architectures module: `Classifier`, `architecture_dict` and `supported_standardize_mode` over
medbench's registry (2D classes in `image`, 3D classes in `volume`)."""

from medbench.aucmedi.neural_network.architectures.architecture import (
    Architecture,
    architecture_dict,
    supported_standardize_mode,
)
from medbench.aucmedi.neural_network.architectures.classifier import Classifier

__all__ = ["Architecture", "Classifier", "architecture_dict", "supported_standardize_mode"]

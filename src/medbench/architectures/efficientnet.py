"""EfficientNet-B0…B7 (Tan & Le, 2019), Keras' implementation, which standardizes internally ("none").

Keras' EfficientNet stores the ImageNet std, not its square, as the Normalization variance and adds
Rescaling(1/sqrt(std)) after it when it loads ImageNet weights itself (tensorflow/tensorflow#49930).
`KerasEfficientNet` reproduces that when medbench loads the ImageNet file from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import BACKBONE_NAME, DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.keras_application import KerasApplication
from medbench.architectures.registry import register_architecture

if TYPE_CHECKING:
    import keras

WEIGHTS_BASE_URL = "https://storage.googleapis.com/keras-applications/"
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
INPUT_SIZES = (224, 240, 260, 300, 380, 456, 528, 600)
"""The resolution each of B0…B7 was trained at."""


@dataclass(frozen=True)
class KerasEfficientNet(KerasApplication):
    """Keras EfficientNet; with the ImageNet file it reproduces Keras' extra std rescaling.

    Dividing by sqrt(std) after dividing by sqrt(variance) equals dividing by sqrt(variance * std),
    so the same function is obtained by folding std into the loaded Normalization variance.
    """

    def __call__(
        self,
        input_shape: tuple[int | None, int | None, int],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        import keras

        model = super().__call__(input_shape, weights=weights, imagenet=imagenet, name=name)
        if weights is not None and imagenet:
            normalization = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
            std = keras.ops.convert_to_tensor(IMAGENET_STD_RGB, dtype="float32")
            normalization.adapt_variance.assign(normalization.adapt_variance * std)
            normalization.finalize_state()
        return model


for _variant, _size in enumerate(INPUT_SIZES):
    _file = f"efficientnetb{_variant}_notop.h5"
    register_architecture(
        ArchitectureInfo(
            key=f"{DIMENSION_PREFIX}EfficientNetB{_variant}",
            builder=KerasEfficientNet(f"EfficientNetB{_variant}"),
            input_size=(_size, _size),
            standardize="none",
            weights_file=_file,
            weights_url=WEIGHTS_BASE_URL + _file,
        )
    )

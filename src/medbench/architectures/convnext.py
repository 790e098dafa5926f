"""ConvNeXt Tiny, Small, Base and Large (Liu et al., 2022), Keras' implementation, which normalizes
internally ("none": it takes pixels in [0, 255])."""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {
    "ConvNeXtTiny": 27_820_128,
    "ConvNeXtSmall": 49_454_688,
    "ConvNeXtBase": 87_566_464,
    "ConvNeXtLarge": 196_230_336,
}

for _size in ("Tiny", "Small", "Base", "Large"):
    register_architecture(
        keras_application(
            f"ConvNeXt{_size}",
            weights_file=f"convnext_{_size.lower()}_notop.h5",
            url_folder="convnext",
            standardize="none",
            parameters=PARAMETERS[f"ConvNeXt{_size}"],
        )
    )

"""EfficientNet-B0…B7 (Tan & Le, 2019) and EfficientNetV2 B0…B3, S, M, L (Tan & Le, 2021), Keras'
implementations, which standardize internally ("none").

Keras' EfficientNet stores the ImageNet std, not its square, as the Normalization variance and adds
Rescaling(1/sqrt(std)) after it when it loads ImageNet weights itself (tensorflow/tensorflow#49930).
`KerasEfficientNet` reproduces that when medbench loads the ImageNet file from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.architectures.info import BACKBONE_NAME, DIMENSION_PREFIX, ArchitectureInfo
from medbench.architectures.keras_application import KERAS_BASE_URL, KerasApplication
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


PARAMETERS = {
    "EfficientNetB0": 4_049_571,
    "EfficientNetB1": 6_575_239,
    "EfficientNetB2": 7_768_569,
    "EfficientNetB3": 10_783_535,
    "EfficientNetB4": 17_673_823,
    "EfficientNetB5": 28_513_527,
    "EfficientNetB6": 40_960_143,
    "EfficientNetB7": 64_097_687,
    "EfficientNetV2B0": 5_919_312,
    "EfficientNetV2B1": 6_931_124,
    "EfficientNetV2B2": 8_769_374,
    "EfficientNetV2B3": 12_930_622,
    "EfficientNetV2S": 20_331_360,
    "EfficientNetV2M": 53_150_388,
    "EfficientNetV2L": 117_746_848,
}
"""Weights of each headless backbone (checked against the built model by the tests)."""

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
            parameters=PARAMETERS[f"EfficientNetB{_variant}"],
        )
    )


@dataclass(frozen=True)
class KerasEfficientNetV2(KerasApplication):
    """Keras EfficientNetV2, whose `name` argument selects the variant's blocks: built under its own name,
    then wrapped as the backbone model (the same layers, under medbench's backbone name)."""

    def build(self, input_shape: tuple[int | None, int | None, int], name: str) -> keras.Model:
        import keras

        built = self.factory(include_top=False, weights=None, input_shape=input_shape)
        return keras.Model(built.input, built.output, name=name)


V2_INPUT_SIZES = {"B0": 224, "B1": 240, "B2": 260, "B3": 300, "S": 384, "M": 480, "L": 480}
"""The resolution each EfficientNetV2 variant was trained at (it rescales internally, so "none")."""

for _variant, _size in V2_INPUT_SIZES.items():
    _file = f"efficientnetv2-{_variant.lower()}_notop.h5"
    register_architecture(
        ArchitectureInfo(
            key=f"{DIMENSION_PREFIX}EfficientNetV2{_variant}",
            builder=KerasEfficientNetV2(f"EfficientNetV2{_variant}"),
            input_size=(_size, _size),
            standardize="none",
            weights_file=_file,
            weights_url=f"{KERAS_BASE_URL}efficientnet_v2/{_file}",
            parameters=PARAMETERS[f"EfficientNetV2{_variant}"],
        )
    )

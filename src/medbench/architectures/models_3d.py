"""3D backbones for volumes from `classification_models_3D` (Solovyev et al.), AUCMEDI's "3D." architectures.

Every network the package provides is registered as "3D.<Name>" in AUCMEDI's spelling ("3D.ResNet18",
"3D.DenseNet121", "3D.EfficientNetB0", …), at AUCMEDI's default input of 64x64x64 voxels. The
standardize mode is AUCMEDI's for the networks it lists ("grayscale" for ResNet and ResNeXt, "torch"
for DenseNet, "tf" for MobileNet, "caffe" for VGG); for the others it is what the package's
`preprocess_input` does: "torch" for the SE-Nets, "tf" for the Inceptions, and "none" for EfficientNet,
EfficientNetV2 and ConvNeXt, which rescale inside the network. `min_input_size` is the smallest side
each family was built at (a smaller one fails to build or leaves an empty feature map).

The builder always asks for ``weights=None``: the package's ImageNet weights would be downloaded, and
medbench never downloads. A weights file saved from the same backbone can be loaded afterwards, as for
the 2D families. The package (and so Keras) is imported only when a backbone is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from medbench.architectures.info import BACKBONE_NAME, VOLUME_PREFIX, ArchitectureInfo
from medbench.architectures.registry import register_architecture
from medbench.architectures.weights import load_weights_file
from medbench.errors import ConfigError

if TYPE_CHECKING:
    import keras

INPUT_SIZE = (64, 64, 64)
"""AUCMEDI's default input for its 3D architectures."""


def _factory(model_name: str) -> Callable[..., keras.Model]:
    """The package's function building `model_name` (e.g. "resnet18") with Keras 3 (imports Keras).

    Keras 3 moved `validate_activation` out of the public `keras.applications.imagenet_utils` into
    `keras.src.applications.imagenet_utils`, and the package's EfficientNet, EfficientNetV2 and ConvNeXt
    still call it there: building them *with* their top fails with AttributeError. medbench builds them
    headless (``include_top=False``), which never calls it, so this shim is a safety net for anyone
    building a top: it sets Keras' own function on the public module where that lacks it, nothing else.
    """
    from keras.applications import imagenet_utils
    from keras.src.applications import imagenet_utils as internal

    if not hasattr(imagenet_utils, "validate_activation"):
        imagenet_utils.validate_activation = internal.validate_activation
    from classification_models_3D.kkeras import Classifiers

    return Classifiers.get(model_name)[0]


@dataclass(frozen=True)
class ClassificationModel3D:
    """Builder for the `classification_models_3D` network `model_name` without top, weights from a local file."""

    model_name: str

    def __call__(
        self,
        input_shape: tuple[int | None, ...],
        *,
        weights: Path | None = None,
        imagenet: bool = False,
        name: str = BACKBONE_NAME,
    ) -> keras.Model:
        if imagenet:
            raise ConfigError(
                f"the 3D {self.model_name} has no local ImageNet weights (medbench never downloads): expected "
                "weights=None (random initialization) or the path of a weights file saved from the same backbone"
            )
        if len(input_shape) != 4:
            raise ConfigError(
                f"3D {self.model_name} input_shape {tuple(input_shape)}: expected (depth, height, width, channels)"
            )
        import keras

        built = _factory(self.model_name)(input_shape=tuple(input_shape), include_top=False, weights=None)
        model = keras.Model(built.input, built.output, name=name)
        if weights is not None:
            load_weights_file(model, weights)
        return model


class Entry(NamedTuple):
    """One network: its registry name, the package's name for it, standardize mode, smallest side, weights."""

    name: str
    model_name: str
    standardize: str
    min_input_size: int
    parameters: int


ENTRIES = (
    Entry("ResNet18", "resnet18", "grayscale", 8, 33_214_281),
    Entry("ResNet34", "resnet34", "grayscale", 8, 63_531_337),
    Entry("ResNet50", "resnet50", "grayscale", 8, 46_237_001),
    Entry("ResNet101", "resnet101", "grayscale", 8, 85_335_369),
    Entry("ResNet152", "resnet152", "grayscale", 8, 117_540_169),
    Entry("SEResNet18", "seresnet18", "grayscale", 8, 33_303_361),
    Entry("SEResNet34", "seresnet34", "grayscale", 8, 63_692_533),
    Entry("SEResNet50", "seresnet50", "torch", 8, 48_783_088),
    Entry("SEResNet101", "seresnet101", "torch", 8, 90_128_176),
    Entry("SEResNet152", "seresnet152", "torch", 8, 124_184_304),
    Entry("SEResNeXt50", "seresnext50", "torch", 8, 28_464_880),
    Entry("SEResNeXt101", "seresnext101", "torch", 8, 52_436_784),
    Entry("SENet154", "senet154", "torch", 8, 170_457_840),
    Entry("ResNeXt50", "resnext50", "grayscale", 8, 25_933_897),
    Entry("ResNeXt101", "resnext101", "grayscale", 8, 47_659_081),
    Entry("VGG16", "vgg16", "caffe", 32, 44_135_616),
    Entry("VGG19", "vgg19", "caffe", 32, 60_062_144),
    Entry("DenseNet121", "densenet121", "torch", 29, 11_370_176),
    Entry("DenseNet169", "densenet169", "torch", 29, 18_745_024),
    Entry("DenseNet201", "densenet201", "torch", 29, 25_603_776),
    Entry("InceptionResNetV2", "inceptionresnetv2", "tf", 8, 67_511_200),
    Entry("InceptionV3", "inceptionv3", "tf", 8, 34_117_088),
    Entry("MobileNet", "mobilenet", "tf", 32, 3_319_872),
    Entry("MobileNetV2", "mobilenetv2", "tf", 8, 2_388_160),
    Entry("EfficientNetB0", "efficientnetb0", "none", 8, 4_732_131),
    Entry("EfficientNetB1", "efficientnetb1", "none", 8, 7_510_279),
    Entry("EfficientNetB2", "efficientnetb2", "none", 8, 8_784_249),
    Entry("EfficientNetB3", "efficientnetb3", "none", 8, 12_147_935),
    Entry("EfficientNetB4", "efficientnetb4", "none", 8, 19_740_559),
    Entry("EfficientNetB5", "efficientnetb5", "none", 8, 31_223_799),
    Entry("EfficientNetB6", "efficientnetb6", "none", 8, 44_618_991),
    Entry("EfficientNetB7", "efficientnetb7", "none", 8, 69_073_175),
    Entry("EfficientNetV2B0", "efficientnetv2-b0", "none", 8, 6_495_312),
    Entry("EfficientNetV2B1", "efficientnetv2-b1", "none", 8, 7_791_092),
    Entry("EfficientNetV2B2", "efficientnetv2-b2", "none", 8, 9_793_790),
    Entry("EfficientNetV2B3", "efficientnetv2-b3", "none", 8, 14_191_342),
    Entry("EfficientNetV2S", "efficientnetv2-s", "none", 8, 22_550_256),
    Entry("EfficientNetV2M", "efficientnetv2-m", "none", 8, 57_067_332),
    Entry("EfficientNetV2L", "efficientnetv2-l", "none", 8, 126_004_960),
    Entry("ConvNeXtTiny", "convnext_tiny", "none", 32, 31_329_696),
    Entry("ConvNeXtSmall", "convnext_small", "none", 32, 54_996_384),
    Entry("ConvNeXtBase", "convnext_base", "none", 32, 95_643_520),
    Entry("ConvNeXtLarge", "convnext_large", "none", 32, 210_410_304),
    Entry("ConvNeXtXLarge", "convnext_xlarge", "none", 32, 369_807_104),
)
"""Every network of classification_models_3D 1.1.0 (`Classifiers.models_names()`). `parameters` are those of
the headless backbone on three channels, counted once (they are the same at every input size); the sizes
were probed down to 8 voxels (DenseNet fails at 28, VGG and ConvNeXt at 31, MobileNet leaves an empty map
below 32)."""

for _entry in ENTRIES:
    register_architecture(
        ArchitectureInfo(
            key=VOLUME_PREFIX + _entry.name,
            builder=ClassificationModel3D(_entry.model_name),
            input_size=INPUT_SIZE,
            standardize=_entry.standardize,
            weights_file=None,
            min_input_size=_entry.min_input_size,
            parameters=_entry.parameters,
        )
    )

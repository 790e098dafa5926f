"""MobileNet (Howard et al., 2017) and MobileNetV2 (Sandler et al., 2018), "tf" input; MobileNetV3 Small and
Large (Howard et al., 2019), which rescale internally ("none").

Keras picks a MobileNet file by input rows (128-224) and falls back to 224 otherwise; the 224 file
fits every input size since the backbones are fully convolutional.
"""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {
    "MobileNet": 3_228_864,
    "MobileNetV2": 2_257_984,
    "MobileNetV3Small": 939_120,
    "MobileNetV3Large": 2_996_352,
}

register_architecture(
    keras_application(
        "MobileNet",
        weights_file="mobilenet_1_0_224_tf_no_top.h5",
        url_folder="mobilenet",
        standardize="tf",
        parameters=PARAMETERS["MobileNet"],
    )
)
register_architecture(
    keras_application(
        "MobileNetV2",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        url_folder="mobilenet_v2",
        standardize="tf",
        parameters=PARAMETERS["MobileNetV2"],
    )
)
for _size in ("Small", "Large"):
    register_architecture(
        keras_application(
            f"MobileNetV3{_size}",
            weights_file=f"weights_mobilenet_v3_{_size.lower()}_224_1.0_float_no_top_v2.h5",
            url_folder="mobilenet_v3",
            standardize="none",
            parameters=PARAMETERS[f"MobileNetV3{_size}"],
        )
    )

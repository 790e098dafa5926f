"""Inception-v3 (Szegedy et al., 2016), Inception-ResNet-v2 (Szegedy et al., 2017) and Xception (Chollet, 2017).

All three were trained at 299 px with "tf" input and need at least 75 (Xception: 71) px.
"""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {"InceptionV3": 21_802_784, "InceptionResNetV2": 54_336_736, "Xception": 20_861_480}

for _name, _file, _folder, _minimum in (
    ("InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3", 75),
    (
        "InceptionResNetV2",
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "inception_resnet_v2",
        75,
    ),
    ("Xception", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "xception", 71),
):
    register_architecture(
        keras_application(
            _name,
            weights_file=_file,
            url_folder=_folder,
            standardize="tf",
            input_size=299,
            min_input_size=_minimum,
            parameters=PARAMETERS[_name],
        )
    )

"""MobileNetV2 (Sandler et al., 2018), "tf" input.

Keras picks the MobileNetV2 file by input rows (96-224) and falls back to 224 otherwise; the 224
file fits every input size since the backbone is fully convolutional.
"""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

register_architecture(
    keras_application(
        "MobileNetV2",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        url_folder="mobilenet_v2",
        standardize="tf",
    )
)

"""ResNet-50/101/152 (He et al., 2016; "caffe" input) and their V2 pre-activation variants ("tf" input)."""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {
    "ResNet50": 23_587_712,
    "ResNet101": 42_658_176,
    "ResNet152": 58_370_944,
    "ResNet50V2": 23_564_800,
    "ResNet101V2": 42_626_560,
    "ResNet152V2": 58_331_648,
}

for _v2 in (False, True):
    for _depth in (50, 101, 152):
        _suffix = "v2" if _v2 else ""
        register_architecture(
            keras_application(
                f"ResNet{_depth}{_suffix.upper()}",
                weights_file=f"resnet{_depth}{_suffix}_weights_tf_dim_ordering_tf_kernels_notop.h5",
                url_folder="resnet",
                standardize="tf" if _v2 else "caffe",
                parameters=PARAMETERS[f"ResNet{_depth}{_suffix.upper()}"],
            )
        )

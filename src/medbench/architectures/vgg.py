"""VGG-16/19 (Simonyan & Zisserman, 2015), "caffe" input."""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {"VGG16": 14_714_688, "VGG19": 20_024_384}

for _depth in (16, 19):
    register_architecture(
        keras_application(
            f"VGG{_depth}",
            weights_file=f"vgg{_depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
            url_folder=f"vgg{_depth}",
            standardize="caffe",
            parameters=PARAMETERS[f"VGG{_depth}"],
        )
    )

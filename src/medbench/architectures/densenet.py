"""DenseNet-121/169/201 (Huang et al., 2017), Keras' implementation; ImageNet weights expect "torch" input."""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {"DenseNet121": 7_037_504, "DenseNet169": 12_642_880, "DenseNet201": 18_321_984}

for _depth in (121, 169, 201):
    register_architecture(
        keras_application(
            f"DenseNet{_depth}",
            weights_file=f"densenet{_depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
            url_folder="densenet",
            standardize="torch",
            parameters=PARAMETERS[f"DenseNet{_depth}"],
        )
    )

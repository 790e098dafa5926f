"""NASNet-A Mobile (224 px) and Large (331 px) (Zoph et al., 2018), "tf" input.

Keras downloads their files as ``NASNet-mobile-no-top.h5`` / ``NASNet-large-no-top.h5`` and caches
them as ``nasnet_mobile_no_top.h5`` / ``nasnet_large_no_top.h5``: medbench looks for the cached name.
"""

from __future__ import annotations

from medbench.architectures.keras_application import keras_application
from medbench.architectures.registry import register_architecture

PARAMETERS = {"NASNetMobile": 4_269_716, "NASNetLarge": 84_916_818}

for _size, _input in (("Mobile", 224), ("Large", 331)):
    register_architecture(
        keras_application(
            f"NASNet{_size}",
            weights_file=f"nasnet_{_size.lower()}_no_top.h5",
            url_folder="nasnet",
            url_file=f"NASNet-{_size.lower()}-no-top.h5",
            standardize="tf",
            input_size=_input,
            parameters=PARAMETERS[f"NASNet{_size}"],
        )
    )

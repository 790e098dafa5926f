"""Every method behind one call: `explain_maps(model, images, "gradcam", classes)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from medbench.errors import ConfigError
from medbench.xai.cam import crm, gradcam, gradcam_plus_plus
from medbench.xai.gradients import (
    IntegratedGradientsConfig,
    guided_backprop,
    guided_gradcam,
    integrated_gradients,
    saliency,
)
from medbench.xai.maps import ClassSpec
from medbench.xai.names import method_name
from medbench.xai.perturbation import OcclusionConfig, RiseConfig, occlusion, rise
from medbench.xai.view import ModelView

METHODS: dict[str, Callable[..., np.ndarray]] = {
    "gradcam": gradcam,
    "gradcampp": gradcam_plus_plus,
    "saliency": saliency,
    "guided-backprop": guided_backprop,
    "guided-gradcam": guided_gradcam,
    "integrated-gradients": integrated_gradients,
    "occlusion": occlusion,
    "rise": rise,
    "crm": crm,
}
"""Name → function, in the order of `medbench.xai.names.METHOD_NAMES`."""


@dataclass(frozen=True)
class MethodConfig:
    """The settings of the methods that have any, and the images (or perturbed copies) sent per model call."""

    batch_size: int = 16
    integrated_gradients: IntegratedGradientsConfig = field(default_factory=IntegratedGradientsConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    rise: RiseConfig = field(default_factory=RiseConfig)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch size {self.batch_size!r}: expected a whole number of at least 1")


def explain_maps(
    model: keras.Model | ModelView,
    images: np.ndarray,
    method: str,
    classes: ClassSpec = None,
    *,
    layer: str | None = None,
    class_names: Sequence[str] | None = None,
    config: MethodConfig | None = None,
) -> np.ndarray:
    """The maps (n, k, *image size), float32, of `method` (a name of `METHOD_NAMES`) for uint8 `images`.

    `classes`: None (each image's top predicted class), an index or name, a list of them, or an
    (n, k) array of indices. `layer`: a feature-map layer inside the backbone for the CAM methods
    (default the backbone's output).
    """
    name = method_name(method)
    config = config or MethodConfig()
    options: dict[str, object] = {"layer": layer, "class_names": class_names}
    if name == "integrated-gradients":
        options["config"] = config.integrated_gradients
    elif name in ("occlusion", "rise"):
        options["config"] = getattr(config, name)
    batch = config.batch_size * 4 if name in ("occlusion", "rise", "integrated-gradients") else config.batch_size
    return METHODS[name](model, images, classes, batch_size=batch, **options)

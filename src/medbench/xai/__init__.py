"""Explanations that are checked: saliency maps of a medbench model, and how well they point at boxes.

One module per family, each a set of pure functions over a Keras model (or a `ModelView`) and a batch
of uint8 images, returning float32 maps (n, k, *image size) for k classes per image:

- `cam`: Grad-CAM, Grad-CAM++ (as MONAI computes it) and CRM (Kim et al., 2019);
- `gradients`: vanilla saliency, guided backpropagation, guided Grad-CAM, integrated gradients;
- `perturbation`: occlusion sensitivity and RISE;
- `view`: the model run part by part (standardization → nested backbone → head), so that gradients reach
  any layer inside the backbone; `methods`: every method behind `explain_maps`;
- `localization`: NIH-format box files, the pointing game and the mass share inside a box (no TensorFlow);
- `render`: greyscale map, heatmap, overlay and contact sheet; `explain`: `medbench explain` for a saved run.

Importing the package is light: the names below load their module (and TensorFlow) on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from medbench.xai.names import METHOD_NAMES, method_name, parse_methods

_LAZY = {
    "ModelView": "medbench.xai.view",
    "model_parts": "medbench.xai.view",
    "gradcam": "medbench.xai.cam",
    "gradcam_plus_plus": "medbench.xai.cam",
    "crm": "medbench.xai.cam",
    "saliency": "medbench.xai.gradients",
    "guided_backprop": "medbench.xai.gradients",
    "guided_gradcam": "medbench.xai.gradients",
    "integrated_gradients": "medbench.xai.gradients",
    "IntegratedGradientsConfig": "medbench.xai.gradients",
    "occlusion": "medbench.xai.perturbation",
    "rise": "medbench.xai.perturbation",
    "rise_masks": "medbench.xai.perturbation",
    "OcclusionConfig": "medbench.xai.perturbation",
    "RiseConfig": "medbench.xai.perturbation",
    "METHODS": "medbench.xai.methods",
    "MethodConfig": "medbench.xai.methods",
    "explain_maps": "medbench.xai.methods",
    "upsample": "medbench.xai.maps",
    "class_indices": "medbench.xai.maps",
    "Box": "medbench.xai.localization",
    "BoxScore": "medbench.xai.localization",
    "BOX_FILE": "medbench.xai.localization",
    "read_boxes": "medbench.xai.localization",
    "box_file_text": "medbench.xai.localization",
    "boxes_of": "medbench.xai.localization",
    "box_mask": "medbench.xai.localization",
    "pointing_hit": "medbench.xai.localization",
    "mass_share": "medbench.xai.localization",
    "unit_map": "medbench.xai.localization",
    "summarise": "medbench.xai.localization",
    "ExplainOptions": "medbench.xai.explain",
    "ExplainReport": "medbench.xai.explain",
    "explain_run": "medbench.xai.explain",
}

__all__ = ["METHOD_NAMES", "method_name", "parse_methods", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medbench.xai' has no attribute {name!r}")

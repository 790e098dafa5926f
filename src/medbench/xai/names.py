"""The explanation methods by name, without TensorFlow (the command line lists and checks them)."""

from __future__ import annotations

from collections.abc import Iterable

from medbench.errors import ConfigError

METHOD_NAMES = (
    "gradcam",
    "gradcampp",
    "saliency",
    "guided-backprop",
    "guided-gradcam",
    "integrated-gradients",
    "occlusion",
    "rise",
    "crm",
)
"""Every method, by the name the command line and `explain_maps` take (and the output files carry)."""
ALIASES = {
    "grad-cam": "gradcam",
    "gradcam++": "gradcampp",
    "grad-cam++": "gradcampp",
    "gradcam-pp": "gradcampp",
    "vanilla-saliency": "saliency",
    "guided-backpropagation": "guided-backprop",
    "ig": "integrated-gradients",
    "occlusion-sensitivity": "occlusion",
}
VOLUME_METHODS = (
    "gradcam",
    "gradcampp",
    "saliency",
    "guided-backprop",
    "guided-gradcam",
    "integrated-gradients",
    "crm",
)
"""The methods that take 3D volumes too (occlusion and RISE perturb 2D images only)."""


def method_name(text: str) -> str:
    """The method `text` names (case, "_" for "-" and the aliases allowed); ConfigError listing the valid ones."""
    key = str(text).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in METHOD_NAMES:
        raise ConfigError(f"explanation method {text!r}: expected one of {', '.join(METHOD_NAMES)}")
    return key


def parse_methods(values: Iterable[str]) -> tuple[str, ...]:
    """The methods of repeated and comma-separated `values`, each once, in the order given."""
    names: list[str] = []
    for value in values:
        for part in str(value).split(","):
            if part.strip() and (name := method_name(part)) not in names:
                names.append(name)
    if not names:
        raise ConfigError(f"no explanation method given: expected one or more of {', '.join(METHOD_NAMES)}")
    return tuple(names)

"""pyBIA's binary CNN classifier for small data: `BinaryClassifier` on medbench's registry, head and losses.

Modules: `normalization` (pyBIA's per-channel clip-and-min-max normalisation, NumPy only), `config`
(`BinaryClassifierConfig`, no TensorFlow), `model` (the network on normalised floats and its losses) and
`classifier` (`BinaryClassifier`: create, predict, save, load). `BinaryClassifier` loads TensorFlow on
first use; `normalize_stack` and the config do not.
"""

from __future__ import annotations

from typing import Any

from medbench.binary_classifier.config import BinaryClassifierConfig
from medbench.binary_classifier.normalization import normalize_stack

__all__ = ["BinaryClassifier", "BinaryClassifierConfig", "normalize_stack"]


def __getattr__(name: str) -> Any:
    if name == "BinaryClassifier":
        from medbench.binary_classifier.classifier import BinaryClassifier

        return BinaryClassifier
    raise AttributeError(f"module 'medbench.binary_classifier' has no attribute {name!r}")

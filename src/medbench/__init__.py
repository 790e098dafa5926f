"""medbench: benchmarks with reversible names, NaN-masked metrics, batch runs and re-evaluation.

Light objects import eagerly; the ones that need TensorFlow load on first use, so that
`import medbench` (and `medbench --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from medbench.benchmark import UNCERTAINTY_PRESETS, Benchmark, UncertaintyPreset
from medbench.errors import (
    BenchmarkNameError,
    ConfigError,
    DatasetError,
    ImageError,
    LabelPolicyError,
    MedbenchError,
    StorageError,
    WeightsNotFoundError,
)
from medbench.settings import Settings

__version__ = "0.1.0"

_LAZY = {
    "grid": "medbench.benchmarks",
    "PREDEFINED": "medbench.benchmarks",
    "DatasetSpec": "medbench.data.datasets",
    "get_dataset": "medbench.data.datasets",
    "register_dataset": "medbench.data.datasets",
    "load_dataset": "medbench.data.datasets",
    "split_by_patient": "medbench.data.splits",
    "encode_labels": "medbench.data.labels",
    "upsample_indices": "medbench.data.labels",
    "write_demo_dataset": "medbench.data.demo",
    "PipelineConfig": "medbench.data.pipeline",
    "training_dataset": "medbench.data.pipeline",
    "evaluation_dataset": "medbench.data.pipeline",
    "PreprocessParams": "medbench.preprocessing.params",
    "preprocess_image": "medbench.preprocessing.params",
    "ImageCache": "medbench.preprocessing.cache",
    "build_cache": "medbench.preprocessing.cache",
    "crop_lung_field": "medbench.preprocessing.crop",
    "SimpleBaseArchitecture": "medbench.architectures.base",
    "get_architecture": "medbench.architectures.registry",
    "architecture_names": "medbench.architectures.registry",
    "evaluate_predictions": "medbench.metrics.classification",
    "MetricsReport": "medbench.metrics.classification",
    "compute_class_weights": "medbench.metrics.class_weights",
    "make_loss": "medbench.metrics.losses",
    "Experiment": "medbench.experiment",
    "ExperimentOptions": "medbench.experiment",
    "load_batch": "medbench.experiment_exec",
    "run_batch": "medbench.experiment_exec",
    "reevaluate": "medbench.reevaluation",
    "predict_images": "medbench.prediction",
    "ExperimentLog": "medbench.tracking.logs",
    "validate_entries": "medbench.tracking.logs",
    "merge_logs": "medbench.tracking.merge",
    "enqueue_run": "medbench.tracking.storage",
    "sync": "medbench.tracking.storage",
    "pull": "medbench.tracking.storage",
    "choose_thresholds": "medbench.metrics.thresholds",
    "leaderboard": "medbench.leaderboard",
}

__all__ = [
    "Benchmark",
    "BenchmarkNameError",
    "ConfigError",
    "DatasetError",
    "ImageError",
    "LabelPolicyError",
    "MedbenchError",
    "Settings",
    "UNCERTAINTY_PRESETS",
    "UncertaintyPreset",
    "WeightsNotFoundError",
    "StorageError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

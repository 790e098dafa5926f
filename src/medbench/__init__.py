"""medbench: benchmarks with reversible names, NaN-masked metrics, batch runs and re-evaluation.

Light objects import eagerly; the ones that need TensorFlow (or the dataset tables) load on first use,
so that `import medbench` (and `medbench --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.data.label_policy import UNCERTAINTY_PRESETS, UncertaintyPreset
from medbench.errors import (
    BenchmarkNameError,
    ConfigError,
    DatasetError,
    ImageError,
    LabelPolicyError,
    MedbenchError,
    RegistryError,
    StorageError,
    WeightsNotFoundError,
)
from medbench.settings import Settings

__version__ = "0.1.0"

_LAZY = {
    "ExperimentSpec": "medbench.benchmark.spec",
    "grid": "medbench.benchmark.predefined",
    "PREDEFINED": "medbench.benchmark.predefined",
    "DatasetSpec": "medbench.data.datasets",
    "get_dataset": "medbench.data.datasets",
    "register_dataset": "medbench.data.datasets",
    "load_dataset": "medbench.data.datasets",
    "split_by_patient": "medbench.data.splits",
    "encode_labels": "medbench.data.label_policy",
    "upsample_indices": "medbench.data.label_policy",
    "write_demo_dataset": "medbench.demo",
    "MetadataEncoding": "medbench.data.metadata",
    "PipelineConfig": "medbench.pipeline.config",
    "training_dataset": "medbench.pipeline.dataset",
    "evaluation_dataset": "medbench.pipeline.dataset",
    "PreprocessParams": "medbench.preprocessing.params",
    "preprocess_image": "medbench.preprocessing.params",
    "ImageCache": "medbench.preprocessing.cache",
    "build_cache": "medbench.preprocessing.cache",
    "build_benchmark_cache": "medbench.preprocessing.dataset_cache",
    "crop_lung_field": "medbench.preprocessing.crop",
    "SimpleBaseArchitecture": "medbench.architectures.base",
    "get_architecture": "medbench.architectures.registry",
    "register_architecture": "medbench.architectures.registry",
    "architecture_names": "medbench.architectures.registry",
    "evaluate_predictions": "medbench.metrics.classification",
    "MetricsReport": "medbench.metrics.classification",
    "evaluate_multiclass": "medbench.metrics.multiclass",
    "MulticlassReport": "medbench.metrics.multiclass",
    "choose_thresholds": "medbench.metrics.thresholds",
    "compute_class_weights": "medbench.losses.class_weights",
    "compute_multiclass_weights": "medbench.losses.class_weights",
    "make_loss": "medbench.losses.benchmark_loss",
    "BinaryFocalLoss": "medbench.losses.focal",
    "CategoricalFocalLoss": "medbench.losses.focal",
    "MultilabelFocalLoss": "medbench.losses.focal",
    "ExperimentData": "medbench.experiment_data",
    "prepare_data": "medbench.experiment_data",
    "RunDir": "medbench.runs.run_dir",
    "SavedRun": "medbench.runs.saved_run",
    "find_runs": "medbench.runs.saved_run",
    "read_predictions": "medbench.runs.predictions",
    "Experiment": "medbench.experiment",
    "load_batch": "medbench.experiment_exec",
    "run_batch": "medbench.experiment_exec",
    "reevaluate": "medbench.reevaluation",
    "predict_images": "medbench.prediction",
    "EnsembleOptions": "medbench.ensemble.options",
    "TTAOptions": "medbench.ensemble.options",
    "build_ensemble": "medbench.ensemble.build",
    "train_bagging": "medbench.ensemble.bagging",
    "reevaluate_ensemble": "medbench.ensemble.reevaluate",
    "ExperimentLog": "medbench.tracking.logs",
    "validate_entries": "medbench.tracking.logs",
    "repair_logs": "medbench.tracking.logs",
    "merge_logs": "medbench.tracking.merge",
    "enqueue_run": "medbench.tracking.storage",
    "sync": "medbench.tracking.storage",
    "pull": "medbench.tracking.storage",
    "leaderboard": "medbench.leaderboard",
    "write_reports": "medbench.report.reports",
    "train_table": "medbench.table_training.runner",
    "read_training_table": "medbench.table_training.table",
    "BinaryClassifier": "medbench.binary_classifier.classifier",
    "BinaryClassifierConfig": "medbench.binary_classifier.config",
}

__all__ = [
    "Benchmark",
    "BenchmarkNameError",
    "ConfigError",
    "DatasetError",
    "ExperimentOptions",
    "ImageError",
    "LabelPolicyError",
    "MedbenchError",
    "RegistryError",
    "Settings",
    "StorageError",
    "UNCERTAINTY_PRESETS",
    "UncertaintyPreset",
    "WeightsNotFoundError",
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

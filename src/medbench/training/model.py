"""The model an experiment trains: built from its spec, compiled with a fresh optimizer, saved atomically."""

from __future__ import annotations

from pathlib import Path

import keras

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.atomic import write_saved_atomic
from medbench.benchmark.spec import ExperimentSpec
from medbench.experiment_data import ExperimentData
from medbench.losses.benchmark_loss import make_loss
from medbench.losses.class_weights import ClassWeights
from medbench.metrics.keras_metrics import MaskedAUC


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A new optimizer instance (never shared between runs: the original leaked learning rates)."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


def head_activation(task: str) -> str:
    """One softmax over the classes when each image has exactly one, else a sigmoid per class."""
    return "softmax" if task == "multiclass" else "sigmoid"


def build_model(spec: ExperimentSpec, data: ExperimentData, weights_dir: Path) -> keras.Model:
    """The spec's architecture with its standardization and the head of its task, taking uint8 images (or, for a
    3D benchmark, volumes (depth, height, width)) of the benchmark's size with the cache's channels (and the
    data's metadata features), uncompiled."""
    return SimpleBaseArchitecture(
        spec.architecture,
        len(data.classes),
        input_shape=(*spec.benchmark.spatial_shape, data.channels),
        weights=spec.options.weights,
        activation=head_activation(data.task),
        fcl=spec.options.fcl_units or spec.options.fcl,
        n_metadata=data.n_metadata,
        weights_dir=weights_dir,
    )


def compile_model(model: keras.Model, spec: ExperimentSpec, class_weights: ClassWeights | None) -> keras.Model:
    """Compile with the benchmark's optimizer, learning rate and masked loss for its task, and a masked AUC to
    watch (one-vs-rest for a softmax)."""
    benchmark = spec.benchmark
    model.compile(
        optimizer=make_optimizer(benchmark.optimizer, benchmark.learning_rate),
        loss=make_loss(benchmark.loss, class_weights, spec.task),
        metrics=[MaskedAUC(name="masked_auc")],
        jit_compile=spec.options.jit_compile,
    )
    return model


def save_model(model: keras.Model, path: Path) -> None:
    """Save a .keras file (optimizer state included) atomically."""
    write_saved_atomic(path, model.save)

"""An Experiment: a Benchmark bound to an architecture — trained, evaluated, saved and logged.

Every run gets its own run id and folder `models/<experiment name>/<run id>/` holding
`config.json`, `checkpoints/epoch-NNN.keras` (one per epoch), `model.keras` (the epoch with the
best validation mean AUROC), `history.json`, `predictions/{val,test}.csv` keyed by sample id and
`tensorboard/`. A finished run appends one entry to `logs/unvalidated-experiment-log.json`.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import secrets
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.registry import get_architecture
from medbench.benchmark import Benchmark
from medbench.data.datasets import DatasetSpec, get_dataset, load_dataset
from medbench.data.images import unreadable_images_error, verify_images
from medbench.data.labels import default_upsample_factors, encode_labels, label_counts, upsample_indices
from medbench.data.pipeline import PipelineConfig, evaluation_dataset, predict_with_ids, training_dataset
from medbench.data.splits import split_by_patient
from medbench.errors import ConfigError
from medbench.metrics.class_weights import ClassWeights, compute_class_weights
from medbench.metrics.classification import MetricsReport, evaluate_predictions
from medbench.metrics.keras_metrics import MaskedAUC
from medbench.metrics.losses import make_loss
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog, write_json_atomic

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("plateau", "epoch")
MONITOR = "val_mean_auroc"
EVALUATION_UNCERTAINTY = "ignore"


@dataclass(frozen=True)
class ExperimentOptions:
    """Choices beyond the Benchmark's name; stored in each run's config.json.

    Attributes:
        weights: None (random init), "imagenet" (local Keras file) or a weights file path.
        fcl: add the Dense(512) + Dropout block to the head.
        unmentioned: what a blank label becomes: "zero" or "mask".
        frontal_only: keep frontal views only.
        lr_schedule: "plateau" (multiply the LR by the benchmark's factor when val mean AUROC stalls)
            or "epoch" (multiply it after every epoch).
        plateau_patience: epochs without improvement before a plateau decay.
        early_stopping_patience: stop after this many epochs without improvement (None = never).
        upsample_factors: per-class factors for upsampled benchmarks (None = lift rare classes
            toward the median positive count).
        class_weight_fallback: a class without positives gets weight 1.0 instead of an error.
        max_train_samples: cap on training samples (quick runs); None = all.
        tensorboard: write TensorBoard event files.
    """

    weights: str | None = None
    fcl: bool = False
    unmentioned: str = "zero"
    frontal_only: bool = False
    lr_schedule: str = "plateau"
    plateau_patience: int = 1
    early_stopping_patience: int | None = None
    upsample_factors: dict[str, int] | None = None
    class_weight_fallback: bool = False
    max_train_samples: int | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule {self.lr_schedule!r}: expected one of {', '.join(LR_SCHEDULES)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExperimentOptions:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown experiment options {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class Split:
    """One part of the data: sample ids, image paths and targets (NaN = masked), row-aligned."""

    sample_ids: tuple[str, ...]
    paths: tuple[str, ...]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_ids)

    @classmethod
    def from_table(cls, table: pd.DataFrame, targets: np.ndarray) -> Split:
        return cls(tuple(table["sample_id"].astype(str)), tuple(table["path"].astype(str)), targets)

    def subset(self, indices: np.ndarray) -> Split:
        return Split(
            tuple(self.sample_ids[i] for i in indices), tuple(self.paths[i] for i in indices), self.targets[indices]
        )


@dataclass(frozen=True)
class ExperimentData:
    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    upsample_factors: dict[str, int] = field(default_factory=dict)


def prepare_data(benchmark: Benchmark, options: ExperimentOptions, settings: Settings) -> ExperimentData:
    """Load the benchmark's dataset, split it by patient and encode its labels — deterministically."""
    spec: DatasetSpec = get_dataset(benchmark.dataset)
    classes = tuple(spec.classes_for(benchmark.n_classes))
    train_table, test_table = load_dataset(spec, settings.data_dir)
    if options.frontal_only:
        train_table = train_table[train_table["frontal"]]
        test_table = test_table[test_table["frontal"]] if test_table is not None else None
    fractions = benchmark.split_fractions
    if len(fractions) == 2:
        if test_table is None:
            raise ConfigError(
                f"split DS{''.join(f'{p:02d}' for p in benchmark.split)} of {benchmark.name} takes the test set from "
                f"the official test file, but dataset {spec.name!r} has none; use a three-part split such as DS701515"
            )
        train_part, val_part = split_by_patient(train_table, fractions, seed=benchmark.seed)
        test_part = test_table
    else:
        train_part, val_part, test_part = split_by_patient(train_table, fractions, seed=benchmark.seed)

    def encode(table: pd.DataFrame, uncertainty: str) -> Split:
        raw = table.loc[:, list(classes)].to_numpy(dtype=np.float64)
        return Split.from_table(table, encode_labels(raw, classes, uncertainty, unmentioned=options.unmentioned))

    # The policy shapes training targets only: validation and test metrics are computed on certain
    # labels (uncertain → masked), so runs with different policies are compared on the same truth.
    train = encode(train_part, benchmark.uncertainty)
    val, test = encode(val_part, EVALUATION_UNCERTAINTY), encode(test_part, EVALUATION_UNCERTAINTY)
    if options.max_train_samples is not None and len(train) > options.max_train_samples:
        train = train.subset(np.arange(options.max_train_samples))
    factors: dict[str, int] = {}
    if benchmark.upsampled:
        factors = dict(options.upsample_factors or default_upsample_factors(train.targets, classes))
        train = train.subset(upsample_indices(train.targets, classes, factors))
    for part, split in (("train", train), ("val", val), ("test", test)):
        if len(split) == 0:
            raise ConfigError(f"{benchmark.name}: the {part} split of dataset {spec.name!r} is empty")
    return ExperimentData(classes, train, val, test, factors)


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def experiment_name(benchmark: Benchmark, architecture: str) -> str:
    """`<Architecture>_<benchmark name>`, the folder name of the experiment's runs."""
    return f"{get_architecture(architecture).name}_{benchmark.name}"


def environment_versions() -> dict[str, str]:
    from medbench import __version__

    return {
        "medbench": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def git_commit(path: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A new optimizer instance (never shared between runs: the original leaked learning rates)."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Save a .keras file under a temporary name, then rename it into place."""
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.keras")
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def copy_atomic(source: Path, target: Path) -> None:
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def write_predictions(
    path: Path, classes: tuple[str, ...], ids: list[str], targets: np.ndarray, predictions: np.ndarray
) -> None:
    """CSV keyed by sample id: `true:<class>` (blank = masked) and `pred:<class>` columns."""
    frame = pd.DataFrame({"sample_id": ids})
    for index, name in enumerate(classes):
        frame[f"true:{name}"] = targets[:, index]
    for index, name in enumerate(classes):
        frame[f"pred:{name}"] = predictions[:, index]
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temp, index=False, float_format="%.9g")
    os.replace(temp, path)


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Inverse of `write_predictions`: (ids, targets, predictions, classes)."""
    frame = pd.read_csv(path, dtype={"sample_id": str})
    classes = tuple(column.removeprefix("true:") for column in frame.columns if column.startswith("true:"))
    targets = frame[[f"true:{name}" for name in classes]].to_numpy(dtype=np.float64)
    predictions = frame[[f"pred:{name}" for name in classes]].to_numpy(dtype=np.float64)
    return list(frame["sample_id"]), targets, predictions, classes


def evaluate_split(
    model: keras.Model, split: Split, classes: tuple[str, ...], config: PipelineConfig
) -> tuple[MetricsReport, list[str], np.ndarray]:
    """Predict a split in its fixed order and compute exact masked metrics from the predictions."""
    try:
        ids, predictions, targets = predict_with_ids(
            model, evaluation_dataset(split.paths, split.targets, split.sample_ids, config)
        )
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError) as error:
        raise _image_failure(split.paths, error) from None
    if ids != list(split.sample_ids):
        raise RuntimeError("evaluation order changed: predictions would not match their sample ids")
    return evaluate_predictions(targets, predictions, classes), ids, predictions


def _image_failure(paths: tuple[str, ...], error: Exception) -> Exception:
    """Turn a TensorFlow decode failure into one error listing every unreadable image."""
    problems = verify_images(sorted(set(paths)))
    return unreadable_images_error(problems) if problems else error


class _EpochEnd(keras.callbacks.Callback):
    """Each epoch: exact validation metrics (logged as val_mean_auroc), a checkpoint, a history row."""

    def __init__(self, experiment: Experiment, data: ExperimentData, config: PipelineConfig) -> None:
        super().__init__()
        self.experiment = experiment
        self.data = data
        self.config = config
        self.history: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        report, _, _ = evaluate_split(self.model, self.data.val, self.data.classes, self.config)
        mean_auroc = report.mean_auroc
        logs[MONITOR] = mean_auroc if mean_auroc is not None else float("nan")
        checkpoint = self.experiment.checkpoint_path(epoch + 1)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_model_atomic(self.model, checkpoint)
        row = {
            "epoch": epoch + 1,
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            **{key: float(value) for key, value in logs.items() if key != MONITOR and np.isscalar(value)},
            MONITOR: mean_auroc,
            "val": report.to_dict(),
            "checkpoint": str(checkpoint.relative_to(self.experiment.run_dir)),
        }
        self.history.append(row)
        write_json_atomic(self.experiment.run_dir / "history.json", self.history)
        logger.info(
            "epoch %d: val mean AUROC %s", epoch + 1, "undefined" if mean_auroc is None else f"{mean_auroc:.4f}"
        )


class _Progress(keras.callbacks.Callback):
    """A tqdm bar over all training batches, with the loss and the last validation mean AUROC."""

    def __init__(self, name: str, epochs: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.bar = tqdm(total=epochs * steps_per_epoch, desc=name, unit="batch", leave=False)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        auroc = (logs or {}).get(MONITOR, float("nan"))
        defined = not math.isnan(auroc)
        self.bar.set_description(f"epoch {epoch + 1} val AUROC {auroc:.3f}" if defined else f"epoch {epoch + 1}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.bar.close()


class Experiment:
    """A Benchmark and an architecture: `run()` trains, evaluates, saves and logs one run."""

    def __init__(
        self,
        benchmark: Benchmark | str,
        architecture: str = "2D.SmallCNN",
        options: ExperimentOptions | None = None,
        settings: Settings | None = None,
        run_id: str | None = None,
    ) -> None:
        self.benchmark = Benchmark.from_name(benchmark) if isinstance(benchmark, str) else benchmark
        self.architecture = get_architecture(architecture)
        self.options = options or ExperimentOptions()
        self.settings = settings or Settings.from_env()
        self.run_id = run_id or new_run_id()

    @property
    def name(self) -> str:
        return experiment_name(self.benchmark, self.architecture.key)

    @property
    def run_dir(self) -> Path:
        return self.settings.models_dir / self.name / self.run_id

    def checkpoint_path(self, epoch: int) -> Path:
        return self.run_dir / "checkpoints" / f"epoch-{epoch:03d}.keras"

    def pipeline_config(self, training: bool = False) -> PipelineConfig:
        b = self.benchmark
        return PipelineConfig(
            image_size=b.image_size,
            batch_size=b.batch_size,
            standardize=self.architecture.standardize,
            crop=b.crop,
            transformations=b.transformations,
            augmentations=b.augmentations if training else (),
            seed=b.seed,
        )

    def build_model(self, n_classes: int) -> keras.Model:
        size = self.benchmark.image_size
        return SimpleBaseArchitecture(
            self.architecture.key,
            n_classes,
            input_shape=(size, size, 3),
            weights=self.options.weights,
            fcl=self.options.fcl,
            weights_dir=self.settings.weights_dir,
        )

    def class_weights(self, data: ExperimentData) -> ClassWeights | None:
        if self.benchmark.loss == "BCE":
            return None
        return compute_class_weights(
            data.train.targets,
            data.classes,
            l1_normed=self.benchmark.l1_normed,
            on_missing="fallback" if self.options.class_weight_fallback else "error",
        )

    def config(self, data: ExperimentData, weights: ClassWeights | None) -> dict[str, Any]:
        positives, negatives, masked = label_counts(data.train.targets)
        return {
            "id": self.run_id,
            "name": self.name,
            "benchmark": self.benchmark.to_dict(),
            "architecture": self.architecture.key,
            "options": asdict(self.options),
            "classes": list(data.classes),
            "seed": self.benchmark.seed,
            "uncertainty_preset": asdict(self.benchmark.uncertainty_preset)
            if self.benchmark.uncertainty_preset
            else None,
            "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "train_label_counts": {
                name: {"pos": int(p), "neg": int(n), "masked": int(m)}
                for name, p, n, m in zip(data.classes, positives, negatives, masked)
            },
            "upsample_factors": data.upsample_factors,
            "class_weights": weights.to_dict() if weights is not None else None,
            "versions": environment_versions(),
            "git_commit": git_commit(self.settings.root),
            "created": datetime.now(UTC).isoformat(),
        }

    def callbacks(self, epoch_end: _EpochEnd, steps_per_epoch: int) -> list[keras.callbacks.Callback]:
        b = self.benchmark
        callbacks: list[keras.callbacks.Callback] = [epoch_end, _Progress(self.name, b.epochs, steps_per_epoch)]
        if self.options.lr_schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=MONITOR, mode="max", factor=b.lr_factor, patience=self.options.plateau_patience, verbose=0
                )
            )
        else:
            callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: b.learning_rate * b.lr_factor**epoch))
        if self.options.early_stopping_patience is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=MONITOR, mode="max", patience=self.options.early_stopping_patience
                )
            )
        if self.options.tensorboard:
            callbacks.append(
                keras.callbacks.TensorBoard(
                    log_dir=str(self.run_dir / "tensorboard"), write_graph=False, profile_batch=0
                )
            )
        return callbacks

    def run(self) -> dict[str, Any]:
        """Train, pick the best epoch on validation mean AUROC, evaluate val/test, save, log; returns the log entry."""
        started = time.time()
        keras.utils.set_random_seed(self.benchmark.seed)
        data = prepare_data(self.benchmark, self.options, self.settings)
        weights = self.class_weights(data)
        self.run_dir.mkdir(parents=True, exist_ok=False)
        config = self.config(data, weights)
        write_json_atomic(self.run_dir / "config.json", config)
        logger.info(
            "run %s: %s (train %d, val %d, test %d)",
            self.run_id,
            self.name,
            len(data.train),
            len(data.val),
            len(data.test),
        )

        model = self.build_model(len(data.classes))
        model.compile(
            optimizer=make_optimizer(self.benchmark.optimizer, self.benchmark.learning_rate),
            loss=make_loss(self.benchmark.loss, weights),
            metrics=[MaskedAUC(name="masked_auc")],
        )
        eval_config = self.pipeline_config(training=False)
        epoch_end = _EpochEnd(self, data, eval_config)
        train_data = training_dataset(data.train.paths, data.train.targets, self.pipeline_config(training=True))
        callbacks = self.callbacks(epoch_end, math.ceil(len(data.train) / self.benchmark.batch_size))
        try:
            model.fit(train_data, epochs=self.benchmark.epochs, callbacks=callbacks, shuffle=False, verbose=0)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError) as error:
            raise _image_failure(data.train.paths, error) from None
        trained = time.time()

        history = epoch_end.history
        best = best_epoch(history)
        best_checkpoint = self.checkpoint_path(best)
        copy_atomic(best_checkpoint, self.run_dir / "model.keras")
        best_model = keras.models.load_model(best_checkpoint, compile=False)
        results: dict[str, dict[str, Any]] = {}
        for part, split in (("val", data.val), ("test", data.test)):
            report, ids, predictions = evaluate_split(best_model, split, data.classes, eval_config)
            write_predictions(
                self.run_dir / "predictions" / f"{part}.csv", data.classes, ids, split.targets, predictions
            )
            results[part] = report.to_dict()
        finished = time.time()

        best_row = history[best - 1]
        entry = {
            "id": self.run_id,
            "name": self.name,
            "status": "completed",
            "benchmark": self.benchmark.to_dict(),
            "architecture": self.architecture.key,
            "options": asdict(self.options),
            "classes": list(data.classes),
            "best_epoch": best,
            "epochs_run": len(history),
            "train": {key: best_row[key] for key in best_row if key in ("loss", "masked_auc", "learning_rate")},
            "val": results["val"],
            "test": results["test"],
            "timings": {
                "started": datetime.fromtimestamp(started, UTC).isoformat(),
                "finished": datetime.fromtimestamp(finished, UTC).isoformat(),
                "train_s": round(trained - started, 3),
                "evaluate_s": round(finished - trained, 3),
                "total_s": round(finished - started, 3),
            },
            "storage": {
                "run_dir": _relative(self.run_dir, self.settings.root),
                "model": _relative(self.run_dir / "model.keras", self.settings.root),
                "remote": None,
            },
            "versions": config["versions"],
            "git_commit": config["git_commit"],
        }
        write_json_atomic(self.run_dir / "result.json", entry)
        ExperimentLog(self.settings.logs_dir / UNVALIDATED_LOG).append(entry)
        logger.info(
            "run %s done: best epoch %d, val mean AUROC %s", self.run_id, best, results["val"]["macro"].get("auroc")
        )
        return entry


def best_epoch(history: list[dict[str, Any]]) -> int:
    """The epoch (1-based) with the highest validation mean AUROC; the last epoch when none is defined."""
    scored = [
        (row[MONITOR], row["epoch"]) for row in history if row.get(MONITOR) is not None and not math.isnan(row[MONITOR])
    ]
    if not scored:
        logger.warning("validation mean AUROC undefined in every epoch; keeping the last epoch")
        return history[-1]["epoch"]
    return max(scored, key=lambda item: (item[0], -item[1]))[1]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)

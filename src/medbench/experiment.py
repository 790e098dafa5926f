"""An Experiment: a Benchmark bound to an architecture — trained, evaluated, saved, logged and resumable.

Every run gets its own run id and folder `models/<experiment name>/<run id>/` holding
`config.json`, `checkpoints/epoch-NNN.keras` (one per epoch, optimizer state included),
`model.keras` (the epoch with the best validation mean AUROC), `history.json`,
`predictions/{val,test}.csv` keyed by sample id and `tensorboard/`. A finished run writes
`result.json` and appends one entry to `logs/unvalidated-experiment-log.json`.

A run killed part-way resumes from its last complete checkpoint: the data of epoch e is a pure
function of (seed, e) and the learning-rate schedule is derived from `history.json`, so the resumed
history matches an uninterrupted one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import platform
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.registry import get_architecture
from medbench.atomic import copy_atomic, fsync_file, write_atomic, write_json_atomic
from medbench.benchmark import Benchmark
from medbench.data.datasets import DatasetSpec, all_image_paths, get_dataset, load_dataset
from medbench.data.images import unreadable_images_error
from medbench.data.labels import default_upsample_factors, encode_labels, label_counts, upsample_indices
from medbench.data.pipeline import (
    PipelineConfig,
    evaluation_dataset,
    predict_with_ids,
    steps_per_epoch,
    training_dataset,
)
from medbench.data.splits import split_by_patient
from medbench.errors import ConfigError, StorageError
from medbench.metrics.class_weights import ClassWeights, compute_class_weights
from medbench.metrics.classification import MetricsReport, evaluate_predictions
from medbench.metrics.keras_metrics import MaskedAUC
from medbench.metrics.losses import make_loss
from medbench.preprocessing.cache import ImageCache, build_cache
from medbench.preprocessing.params import PreprocessParams
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("plateau", "epoch")
STRATEGIES = ("default", "mirrored", "multiworker")
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")
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
        skip_unreadable: train and evaluate without images that cannot be read (listed in
            config.json) instead of stopping with the list of them.
        strategy: "default" (one device), "mirrored" (all GPUs of one host) or "multiworker"
            (several hosts described by TF_CONFIG).
        mixed_precision: None, "mixed_float16" or "mixed_bfloat16" (the output layer stays float32).
        jit_compile: compile the train step with XLA.
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
    skip_unreadable: bool = False
    strategy: str = "default"
    mixed_precision: str | None = None
    jit_compile: bool = False

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule {self.lr_schedule!r}: expected one of {', '.join(LR_SCHEDULES)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise ConfigError(
                f"mixed_precision {self.mixed_precision!r}: expected none or one of "
                f"{', '.join(MIXED_PRECISION_POLICIES)}"
            )

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

    def without(self, paths: set[str]) -> Split:
        """The samples whose image is not in `paths`."""
        return self.subset(np.asarray([i for i, path in enumerate(self.paths) if path not in paths], dtype=np.int64))


@dataclass(frozen=True)
class ExperimentData:
    """Splits, classes and the dataset's full image list (the preprocessing cache covers all of it)."""

    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    upsample_factors: dict[str, int] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    channels: int = 1
    skipped: dict[str, str] = field(default_factory=dict)


def prepare_data(benchmark: Benchmark, options: ExperimentOptions, settings: Settings) -> ExperimentData:
    """Load the benchmark's dataset, split it by patient and encode its labels — deterministically."""
    spec: DatasetSpec = get_dataset(benchmark.dataset)
    classes = tuple(spec.classes_for(benchmark.n_classes))
    train_table, test_table = load_dataset(spec, settings.data_dir)
    sources = tuple(all_image_paths(train_table, test_table))
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
    _check_not_empty(benchmark, spec.name, train, val, test)
    return ExperimentData(classes, train, val, test, factors, sources, spec.channels)


def _check_not_empty(benchmark: Benchmark, dataset: str, train: Split, val: Split, test: Split) -> None:
    for part, split in (("train", train), ("val", val), ("test", test)):
        if len(split) == 0:
            raise ConfigError(f"{benchmark.name}: the {part} split of dataset {dataset!r} is empty")


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
    """Save a .keras file under a temporary name, fsync it, then rename it into place."""
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.keras")
    try:
        model.save(temp)
        fsync_file(temp)
        os.replace(temp, path)
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
    text = frame.to_csv(index=False, float_format="%.9g")
    write_atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Inverse of `write_predictions`: (ids, targets, predictions, classes)."""
    frame = pd.read_csv(path, dtype={"sample_id": str})
    classes = tuple(column.removeprefix("true:") for column in frame.columns if column.startswith("true:"))
    targets = frame[[f"true:{name}" for name in classes]].to_numpy(dtype=np.float64)
    predictions = frame[[f"pred:{name}" for name in classes]].to_numpy(dtype=np.float64)
    return list(frame["sample_id"]), targets, predictions, classes


def evaluate_split(
    model: keras.Model, split: Split, classes: tuple[str, ...], cache: ImageCache, config: PipelineConfig
) -> tuple[MetricsReport, list[str], np.ndarray]:
    """Predict a split in its fixed order and compute exact masked metrics from the predictions."""
    dataset = evaluation_dataset(cache, cache.rows(split.paths), split.targets, split.sample_ids, config)
    ids, predictions, targets = predict_with_ids(model, dataset)
    if ids != list(split.sample_ids):
        raise RuntimeError("evaluation order changed: predictions would not match their sample ids")
    return evaluate_predictions(targets, predictions, classes), ids, predictions


def _os_error(error: BaseException) -> OSError | None:
    """The OSError behind `error`, however deep a library wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def _writing(run_dir: Path, progress: list[dict[str, Any]]) -> Iterator[None]:
    """Turn a failed write (full disk, read-only folder) into one clear error that says what is safe."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        cause = _os_error(error)
        if cause is None or cause.errno not in _STORAGE_ERRNOS:
            raise
        where = cause.filename or f"in {run_dir}"
        done = f"epochs 1–{len(progress)} are saved" if progress else "no epoch was saved"
        raise StorageError(
            f"cannot write {where}: {cause.strerror or os.strerror(cause.errno)}; the run stopped and {done} "
            f"(partial files were removed). Free space or fix the folder's permissions, then run the same "
            f"command again to resume run {run_dir.name}"
        ) from None


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR}


def _improvements(history: list[dict[str, Any]]) -> list[bool]:
    """For each epoch, whether its val mean AUROC beat every earlier epoch (undefined never does)."""
    best = -math.inf
    flags = []
    for row in history:
        value = row.get(MONITOR)
        better = value is not None and not math.isnan(value) and value > best
        best = value if better else best
        flags.append(better)
    return flags


def plateau_decays(history: list[dict[str, Any]], patience: int) -> list[bool]:
    """For each epoch, whether the plateau schedule decays the learning rate at its end.

    Keras' ReduceLROnPlateau rule (count epochs without improvement, decay at `patience`, count
    again from zero), derived from the history alone so that a resumed run decides the same.
    """
    wait, decays = 0, []
    for better in _improvements(history):
        wait = 0 if better else wait + 1
        decays.append(wait >= patience)
        wait = 0 if wait >= patience else wait
    return decays


def should_stop_early(history: list[dict[str, Any]], patience: int | None) -> bool:
    """True once `patience` epochs in a row have not improved on the best val mean AUROC.

    As Keras' EarlyStopping, never after the first epoch alone.
    """
    if patience is None or len(history) < 2:
        return False
    flags = _improvements(history)
    last_improvement = max((i for i, better in enumerate(flags) if better), default=-1)
    return len(flags) - 1 - last_improvement >= patience


class _EpochEnd(keras.callbacks.Callback):
    """Each epoch: exact validation metrics, the schedule's decisions, a checkpoint, a history row.

    The learning rate is decayed before the checkpoint is written, so a run resumed from it
    continues with the rate the uninterrupted run would have used.
    """

    def __init__(self, experiment: Experiment, data: ExperimentData, history: list[dict[str, Any]]) -> None:
        super().__init__()
        self.experiment = experiment
        self.data = data
        self.history = history

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        b = self.experiment.benchmark
        if self.experiment.options.lr_schedule == "epoch":
            self.model.optimizer.learning_rate.assign(b.learning_rate * b.lr_factor**epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        options = self.experiment.options
        report = self.experiment.evaluate(self.model, self.data.val, self.data)[0]
        mean_auroc = report.mean_auroc
        logs[MONITOR] = mean_auroc if mean_auroc is not None else float("nan")
        checkpoint = self.experiment.checkpoint_path(epoch + 1)
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1,
            "learning_rate": rate,
            **{key: float(value) for key, value in logs.items() if key != MONITOR and np.isscalar(value)},
            MONITOR: mean_auroc,
            "val": report.to_dict(),
            "checkpoint": str(checkpoint.relative_to(self.experiment.run_dir)),
        }
        so_far = [*self.history, row]
        if options.lr_schedule == "plateau" and plateau_decays(so_far, options.plateau_patience)[-1]:
            decayed = rate * self.experiment.benchmark.lr_factor
            self.model.optimizer.learning_rate.assign(decayed)
            logger.info("epoch %d: validation stalled, learning rate → %.3g", epoch + 1, decayed)
        if should_stop_early(so_far, options.early_stopping_patience):
            logger.info("epoch %d: no improvement for %d epochs, stopping", epoch + 1, options.early_stopping_patience)
            self.model.stop_training = True
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_model_atomic(self.model, checkpoint)
        write_json_atomic(self.experiment.run_dir / "history.json", so_far)
        self.history.append(row)
        logger.info(
            "epoch %d: val mean AUROC %s", epoch + 1, "undefined" if mean_auroc is None else f"{mean_auroc:.4f}"
        )


class _Progress(keras.callbacks.Callback):
    """A tqdm bar over all training batches, with the loss and the last validation mean AUROC."""

    def __init__(self, name: str, batches: int, done: int = 0) -> None:
        super().__init__()
        self.bar = tqdm(total=batches, initial=done, desc=name, unit="batch", leave=False)

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


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `name` (see ExperimentOptions.strategy)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("strategy 'multiworker' needs TF_CONFIG (the cluster and this worker's task) to be set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def multiworker_run_id(name: str) -> str:
    """The same run id on every worker of one multi-worker job (derived from TF_CONFIG's cluster)."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    digest = hashlib.sha256(json.dumps([name, cluster], sort_keys=True).encode()).hexdigest()
    return f"multiworker-{digest[:12]}"


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (only the chief writes run files)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    cluster = config.get("cluster") or {}
    if task.get("type") == "chief":
        return True
    return task.get("type") in (None, "worker") and int(task.get("index", 0)) == 0 and "chief" not in cluster


@contextmanager
def _dtype_policy(name: str | None) -> Iterator[None]:
    previous = keras.config.dtype_policy()
    if name is not None:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


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
        self.run_id = run_id or (
            multiworker_run_id(self.name) if self.options.strategy == "multiworker" else new_run_id()
        )
        self.writer = self.options.strategy != "multiworker" or is_chief()
        self._cache: ImageCache | None = None

    @property
    def name(self) -> str:
        return experiment_name(self.benchmark, self.architecture.key)

    @property
    def folder(self) -> Path:
        """`models/<experiment name>/`, which holds one folder per run."""
        return self.settings.models_dir / self.name

    @property
    def run_dir(self) -> Path:
        """The run's folder; a non-chief worker of a multi-worker run writes to a scratch copy instead."""
        if not self.writer:
            return Path(tempfile.gettempdir()) / "medbench-worker" / self.name / self.run_id
        return self.folder / self.run_id

    def checkpoint_path(self, epoch: int) -> Path:
        return self.run_dir / "checkpoints" / f"epoch-{epoch:03d}.keras"

    def preprocess_params(self, channels: int = 1) -> PreprocessParams:
        return PreprocessParams.for_benchmark(self.benchmark, channels)

    def pipeline_config(self, training: bool = False) -> PipelineConfig:
        b = self.benchmark
        return PipelineConfig(
            image_size=b.image_size,
            batch_size=b.batch_size,
            standardize=self.architecture.standardize,
            augmentations=b.augmentations if training else (),
            seed=b.seed,
        )

    def prepare(self) -> ExperimentData:
        """The splits, with the preprocessing cache built (or reused) and unreadable images handled."""
        data = prepare_data(self.benchmark, self.options, self.settings)
        self._cache = build_cache(data.sources, self.preprocess_params(data.channels), self.settings.cache_root)
        return self._readable(data, self._cache)

    def _readable(self, data: ExperimentData, cache: ImageCache) -> ExperimentData:
        used = set(data.train.paths) | set(data.val.paths) | set(data.test.paths)
        failed = {path: reason for path, reason in cache.failed.items() if path in used}
        if not failed:
            return data
        if not self.options.skip_unreadable:
            raise unreadable_images_error(sorted(failed.items()))
        logger.warning(
            "%d unreadable images left out (skip_unreadable): %s", len(failed), ", ".join(sorted(failed)[:5])
        )
        drop = set(failed)
        train, val, test = data.train.without(drop), data.val.without(drop), data.test.without(drop)
        _check_not_empty(self.benchmark, self.benchmark.dataset, train, val, test)
        return replace(data, train=train, val=val, test=test, skipped=failed)

    @property
    def cache(self) -> ImageCache:
        if self._cache is None:
            raise RuntimeError("call prepare() first: the preprocessing cache is built there")
        return self._cache

    def evaluate(
        self, model: keras.Model, split: Split, data: ExperimentData
    ) -> tuple[MetricsReport, list[str], np.ndarray]:
        return evaluate_split(model, split, data.classes, self.cache, self.pipeline_config(training=False))

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
            "preprocessing": {"cache": self.cache.directory.name, **self.cache.params.to_dict()},
            "skipped_images": data.skipped,
            "versions": environment_versions(),
            "git_commit": git_commit(self.settings.root),
            "created": datetime.now(UTC).isoformat(),
        }

    def callbacks(self, history: list[dict[str, Any]], data: ExperimentData) -> list[keras.callbacks.Callback]:
        steps = steps_per_epoch(len(data.train), self.benchmark.batch_size)
        callbacks: list[keras.callbacks.Callback] = [
            _EpochEnd(self, data, history),
            _Progress(self.name, self.benchmark.epochs * steps, len(history) * steps),
        ]
        if self.options.tensorboard:
            callbacks.append(
                keras.callbacks.TensorBoard(
                    log_dir=str(self.run_dir / "tensorboard"), write_graph=False, profile_batch=0
                )
            )
        return callbacks

    def _stored_options(self) -> dict[str, Any]:
        """The options as config.json stores them (after a JSON round trip), for comparing runs."""
        return json.loads(json.dumps(asdict(self.options)))

    def saved_runs(self) -> list[tuple[Path, dict[str, Any]]]:
        """This experiment's earlier runs with the same options: (run folder, config), oldest first."""
        runs = []
        for config_path in sorted(self.folder.glob("*/config.json")):
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if config.get("options") == self._stored_options():
                runs.append((config_path.parent, config))
        return runs

    def run_or_resume(self, *, rerun: bool = False) -> dict[str, Any]:
        """Resume this experiment's unfinished run, or skip a completed one unless `rerun`, or start a new run."""
        for run_dir, _ in reversed(self.saved_runs()):
            if (run_dir / "result.json").is_file():
                if rerun:
                    continue
                logger.info(
                    "%s: already completed as run %s; --rerun (rerun=True) runs it again", self.name, run_dir.name
                )
                return {**json.loads((run_dir / "result.json").read_text(encoding="utf-8")), "skipped": True}
            if not rerun:
                self.run_id = run_dir.name
                logger.info("%s: resuming unfinished run %s", self.name, self.run_id)
                return self.run(resume=True)
        return self.run()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One process per run: a second one gets a clear error instead of writing beside the first."""
        lock_path = self.folder / f".{self.run_id}.lock"
        with _writing(self.run_dir, []):
            self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(f"run {self.run_id} is being run by another process (lock {lock_path})") from None
        try:
            yield
        finally:
            lock.release()

    def _start(self, data: ExperimentData, weights: ClassWeights | None, resume: bool) -> list[dict[str, Any]]:
        """Create the run folder (or reopen it to resume) and return the history so far."""
        if not resume:
            self.run_dir.mkdir(parents=True, exist_ok=False)
            write_json_atomic(self.run_dir / "config.json", self.config(data, weights))
            return []
        config = json.loads((self.run_dir / "config.json").read_text(encoding="utf-8"))
        if config.get("options") != self._stored_options():
            raise ConfigError(f"run {self.run_id} was started with other options; start a new run instead")
        history_path = self.run_dir / "history.json"
        history = json.loads(history_path.read_text(encoding="utf-8")) if history_path.is_file() else []
        complete = [row for row in history if (self.run_dir / row["checkpoint"]).is_file()]
        for orphan in self.run_dir.glob("checkpoints/.*.tmp.keras"):
            orphan.unlink()
        return complete

    def _compiled_model(self, n_classes: int, weights: ClassWeights | None) -> keras.Model:
        model = self.build_model(n_classes)
        model.compile(
            optimizer=make_optimizer(self.benchmark.optimizer, self.benchmark.learning_rate),
            loss=make_loss(self.benchmark.loss, weights),
            metrics=[MaskedAUC(name="masked_auc")],
            jit_compile=self.options.jit_compile,
        )
        return model

    def _restore(self, model: keras.Model, history: list[dict[str, Any]]) -> None:
        """Weights, optimizer state and learning rate of the last complete epoch."""
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.run_dir / history[-1]["checkpoint"])
        logger.info("run %s: resumed after epoch %d", self.run_id, history[-1]["epoch"])

    def run(self, *, resume: bool = False) -> dict[str, Any]:
        """Train (or resume), pick the best epoch on validation mean AUROC, evaluate, save and log.

        Returns the log entry. With `resume`, the run folder `run_dir` must hold an unfinished run.
        """
        started = time.time()
        keras.utils.set_random_seed(self.benchmark.seed)
        data = self.prepare()
        weights = self.class_weights(data)
        history: list[dict[str, Any]] = []
        with self._exclusive(), _writing(self.run_dir, history):
            history.extend(self._start(data, weights, resume))
            logger.info(
                "run %s: %s (train %d, val %d, test %d)",
                self.run_id,
                self.name,
                len(data.train),
                len(data.val),
                len(data.test),
            )
            self._train(data, weights, history)
            trained = time.time()
            entry = self._finish(data, history, started, trained)
        self._upload(entry)
        return entry

    def _train(self, data: ExperimentData, weights: ClassWeights | None, history: list[dict[str, Any]]) -> None:
        first_epoch = len(history)
        if first_epoch >= self.benchmark.epochs or should_stop_early(history, self.options.early_stopping_patience):
            return
        strategy = distribution_strategy(self.options.strategy)
        with _dtype_policy(self.options.mixed_precision), strategy.scope():
            model = self._compiled_model(len(data.classes), weights)
            if history:
                self._restore(model, history)
        train_data = training_dataset(
            self.cache,
            self.cache.rows(data.train.paths),
            data.train.targets,
            self.pipeline_config(training=True),
            first_epoch=first_epoch,
            epochs=self.benchmark.epochs,
        )
        model.fit(
            train_data,
            initial_epoch=first_epoch,
            epochs=self.benchmark.epochs,
            steps_per_epoch=steps_per_epoch(len(data.train), self.benchmark.batch_size),
            callbacks=self.callbacks(history, data),
            shuffle=False,
            verbose=0,
        )

    def _finish(
        self, data: ExperimentData, history: list[dict[str, Any]], started: float, trained: float
    ) -> dict[str, Any]:
        best = best_epoch(history)
        best_checkpoint = self.checkpoint_path(best)
        copy_atomic(best_checkpoint, self.run_dir / "model.keras")
        best_model = keras.models.load_model(best_checkpoint, compile=False)
        results: dict[str, dict[str, Any]] = {}
        for part, split in (("val", data.val), ("test", data.test)):
            report, ids, predictions = self.evaluate(best_model, split, data)
            write_predictions(
                self.run_dir / "predictions" / f"{part}.csv", data.classes, ids, split.targets, predictions
            )
            results[part] = report.to_dict()
        finished = time.time()
        config = json.loads((self.run_dir / "config.json").read_text(encoding="utf-8"))
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
        if self.writer:
            ExperimentLog(self.settings.logs_dir / UNVALIDATED_LOG).append(entry)
        logger.info(
            "run %s done: best epoch %d, val mean AUROC %s", self.run_id, best, results["val"]["macro"].get("auroc")
        )
        return entry

    def _upload(self, entry: dict[str, Any]) -> None:
        """Queue the run for the bucket and try to send it now; an unreachable bucket only delays it."""
        if self.settings.gcs_bucket and self.writer:
            from medbench.tracking.storage import upload_run

            remote = upload_run(self.run_dir, entry, self.settings).remote.get(self.run_id)
            entry["storage"]["remote"] = remote


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

"""An Experiment: one ExperimentSpec trained, evaluated, saved, logged and resumable.

`run()` goes prepare → build → fit → finish → upload. Every run gets its own run id and folder
(`medbench.runs.RunDir`, ``models/<experiment name>/<run id>/``) with a checkpoint per epoch,
`model.keras` (the epoch with the best validation mean AUROC), history, predictions keyed by sample
id and TensorBoard events; a finished run writes `result.json` and appends one entry to
`logs/unvalidated-experiment-log.json`. A run killed part-way resumes from its last complete
checkpoint: the data of epoch e is a pure function of (seed, e) and the schedule is derived from
`history.json`, so the resumed history matches an uninterrupted one.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from medbench.architectures.info import ArchitectureInfo
from medbench.architectures.registry import get_architecture
from medbench.architectures.standardization import load_run_model
from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError
from medbench.experiment_data import ExperimentData, Split, prepare
from medbench.losses.class_weights import ClassWeights, loss_class_weights
from medbench.metrics.multiclass import SplitReport
from medbench.pipeline.config import PipelineConfig
from medbench.pipeline.dataset import steps_per_epoch
from medbench.pipeline.enumeration import variant_count
from medbench.preprocessing.cache import ImageCache
from medbench.runs.records import log_entry, run_config
from medbench.runs.run_dir import RunDir
from medbench.runs.run_id import is_chief, multiworker_run_id, new_run_id
from medbench.runs.saved_run import saved_runs
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog, log_if_missing
from medbench.training.callbacks import EpochEnd, Progress, tensorboard
from medbench.training.distribution import distribution_strategy, dtype_policy
from medbench.training.evaluation import evaluate_split
from medbench.training.model import build_model, compile_model
from medbench.training.schedule import Schedule, best_epoch
from medbench.training.split_inputs import training_batches

logger = logging.getLogger(__name__)


class Experiment:
    """One spec: `run()` trains, evaluates, saves and logs one run (`run_or_resume()` picks up an unfinished one).

    Args:
        spec: the benchmark, architecture and options (a benchmark name means the default architecture).
        settings: project folders; default `Settings.from_env()`.
        run_id: the run to write (default a new id; all workers of a multi-worker run share one).
    `callbacks` takes Keras callbacks run after medbench's own; they see ``logs["val_mean_auroc"]`` and may stop it.
    """

    def __init__(self, spec: ExperimentSpec | str, settings: Settings | None = None, run_id: str | None = None):
        self.callbacks: list[keras.callbacks.Callback] = []
        self.spec = (ExperimentSpec(spec) if isinstance(spec, str) else spec).check()
        self.settings = settings or Settings.from_env()
        multiworker = self.spec.options.strategy == "multiworker"
        self.run_id = run_id or (
            multiworker_run_id(self.name, self.settings.tf_config) if multiworker else new_run_id()
        )
        self.writer = not multiworker or is_chief(self.settings.tf_config)
        self._cache: ImageCache | None = None

    @property
    def benchmark(self) -> Benchmark:
        return self.spec.benchmark

    @property
    def options(self) -> ExperimentOptions:
        return self.spec.options

    @property
    def architecture(self) -> ArchitectureInfo:
        return get_architecture(self.spec.architecture)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def folder(self) -> Path:
        """`models/<experiment name>/`, which holds one folder per run."""
        return self.settings.models_dir / self.name

    @property
    def run_dir(self) -> RunDir:
        """The run's folder; a non-chief worker of a multi-worker run writes to a scratch copy instead."""
        if not self.writer:
            return RunDir(Path(tempfile.gettempdir()) / "medbench-worker" / self.name / self.run_id)
        return RunDir(self.folder / self.run_id)

    @property
    def cache(self) -> ImageCache:
        if self._cache is None:
            raise RuntimeError("call prepare() first: the preprocessing cache is built there")
        return self._cache

    def prepare(self) -> ExperimentData:
        """The splits, with the preprocessing cache built (or reused) and unreadable images handled."""
        data, self._cache = prepare(self.spec, self.settings)
        return data

    def evaluate(
        self, model: keras.Model, split: Split, data: ExperimentData
    ) -> tuple[SplitReport, list[str], np.ndarray]:
        """(metrics, sample ids, predictions) of `model` on one split, in its fixed order."""
        return evaluate_split(model, split, data.classes, self.cache, PipelineConfig.for_spec(self.spec), data.task)

    def class_weights(self, data: ExperimentData) -> ClassWeights | None:
        """The loss's class weights from the training labels, or None for a loss that takes none."""
        fallback = self.options.class_weight_fallback
        return loss_class_weights(
            self.benchmark.loss,
            data.task,
            data.train.targets,
            data.classes,
            l1_normed=self.benchmark.l1_normed,
            on_missing="fallback" if fallback else "error",
        )

    def run_or_resume(self, *, rerun: bool = False) -> dict[str, Any]:
        """Resume this spec's unfinished run, or skip a completed one unless `rerun`, or start a new run."""
        for saved in reversed(
            [run for run in saved_runs(self.settings.models_dir, self.name) if run.made_from(self.spec)]
        ):
            if saved.run_dir.is_complete():
                if rerun:
                    continue
                logger.info(
                    "%s: already completed as run %s; --rerun (rerun=True) runs it again", self.name, saved.run_id
                )
                result = saved.run_dir.read_result()
                if self.writer:
                    log_if_missing(self.settings.logs_dir, result)
                return {**result, "skipped": True}
            if not rerun:
                self.run_id = saved.run_dir.run_id
                logger.info("%s: resuming unfinished run %s", self.name, self.run_id)
                return self.run(resume=True)
        return self.run()

    def run(self, *, resume: bool = False) -> dict[str, Any]:
        """Train (or resume), pick the best epoch on validation mean AUROC, evaluate, save and log.

        Returns the log entry. With `resume`, `run_dir` must hold an unfinished run of this spec.
        """
        started = time.time()
        keras.utils.set_random_seed(self.benchmark.seed)
        data = self.prepare()
        weights = self.class_weights(data)
        run_dir, history = self.run_dir, []
        with run_dir.exclusive(), run_dir.guard_writes(lambda: len(history)):
            history.extend(self._start(data, weights, resume))
            logger.info(
                "run %s: %s (train %d, val %d, test %d)",
                self.run_id,
                self.name,
                len(data.train),
                len(data.val),
                len(data.test),
            )
            self._fit(data, weights, history)
            entry = self._finish(data, history, started, time.time())
        self._upload(entry)
        return entry

    def _start(self, data: ExperimentData, weights: ClassWeights | None, resume: bool) -> list[dict[str, Any]]:
        """Create the run folder (or reopen it to resume) and return the history so far."""
        run_dir = self.run_dir
        if not resume:
            run_dir.path.mkdir(parents=True, exist_ok=False)
            run_dir.write_config(run_config(self.run_id, self.spec, data, weights, self.cache, self.settings.root))
            return []
        if ExperimentSpec.from_dict(run_dir.read_config()) != self.spec:
            raise ConfigError(f"run {self.run_id} was started with other options; start a new run instead")
        run_dir.remove_partial_checkpoints()
        return run_dir.completed_history()

    def _fit(self, data: ExperimentData, weights: ClassWeights | None, history: list[dict[str, Any]]) -> None:
        schedule = Schedule.for_spec(self.spec)
        if schedule.finished(history):
            return
        first_epoch, epochs = len(history), self.benchmark.epochs
        with (
            dtype_policy(self.options.mixed_precision),
            distribution_strategy(self.options.strategy, self.settings.tf_config).scope(),
        ):
            model = build_model(self.spec, data, self.settings.weights_dir)
            compile_model(model, self.spec, weights)
            if history:
                model.optimizer.build(model.trainable_variables)
                model.load_weights(self.run_dir / history[-1]["checkpoint"])
                logger.info("run %s: resumed after epoch %d", self.run_id, history[-1]["epoch"])
        steps = steps_per_epoch(len(data.train) * variant_count(self.benchmark.enumeration), self.benchmark.batch_size)
        callbacks = [
            EpochEnd(lambda model: self.evaluate(model, data.val, data)[0], schedule, self.run_dir, history),
            Progress(self.name, epochs * steps, first_epoch * steps),
        ]
        if self.options.tensorboard:
            callbacks.append(tensorboard(self.run_dir))
        callbacks += self.callbacks
        config = PipelineConfig.for_spec(self.spec, training=True)
        train_data = training_batches(self.cache, data.train, config, first_epoch=first_epoch, epochs=epochs)
        model.fit(
            train_data,
            initial_epoch=first_epoch,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )

    def _finish(
        self, data: ExperimentData, history: list[dict[str, Any]], started: float, trained: float
    ) -> dict[str, Any]:
        run_dir, best = self.run_dir, best_epoch(history)
        best_model = load_run_model(run_dir.keep_as_model(best), self.architecture.standardize, data.channels)
        results: dict[str, dict[str, Any]] = {}
        for part, split in (("val", data.val), ("test", data.test)):
            report, ids, predictions = self.evaluate(best_model, split, data)
            run_dir.write_predictions(part, data.classes, ids, split.targets, predictions)
            results[part] = report.to_dict()
        times = (started, trained, time.time())
        entry = log_entry(run_dir, run_dir.read_config(), history, best, results, times, self.settings.root)
        run_dir.write_result(entry)
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

            entry["storage"]["remote"] = upload_run(self.run_dir, entry, self.settings).remote.get(self.run_id)

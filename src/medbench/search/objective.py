"""One trial of a study: its values drawn, its runs trained as ordinary experiments, its score the validation
mean AUROC (the mean over the folds with cross-validation), epochs reported to the pruner as they finish."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError, MedbenchError
from medbench.experiment import Experiment
from medbench.search.space import Choice, Range, SearchSpace
from medbench.settings import Settings
from medbench.training.schedule import MONITOR

if TYPE_CHECKING:
    import optuna

__all__ = ["PruningCallback", "trial_specs", "run_trial"]

logger = logging.getLogger(__name__)

SIGNIFICANT = 3
"""Significant digits a drawn float keeps (a learning rate of 2.02e-07 names its run ``202LR9``, not 16 digits)."""


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """The trial's value of every searched field, drawn by the study's sampler."""
    values: dict[str, Any] = {}
    for name, parameter in space.parameters.items():
        if isinstance(parameter, Choice):
            values[name] = parameter.value_of(trial.suggest_categorical(name, parameter.labels))
        elif isinstance(parameter, Range) and parameter.integer:
            step = int(parameter.step or 1)
            values[name] = trial.suggest_int(
                name, int(parameter.low), int(parameter.high), step=step, log=parameter.log
            )
        else:
            drawn = trial.suggest_float(name, parameter.low, parameter.high, step=parameter.step, log=parameter.log)
            values[name] = drawn if parameter.step else float(f"{drawn:.{SIGNIFICANT}g}")
    return values


def trial_specs(space: SearchSpace, values: dict[str, Any], trial: int) -> list[ExperimentSpec]:
    """The experiments of one trial: one, or one per fold; each tagged with the study and trial number."""
    fields, architecture, options = space.trial_fields(values)
    try:
        benchmark = Benchmark.from_dict(fields)
    except (MedbenchError, TypeError) as error:
        raise ConfigError(f"study {space.study} trial {trial}: {error}") from None
    tags = {"study": space.study, "trial": str(trial)}
    folds = [None] if space.folds is None else [f"{fold}/{space.folds}" for fold in range(space.folds)]
    return [
        ExperimentSpec(
            benchmark, architecture, ExperimentOptions.from_dict({**options, "tags": tags, "cv_fold": fold})
        ).check()
        for fold in folds
    ]


class PruningCallback(keras.callbacks.Callback):
    """Reports each epoch's validation mean AUROC to the trial and stops training when the pruner says so."""

    def __init__(self, trial: optuna.Trial, offset: int = 0) -> None:
        super().__init__()
        self.trial, self.offset, self.pruned_at = trial, offset, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(MONITOR)
        if value is None or not np.isfinite(value):
            return
        self.trial.report(float(value), self.offset + epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True


def run_trial(trial: optuna.Trial, space: SearchSpace, settings: Settings) -> float:
    """Train the trial's runs; its value is their mean best validation AUROC. Raises TrialPruned when pruned."""
    import optuna

    values = suggest(trial, space)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    specs = trial_specs(space, values, trial.number)
    scores, run_ids = [], []
    for number, spec in enumerate(specs):
        experiment = Experiment(spec, settings)
        pruning = PruningCallback(trial, offset=number * spec.benchmark.epochs)
        experiment.callbacks.append(pruning)
        trial.set_user_attr("run_ids", [*run_ids, experiment.run_id])
        entry = experiment.run()
        run_ids.append(entry["id"])
        scores.append(((entry.get("val") or {}).get("macro") or {}).get("auroc"))
        if pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
            logger.info("study %s trial %d pruned after epoch %d", space.study, trial.number, pruning.pruned_at)
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at} of run {entry['id']}")
    defined = [score for score in scores if score is not None]
    if not defined:
        raise ConfigError(f"study {space.study} trial {trial.number}: no run has a defined validation mean AUROC")
    return float(np.mean(defined))

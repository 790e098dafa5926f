"""Bagging: k members of one benchmark, each trained on k − 1 of k patient-grouped folds of its training split.

Member i is an ordinary run whose options say ``bagging_fold: "i/k"``: its training data leaves out fold i
(`medbench.data.splits.leave_fold_out`), its validation and test splits are the benchmark's. The option
is in its config.json, so it re-evaluates (and resumes) on exactly its own data, and a member that is
already complete is reused instead of trained again. The members are then combined by `build_ensemble`.
"""

from __future__ import annotations

import logging
from typing import Any

from tqdm.auto import tqdm

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.vocabulary import BAGGING_FOLDS
from medbench.ensemble.build import build_ensemble
from medbench.ensemble.options import EnsembleOptions
from medbench.errors import ConfigError
from medbench.experiment import Experiment
from medbench.settings import Settings

logger = logging.getLogger(__name__)


def bagging_specs(
    benchmark: Benchmark | str, k: int, architecture: str | None = None, options: ExperimentOptions | None = None
) -> list[ExperimentSpec]:
    """The k member specs of a bagging ensemble (checked), fold 0 to k − 1."""
    if isinstance(k, bool) or not isinstance(k, int) or not BAGGING_FOLDS.low <= k <= BAGGING_FOLDS.high:
        raise ConfigError(f"bagging {k!r}: expected a whole number of members in {BAGGING_FOLDS}")
    base = options or ExperimentOptions()
    return [ExperimentSpec(benchmark, architecture, base.with_(bagging_fold=f"{i}/{k}")).check() for i in range(k)]


def train_bagging(
    benchmark: Benchmark | str,
    k: int,
    settings: Settings | None = None,
    *,
    architecture: str | None = None,
    run_options: ExperimentOptions | None = None,
    options: EnsembleOptions | None = None,
    rerun: bool = False,
) -> dict[str, Any]:
    """Train (or reuse) the k members and build their ensemble; returns the ensemble's log entry.

    Args:
        benchmark: the members' benchmark (a name or a Benchmark).
        k: members, and folds of the training patients.
        settings: project folders; default `Settings.from_env()`.
        architecture: the members' registry key (default: the benchmark dimension's).
        run_options: the members' other ExperimentOptions.
        options: how the members are combined (default the mean).
        rerun: train new members even where completed ones exist.
    """
    settings = settings or Settings.from_env()
    specs = bagging_specs(benchmark, k, architecture, run_options)
    members = []
    for spec in tqdm(specs, desc=f"bagging {specs[0].name}", unit="member"):
        entry = Experiment(spec, settings).run_or_resume(rerun=rerun)
        logger.info("bagging member %s (fold %s): run %s", spec.name, spec.options.bagging_fold, entry["id"])
        members.append(entry["id"])
    record = {"k": k, "benchmark": specs[0].benchmark.name, "architecture": specs[0].architecture}
    return build_ensemble(members, options, settings, bagging=record)

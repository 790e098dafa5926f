"""`build_ensemble`: saved runs combined into an ensemble that is recorded, logged and uploaded like a run.

Members' predictions come from their stored ``predictions/{val,test}.csv``, or from their models when
test-time augmentation is asked. The combination is fitted on the validation split only
(`medbench.ensemble.combination`), then applied to validation and test, and both are scored by the
metric functions a run's evaluation uses (`evaluate_for_task`), so the entry reads like a run's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from medbench.ensemble.aggregate import check_aggregate
from medbench.ensemble.combination import Combination, fit_combination
from medbench.ensemble.members import (
    PARTS,
    MemberStack,
    check_members,
    member_runs,
    stack_members,
    stored_predictions,
)
from medbench.ensemble.options import EnsembleOptions
from medbench.ensemble.record import ensemble_config, ensemble_entry, ensemble_name
from medbench.metrics.multiclass import evaluate_for_task
from medbench.runs.run_dir import RunDir
from medbench.runs.run_id import new_run_id
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog

logger = logging.getLogger(__name__)


def member_stacks(
    runs: Sequence[SavedRun], settings: Settings, options: EnsembleOptions, *, from_models: bool = False
) -> dict[str, MemberStack]:
    """Val and test predictions of every member, lined up by sample id: stored ones, or from the models when
    test-time augmentation is asked (or `from_models`, as re-evaluation does)."""
    if options.tta is not None or from_models:
        from medbench.ensemble.tta import model_predictions  # TensorFlow only when a model predicts

        predicted = [model_predictions(run, settings, options.tta) for run in runs]
    else:
        predicted = [{part: stored_predictions(run, part) for part in PARTS} for run in runs]
    return {part: stack_members(runs, [member[part] for member in predicted], part) for part in PARTS}


def score(
    combination: Combination, stacks: dict[str, MemberStack], classes: Sequence[str], task: str
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """The ensemble's predictions of each split and their metrics (the task's metrics, as a run's)."""
    predictions = {part: combination.predict(stack.predictions) for part, stack in stacks.items()}
    results = {
        part: evaluate_for_task(task, stacks[part].targets, predictions[part], classes).to_dict() for part in stacks
    }
    return predictions, results


def fit_members(stacks: dict[str, MemberStack], options: EnsembleOptions, task: str) -> Combination:
    """The combination fitted on the members' VALIDATION predictions and labels; test is never passed in."""
    val = stacks["val"]
    return fit_combination(options, val.predictions, val.targets, task)


def build_ensemble(
    run_ids: Sequence[str],
    options: EnsembleOptions | None = None,
    settings: Settings | None = None,
    *,
    bagging: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Combine saved runs into an ensemble, write its folder, log it (and queue it for the bucket); returns its entry.

    Args:
        run_ids: the members (at least two; one alone with test-time augmentation).
        options: method, meta-learner, TTA (default: the plain mean of the stored predictions).
        settings: project folders; default `Settings.from_env()`.
        bagging: recorded in config.json when the members are bagging members (`train_bagging`).

    Raises:
        ConfigError: members that are unknown, unfinished, ensembles themselves, or that do not share
            dataset, classes and split (naming the runs and what differs).
    """
    started = time.time()
    options = options or EnsembleOptions()
    settings = settings or Settings.from_env()
    runs = member_runs(run_ids, settings, minimum=1 if options.tta is not None else 2)
    signature = check_members(runs)
    classes, task = signature["classes"], signature["task"]
    if options.tta is not None:
        check_aggregate(options.tta.aggregate, task)
    stacks = member_stacks(runs, settings, options)
    combination = fit_members(stacks, options, task)
    predictions, results = score(combination, stacks, classes, task)

    run_id = new_run_id()
    name = ensemble_name(options, runs[0].spec.benchmark.name, bagging=bagging["k"] if bagging else None)
    run_dir = RunDir(settings.models_dir / name / run_id)
    run_dir.path.mkdir(parents=True, exist_ok=False)
    combination.save(run_dir)
    for part, stack in stacks.items():
        run_dir.write_predictions(part, classes, stack.ids, stack.targets, predictions[part])
    config = ensemble_config(
        run_id, name, runs, options, combination, signature, stacks, root=settings.root, bagging=bagging
    )
    run_dir.write_config(config)
    entry = ensemble_entry(run_dir, config, results, (started, time.time()), settings.root)
    run_dir.write_result(entry)
    ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).append(entry)
    logger.info(
        "ensemble %s (%s of %d runs): val mean AUROC %s, test mean AUROC %s",
        run_id,
        combination.method,
        len(runs),
        results["val"]["macro"].get("auroc"),
        results["test"]["macro"].get("auroc"),
    )
    if settings.gcs_bucket:
        from medbench.tracking.storage import upload_run

        entry["storage"]["remote"] = upload_run(run_dir, entry, settings).remote.get(run_id)
    return entry

"""Re-evaluation: recompute the metrics of saved runs, for the final model and for every saved epoch.

The data is rebuilt from each run's spec in config.json (same benchmark, options and seed → same
split), the saved model predicts val and test in fixed order, and the metrics are recomputed from
those predictions. Results go to `logs/reevaluation_experiments.json` (`val_again`, `test_again`) and
`logs/epoch_reevaluation_experiments.json` (one entry per epoch, `epoch_model`, that epoch's own
metrics).

One damaged file is one skipped item, not a stopped command: a run whose config.json cannot be read,
whose model.keras or an epoch checkpoint is truncated, or whose data cannot be prepared is reported
(its path and what is wrong) and the other runs and epochs are still evaluated; `reevaluate_runs`
returns both. An unreadable re-evaluation log still stops everything (it is never overwritten).

An ensemble's folder (config.json ``kind: "ensemble"``) has no model of its own: `reevaluate_runs` hands it to
the `ensembles` function it is given (`medbench.ensemble.reevaluate_ensemble`, which the command line
passes), after the runs; without one, an ensemble asked for by id is skipped with that advice and the
others are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medbench.architectures.standardization import load_run_model
from medbench.errors import LogCorruptError, MedbenchError, StorageError
from medbench.experiment_data import ExperimentData, prepare
from medbench.pipeline.config import PipelineConfig
from medbench.preprocessing.cache import ImageCache
from medbench.runs.saved_run import SavedRun, scan_runs
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, REEVALUATION_LOG, ExperimentLog
from medbench.tracking.storage import find_or_pull_runs
from medbench.training.evaluation import evaluate_split

logger = logging.getLogger(__name__)

PARTS = ("val", "test")
EnsembleReevaluator = Callable[[SavedRun, Settings], dict[str, Any]]


@dataclass
class Reevaluation:
    """What a re-evaluation did: the entries of runs with a final model, and what it skipped and why."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _metrics(
    run: SavedRun, model_path: Path, data: ExperimentData, cache: ImageCache, config: PipelineConfig
) -> dict[str, Any]:
    model = load_run_model(model_path, run.standardize_mode, run.image_channels)
    return {
        part: evaluate_split(model, getattr(data, part), data.classes, cache, config, data.task)[0].to_dict()
        for part in PARTS
    }


def _skip(skipped: list[str], problem: str) -> None:
    """Report a damaged item and go on."""
    logger.warning("skipped %s", problem)
    skipped.append(problem)


def reevaluate_run(
    run: SavedRun, settings: Settings, *, epochs: bool = False, skipped: list[str] | None = None
) -> dict[str, Any] | None:
    """Recompute val/test metrics of a run's final model (and of every epoch when `epochs`).

    A run that never finished has no model.keras: its final model is skipped with a warning and
    None returned, but its saved epochs are still re-evaluated when asked. With a `skipped` list, a
    model or checkpoint that cannot be loaded is added to it (its path and what is wrong) and the
    other epochs still run; without one, its error is raised.
    """
    data, cache = prepare(run.spec, settings)
    config = PipelineConfig.for_spec(run.spec)
    base = {
        "id": run.run_id,
        "name": run.name,
        "benchmark": run.config["benchmark"],
        "architecture": run.config["architecture"],
        "classes": list(data.classes),
        "reevaluated": datetime.now(UTC).isoformat(),
    }
    entry = None
    if run.run_dir.model_path.is_file():
        try:
            again = _metrics(run, run.run_dir.model_path, data, cache, config)
        except MedbenchError as error:
            if skipped is None:
                raise
            _skip(skipped, str(error))
        else:
            entry = {**base, "val_again": again["val"], "test_again": again["test"]}
            ExperimentLog(settings.logs_dir / REEVALUATION_LOG).upsert(entry)
    else:
        logger.warning(
            "run %s has no model.keras (it did not finish); only its saved epochs can be re-evaluated", run.run_id
        )
    if epochs:
        epoch_log = ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG)
        for epoch, path in tqdm(run.checkpoints(), desc=f"epochs of {run.run_id}", unit="epoch", leave=False):
            try:
                metrics = _metrics(run, path, data, cache, config)
            except MedbenchError as error:
                if skipped is None:
                    raise
                _skip(skipped, str(error))
                continue
            epoch_log.upsert(
                {**base, "epoch_model": epoch, "checkpoint": path.name, "val": metrics["val"], "test": metrics["test"]},
                key=lambda e: (e["id"], e["epoch_model"]),
            )
    return entry


def _runs(settings: Settings, run_ids: Iterable[str] | None, skipped: list[str]) -> list[SavedRun]:
    """The runs to re-evaluate; a run folder whose config.json is damaged goes to `skipped` instead."""
    scan = scan_runs(settings.models_dir)
    if run_ids is None:
        skipped.extend(str(item) for item in scan.damaged)
        return scan.runs
    healthy = {run.run_id for run in scan.runs}
    damaged = {item.run_dir.run_id: item for item in scan.damaged if item.run_dir.run_id not in healthy}
    wanted = list(dict.fromkeys(run_ids))
    skipped.extend(str(damaged[run_id]) for run_id in wanted if run_id in damaged)
    return find_or_pull_runs(settings, [run_id for run_id in wanted if run_id not in damaged])


def reevaluate_runs(
    settings: Settings | None = None,
    run_ids: Iterable[str] | None = None,
    *,
    epochs: bool = False,
    progress: bool = True,
    ensembles: EnsembleReevaluator | None = None,
) -> Reevaluation:
    """Re-evaluate the given (default: all) saved runs, skipping (and listing) damaged runs, models and epochs.

    Ensembles go to `ensembles` after the runs (see the module). An unknown run id, an unreadable
    re-evaluation log or a failed log write still stops the command.
    """
    settings = settings or Settings.from_env()
    report = Reevaluation()
    found = _runs(settings, run_ids, report.skipped)
    runs = [run for run in found if run.kind != "ensemble"] + [run for run in found if run.kind == "ensemble"]
    for run in tqdm(runs, desc="re-evaluating", unit="run", disable=not progress):
        ensemble = run.kind == "ensemble"
        if ensemble and ensembles is None:
            advice = f"run {run.run_id} is an ensemble: re-evaluate it with `medbench reevaluate --run {run.run_id}`"
            if run_ids is None:
                logger.info("left out %s", advice)
            else:
                _skip(report.skipped, advice)
            continue
        try:
            if ensemble and ensembles is not None:
                entry = ensembles(run, settings)
            else:
                entry = reevaluate_run(run, settings, epochs=epochs, skipped=report.skipped)
        except (LogCorruptError, StorageError):
            raise  # the logs or the disk: every other run would meet it too
        except MedbenchError as error:
            where = str(run.run_dir.path)
            _skip(report.skipped, str(error) if where in str(error) else f"run {run.run_id} ({where}): {error}")
            continue
        if entry is not None:
            report.entries.append(entry)
    return report


def reevaluate(
    settings: Settings | None = None,
    run_ids: Iterable[str] | None = None,
    *,
    epochs: bool = False,
    progress: bool = True,
    ensembles: EnsembleReevaluator | None = None,
) -> list[dict[str, Any]]:
    """Re-evaluate the given (default: all) saved runs; returns the entries of runs with a final model.

    Damaged runs, models and checkpoints are skipped with a warning (`reevaluate_runs` lists them);
    ensembles go to `ensembles` (`medbench.ensemble.reevaluate_ensemble`).
    """
    return reevaluate_runs(settings, run_ids, epochs=epochs, progress=progress, ensembles=ensembles).entries

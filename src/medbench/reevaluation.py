"""Re-evaluation: recompute the metrics of saved runs, for the final model and for every saved epoch.

The data is rebuilt from each run's spec in config.json (same benchmark, options and seed → same
split), the saved model predicts val and test in fixed order, and the metrics are recomputed from
those predictions. Results go to `logs/reevaluation_experiments.json` (`val_again`, `test_again`) and
`logs/epoch_reevaluation_experiments.json` (one entry per epoch, `epoch_model`, that epoch's own
metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medbench.architectures.standardization import load_run_model
from medbench.experiment_data import ExperimentData, prepare
from medbench.pipeline.config import PipelineConfig
from medbench.preprocessing.cache import ImageCache
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, REEVALUATION_LOG, ExperimentLog
from medbench.tracking.storage import find_or_pull_runs
from medbench.training.evaluation import evaluate_split

logger = logging.getLogger(__name__)

PARTS = ("val", "test")


def _metrics(
    run: SavedRun, model_path: Path, data: ExperimentData, cache: ImageCache, config: PipelineConfig
) -> dict[str, Any]:
    model = load_run_model(model_path, run.standardize_mode, run.image_channels)
    return {
        part: evaluate_split(model, getattr(data, part), data.classes, cache, config)[0].to_dict() for part in PARTS
    }


def reevaluate_run(run: SavedRun, settings: Settings, *, epochs: bool = False) -> dict[str, Any] | None:
    """Recompute val/test metrics of a run's final model (and of every epoch when `epochs`).

    A run that never finished has no model.keras: its final model is skipped with a warning and
    None returned, but its saved epochs are still re-evaluated when asked.
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
        again = _metrics(run, run.run_dir.model_path, data, cache, config)
        entry = {**base, "val_again": again["val"], "test_again": again["test"]}
        ExperimentLog(settings.logs_dir / REEVALUATION_LOG).upsert(entry)
    else:
        logger.warning(
            "run %s has no model.keras (it did not finish); only its saved epochs can be re-evaluated", run.run_id
        )
    if epochs:
        epoch_log = ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG)
        for epoch, path in tqdm(run.checkpoints(), desc=f"epochs of {run.run_id}", unit="epoch", leave=False):
            metrics = _metrics(run, path, data, cache, config)
            epoch_log.upsert(
                {**base, "epoch_model": epoch, "checkpoint": path.name, "val": metrics["val"], "test": metrics["test"]},
                key=lambda e: (e["id"], e["epoch_model"]),
            )
    return entry


def reevaluate(
    settings: Settings | None = None,
    run_ids: Iterable[str] | None = None,
    *,
    epochs: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Re-evaluate the given (default: all) saved runs; returns the entries of runs with a final model."""
    settings = settings or Settings.from_env()
    runs = find_or_pull_runs(settings, run_ids)
    entries = [
        reevaluate_run(run, settings, epochs=epochs)
        for run in tqdm(runs, desc="re-evaluating", unit="run", disable=not progress)
    ]
    return [entry for entry in entries if entry is not None]

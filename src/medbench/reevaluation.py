"""Re-evaluation: recompute the metrics of saved runs, for the final model and for every saved epoch.

The data is rebuilt from each run's config.json (same benchmark, options and seed → same split),
the saved model predicts val and test in fixed order, and the metrics are recomputed from those
predictions. Results go to `logs/reevaluation_experiments.json` (`val_again`, `test_again`) and
`logs/epoch_reevaluation_experiments.json` (one entry per epoch, `epoch_model`, that epoch's own
metrics).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
from tqdm.auto import tqdm

from medbench.benchmark import Benchmark
from medbench.errors import ConfigError
from medbench.experiment import Experiment, ExperimentData, ExperimentOptions
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, REEVALUATION_LOG, ExperimentLog

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"epoch-(\d+)\.keras")


@dataclass(frozen=True)
class SavedRun:
    """A run folder with its config.json."""

    run_dir: Path
    config: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.config["id"]

    def experiment(self, settings: Settings) -> Experiment:
        return Experiment(
            Benchmark.from_dict(self.config["benchmark"]),
            self.config["architecture"],
            ExperimentOptions.from_dict(self.config.get("options")),
            settings,
            run_id=self.run_id,
        )

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every complete checkpoint, in epoch order."""
        found = []
        for path in (self.run_dir / "checkpoints").glob("epoch-*.keras"):
            match = CHECKPOINT_RE.fullmatch(path.name)
            if match:
                found.append((int(match[1]), path))
        return sorted(found)


def find_runs(settings: Settings, run_ids: Iterable[str] | None = None) -> list[SavedRun]:
    """Saved runs under models/, optionally only the given ids; an unknown id is an error."""
    runs = []
    for config_path in sorted(settings.models_dir.glob("*/*/config.json")):
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("skipping %s: unreadable config (%s)", config_path, error)
            continue
        runs.append(SavedRun(config_path.parent, config))
    if run_ids is not None:
        wanted = list(run_ids)
        by_id = {run.run_id: run for run in runs}
        missing = [run_id for run_id in wanted if run_id not in by_id]
        if missing and settings.gcs_bucket:
            from medbench.tracking.storage import pull

            for run_id in missing:
                run_dir = pull(run_id, settings)
                by_id[run_id] = SavedRun(run_dir, json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
            missing = []
        if missing:
            raise ConfigError(f"no saved run with id {missing} under {settings.models_dir}")
        runs = [by_id[run_id] for run_id in wanted]
    return runs


def _evaluate(experiment: Experiment, model: keras.Model, data: ExperimentData, parts: Iterable[str]) -> dict[str, Any]:
    return {part: experiment.evaluate(model, getattr(data, part), data)[0].to_dict() for part in parts}


def reevaluate_run(run: SavedRun, settings: Settings, *, epochs: bool = False) -> dict[str, Any] | None:
    """Recompute val/test metrics of a run's final model (and of every epoch when `epochs`).

    A run that never finished has no model.keras: its final model is skipped with a warning and
    None returned, but its saved epochs are still re-evaluated when asked.
    """
    experiment = run.experiment(settings)
    data = experiment.prepare()
    base = {
        "id": run.run_id,
        "name": run.config["name"],
        "benchmark": run.config["benchmark"],
        "architecture": run.config["architecture"],
        "classes": list(data.classes),
        "reevaluated": datetime.now(UTC).isoformat(),
    }
    entry = None
    model_path = run.run_dir / "model.keras"
    if model_path.is_file():
        again = _evaluate(experiment, keras.models.load_model(model_path, compile=False), data, ("val", "test"))
        entry = {**base, "val_again": again["val"], "test_again": again["test"]}
        ExperimentLog(settings.logs_dir / REEVALUATION_LOG).upsert(entry)
    else:
        logger.warning(
            "run %s has no model.keras (it did not finish); only its saved epochs can be re-evaluated", run.run_id
        )
    if epochs:
        epoch_log = ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG)
        for epoch, path in tqdm(run.checkpoints(), desc=f"epochs of {run.run_id}", unit="epoch", leave=False):
            metrics = _evaluate(experiment, keras.models.load_model(path, compile=False), data, ("val", "test"))
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
    runs = find_runs(settings, run_ids)
    entries = [
        reevaluate_run(run, settings, epochs=epochs)
        for run in tqdm(runs, desc="re-evaluating", unit="run", disable=not progress)
    ]
    return [entry for entry in entries if entry is not None]

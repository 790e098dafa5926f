"""Saved runs: the run folders under models/ with their config.json, found by id or by experiment."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.architectures.registry import get_architecture
from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import get_dataset
from medbench.errors import ConfigError, MedbenchError
from medbench.runs.run_dir import CONFIG, RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedRun:
    """A run folder with its config.json."""

    run_dir: RunDir
    config: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path | RunDir) -> SavedRun:
        """The run in `folder` (which must hold its config.json)."""
        run_dir = folder if isinstance(folder, RunDir) else RunDir(Path(folder))
        return cls(run_dir, run_dir.read_config())

    @property
    def run_id(self) -> str:
        return self.config["id"]

    @property
    def name(self) -> str:
        """The experiment name, `<Architecture>_<benchmark name>`."""
        return self.config["name"]

    @property
    def spec(self) -> ExperimentSpec:
        """The benchmark, architecture and options the run was made with."""
        return ExperimentSpec.from_dict(self.config)

    def made_from(self, spec: ExperimentSpec) -> bool:
        """True when the run was made from `spec` (False, too, when its stored spec cannot be read)."""
        try:
            return self.spec == spec
        except (MedbenchError, KeyError, TypeError) as error:
            logger.warning("run %s: its config.json does not hold a readable spec (%s)", self.run_dir.path, error)
            return False

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.config["classes"])

    @property
    def standardize_mode(self) -> str:
        """How the run's architecture standardizes its input (what a model saved without that layer needs)."""
        return get_architecture(self.spec.architecture).standardize

    @property
    def image_channels(self) -> int:
        """Channels of the run's cached images, the uint8 images its model takes (1 for grayscale)."""
        stored = self.config.get("preprocessing") or {}
        if "channels" in stored:
            return int(stored["channels"])
        return get_dataset(self.spec.benchmark.dataset).channels

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every complete checkpoint, in epoch order."""
        return self.run_dir.checkpoints()


def saved_runs(models_dir: Path, experiment: str | None = None) -> list[SavedRun]:
    """The runs under `models_dir` (of one experiment when named), in folder order; unreadable configs skipped."""
    pattern = f"{experiment}/*/{CONFIG}" if experiment is not None else f"*/*/{CONFIG}"
    runs = []
    for config_path in sorted(models_dir.glob(pattern)):
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("skipping %s: unreadable config (%s)", config_path, error)
            continue
        runs.append(SavedRun(RunDir(config_path.parent), config))
    return runs


def find_runs(models_dir: Path, run_ids: Iterable[str] | None = None) -> list[SavedRun]:
    """Saved runs under `models_dir`, optionally only the given ids (in that order); an unknown id is an error.

    Runs kept only in the bucket are found by `medbench.tracking.storage.find_or_pull_runs`.
    """
    runs = saved_runs(models_dir)
    if run_ids is None:
        return runs
    wanted = list(run_ids)
    by_id = {run.run_id: run for run in runs}
    missing = [run_id for run_id in wanted if run_id not in by_id]
    if missing:
        raise ConfigError(f"no saved run with id {missing} under {models_dir}")
    return [by_id[run_id] for run_id in wanted]

"""Saved runs: the run folders under models/ with their config.json, found by id or by experiment.

A run folder whose config.json cannot be read is one damaged run, not a broken models/ folder: the
scan (`scan_runs`) reports it with its path and what is wrong, and the other runs are still found.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.architectures.registry import get_architecture
from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import get_dataset, register_stored_dataset
from medbench.errors import ConfigError, MedbenchError
from medbench.runs.run_dir import CONFIG, RunDir, json_problem

logger = logging.getLogger(__name__)

CONFIG_EXPECTED = "expected the run's configuration written by medbench"


def read_run_config(run_dir: RunDir) -> dict[str, Any]:
    """The run's config.json, checked to be an object with a string id and name; ConfigError otherwise."""
    path = run_dir.config_path
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: {json_problem(error)}; {CONFIG_EXPECTED}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: holds a JSON {type(config).__name__}, not an object; {CONFIG_EXPECTED}")
    for key in ("id", "name"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise ConfigError(f"{path}: has no {key!r} (a non-empty string); {CONFIG_EXPECTED}")
    return config


@dataclass(frozen=True)
class DamagedRun:
    """A run folder whose config.json cannot be read, with the error that says why."""

    run_dir: RunDir
    error: MedbenchError

    def __str__(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class RunScan:
    """The runs found under models/ and the run folders skipped because their config.json is damaged."""

    runs: list[SavedRun] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)


@dataclass(frozen=True)
class SavedRun:
    """A run folder with its config.json."""

    run_dir: RunDir
    config: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path | RunDir) -> SavedRun:
        """The run in `folder` (which must hold its config.json)."""
        run_dir = folder if isinstance(folder, RunDir) else RunDir(Path(folder))
        return cls(run_dir, read_run_config(run_dir))

    @property
    def run_id(self) -> str:
        return self.config["id"]

    @property
    def name(self) -> str:
        """The experiment name, `<Architecture>_<benchmark name>`."""
        return self.config["name"]

    @property
    def kind(self) -> str:
        """``"run"`` for a training run, ``"ensemble"`` for an ensemble's folder (`medbench.ensemble`)."""
        return str(self.config.get("kind") or "run")

    @property
    def spec(self) -> ExperimentSpec:
        """The benchmark, architecture and options the run was made with (ConfigError when unreadable)."""
        if self.kind == "ensemble":
            members = [str(member.get("id")) for member in self.config.get("members") or [] if isinstance(member, dict)]
            raise ConfigError(
                f"{self.run_dir.config_path}: run {self.run_id} is an ensemble of runs {members}: it has no spec or "
                "model of its own; expected a training run here (use its members)"
            )
        try:
            register_stored_dataset(self.config.get("dataset_spec"))
            return ExperimentSpec.from_dict(self.config)
        except MedbenchError as error:
            raise ConfigError(f"{self.run_dir.config_path}: does not hold a readable spec ({error})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            problem = f"{type(error).__name__}: {str(error)[:200]}"
            raise ConfigError(
                f"{self.run_dir.config_path}: does not hold a readable spec ({problem}); {CONFIG_EXPECTED}"
            ) from None

    def made_from(self, spec: ExperimentSpec) -> bool:
        """True when the run was made from `spec` (False, too, when its stored spec cannot be read)."""
        try:
            return self.spec == spec
        except (MedbenchError, KeyError, TypeError) as error:
            logger.warning("run %s: its config.json does not hold a readable spec (%s)", self.run_dir.path, error)
            return False

    @property
    def classes(self) -> tuple[str, ...]:
        classes = self.config.get("classes")
        if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
            raise ConfigError(f"{self.run_dir.config_path}: 'classes' is not a list of names; {CONFIG_EXPECTED}")
        return tuple(classes)

    @property
    def standardize_mode(self) -> str:
        """How the run's architecture standardizes its input (what a model saved without that layer needs)."""
        return get_architecture(self.spec.architecture).standardize

    @property
    def image_channels(self) -> int:
        """Channels of the run's cached images, the uint8 images its model takes (1 for grayscale)."""
        from medbench.preprocessing.samples import VOLUME_KIND  # OpenCV and SciPy only when asked

        stored = self.config.get("preprocessing") or {}
        if stored.get("kind") == VOLUME_KIND:
            return 1  # volumes have one value per voxel
        if "channels" in stored:
            if stored["channels"] not in (1, 3):
                raise ConfigError(
                    f"{self.run_dir.config_path}: preprocessing channels {str(stored['channels'])[:20]!r}: "
                    f"expected 1 or 3"
                )
            return int(stored["channels"])
        return get_dataset(self.spec.benchmark.dataset).channels

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every complete checkpoint, in epoch order."""
        return self.run_dir.checkpoints()


def scan_runs(models_dir: Path, experiment: str | None = None) -> RunScan:
    """The runs under `models_dir` (of one experiment when named), in folder order, and the damaged ones."""
    pattern = f"{experiment}/*/{CONFIG}" if experiment is not None else f"*/*/{CONFIG}"
    scan = RunScan()
    for config_path in sorted(models_dir.glob(pattern)):
        run_dir = RunDir(config_path.parent)
        try:
            scan.runs.append(SavedRun(run_dir, read_run_config(run_dir)))
        except ConfigError as error:
            logger.warning("skipping run folder %s: %s", run_dir.path, error)
            scan.damaged.append(DamagedRun(run_dir, error))
    return scan


def saved_runs(models_dir: Path, experiment: str | None = None) -> list[SavedRun]:
    """The runs under `models_dir` (of one experiment when named), in folder order; damaged configs skipped."""
    return scan_runs(models_dir, experiment).runs


def find_runs(models_dir: Path, run_ids: Iterable[str] | None = None) -> list[SavedRun]:
    """Saved runs under `models_dir`, optionally only the given ids (in that order); an unknown id is an error.

    An id whose run folder holds a damaged config.json raises that config's error (what is wrong with
    it), not "no saved run". Runs kept only in the bucket are found by
    `medbench.tracking.storage.find_or_pull_runs`.
    """
    scan = scan_runs(models_dir)
    if run_ids is None:
        return scan.runs
    wanted = list(run_ids)
    by_id: dict[str, SavedRun] = {}
    for run in scan.runs:
        other = by_id.setdefault(run.run_id, run)
        if other is not run and run.run_id in wanted:
            raise ConfigError(
                f"run id {run.run_id} is in two run folders, {other.run_dir.path} and {run.run_dir.path}; expected "
                "each run once (a copied run folder? move one of them out of models/)"
            )
    damaged = {item.run_dir.run_id: item for item in scan.damaged}
    missing = [run_id for run_id in wanted if run_id not in by_id]
    for run_id in missing:
        if run_id in damaged:
            raise damaged[run_id].error
    if missing:
        raise ConfigError(f"no saved run with id {missing} under {models_dir}")
    return [by_id[run_id] for run_id in wanted]

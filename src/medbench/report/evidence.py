"""What a report shows of one run, read from its folder: predictions with their truth, history, result, scores.

The truth comes from the run's own predictions files: ``predictions/{val,test}.csv`` hold each image's
``true:<class>`` labels (as evaluated: uncertain and blank labels masked) beside its ``pred:<class>``
probabilities, so nothing is predicted again and the dataset is not rebuilt. The dataset's label table
is read (without touching an image) only for what the files lack: each image's patient, so that the
bootstrap resamples patients, and its file, for the Grad-CAM overlays. Without the dataset the report is
still made, with image-level intervals and no overlays, and says so.

Thresholds are chosen on the validation predictions (Youden's J by default) and applied unchanged to
validation and test; nothing is ever chosen on test.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medbench.data.datasets import get_dataset, load_dataset, load_validation
from medbench.errors import ConfigError, DatasetError, MedbenchError
from medbench.evaluation.summary import summarise
from medbench.evaluation.tables import join_files
from medbench.metrics.thresholds import METHODS, threshold_table
from medbench.runs.run_dir import json_problem
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["PARTS", "RunEvidence", "SplitScores", "gather_evidence"]

PARTS = ("val", "test")
PART_TITLES = {"val": "validation", "test": "test"}
FIXED_THRESHOLD = 0.5
PREDICTIONS_EXPECTED = "expected the predictions CSV a finished run writes (sample_id, true:<class>, pred:<class>)"


@dataclass(frozen=True)
class SplitScores:
    """One split of a run: its images, truth (1/0/NaN) and probabilities, and their summary at the thresholds."""

    part: str
    path: Path
    ids: tuple[str, ...]
    targets: np.ndarray
    scores: np.ndarray
    summary: dict[str, Any]
    bootstrap_by: str
    """"patient" when the intervals resample patients, "image" otherwise."""

    @property
    def title(self) -> str:
        return PART_TITLES.get(self.part, self.part)


@dataclass(frozen=True)
class RunEvidence:
    """Everything a run page shows, read once and shared with the comparison page."""

    run: SavedRun
    classes: tuple[str, ...]
    task: str
    history: list[dict[str, Any]]
    result: dict[str, Any]
    thresholds: dict[str, dict[str, Any]]
    """Per class: ``value`` and ``source`` (where it was chosen)."""
    splits: dict[str, SplitScores]
    image_files: dict[str, str]
    """Sample id → image file, from the dataset's label table (empty when the dataset is not there)."""
    notes: tuple[str, ...]

    @property
    def single_label(self) -> bool:
        """True for runs with one class per image (multi-class, or one binary class)."""
        return self.task in ("multiclass", "binary")

    @property
    def run_id(self) -> str:
        return self.run.run_id


def _predictions(run: SavedRun, part: str) -> tuple[Path, tuple[str, ...], np.ndarray, np.ndarray]:
    """(file, ids, targets, probabilities) of a split, checked against the run's classes."""
    path = run.run_dir.predictions_path(part)
    if not path.is_file():
        raise ConfigError(
            f"run {run.run_id} ({run.run_dir.path}) has no predictions/{part}.csv; expected the {PART_TITLES[part]} "
            "predictions a finished run writes (did it finish? `medbench exec` with the same benchmark resumes it)"
        )
    try:
        joined = join_files(path, path)
    except DatasetError as error:
        raise ConfigError(f"run {run.run_id}: {error}; {PREDICTIONS_EXPECTED}") from None
    if joined.classes != run.classes:
        raise ConfigError(
            f"{path}: has classes {list(joined.classes)} but run {run.run_id}'s config.json names "
            f"{list(run.classes)}; {PREDICTIONS_EXPECTED}"
        )
    return path, joined.ids, joined.targets, joined.scores


def _read_result(run: SavedRun) -> dict[str, Any]:
    path = run.run_dir.result_path
    if not path.is_file():
        return {}
    try:
        result = run.run_dir.read_result()
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: {json_problem(error)}; expected the result.json a finished run writes") from None
    if not isinstance(result, dict):
        raise ConfigError(f"{path}: holds a JSON {type(result).__name__}; expected the object a finished run writes")
    return result


def _history(run: SavedRun) -> list[dict[str, Any]]:
    try:
        return run.run_dir.read_history()
    except ConfigError as error:
        raise ConfigError(f"run {run.run_id}: cannot draw its training curves: {error}") from None


def _dataset_rows(run: SavedRun, settings: Settings) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(sample id → patient id, sample id → image file) from the run's dataset, or empty maps and why not."""
    try:
        dataset = get_dataset(run.spec.benchmark.dataset)
        train, test = load_dataset(dataset, settings.data_dir, check_images=False)
        val = load_validation(dataset, settings.data_dir, check_images=False) if dataset.val is not None else None
    except MedbenchError as error:
        logger.warning("run %s: its dataset's label table cannot be read (%s)", run.run_id, error)
        return {}, {}, f"the run's dataset cannot be read here ({str(error)[:300]})"
    patients: dict[str, str] = {}
    files: dict[str, str] = {}
    for table in (train, test, val):
        if table is None:
            continue
        ids = table["sample_id"].astype(str).tolist()
        patients.update(zip(ids, table["patient_id"].astype(str).tolist()))
        files.update(zip(ids, table["path"].astype(str).tolist()))
    return patients, files, None


def _thresholds(
    classes: tuple[str, ...], targets: np.ndarray, scores: np.ndarray, method: str
) -> dict[str, dict[str, Any]]:
    """Each class's threshold chosen on validation, or the fixed one with the reason none could be chosen."""
    return threshold_table(targets, scores, classes, method, fixed=FIXED_THRESHOLD)


def gather_evidence(
    run: SavedRun,
    settings: Settings,
    *,
    threshold_method: str = "youden",
    n_resamples: int = 1000,
    seed: int = 0,
) -> RunEvidence:
    """Read `run`'s predictions, history and result and summarise val and test (see the module docstring).

    Raises:
        ConfigError: the run has no predictions (it did not finish) or a damaged file, naming it.
    """
    if threshold_method not in METHODS:
        raise ConfigError(f"threshold method {threshold_method!r}; expected one of {', '.join(METHODS)}")
    read = {part: _predictions(run, part) for part in PARTS}
    history, result = _history(run), _read_result(run)
    patients, files, missing = _dataset_rows(run, settings)
    notes = [f"Bootstrap intervals resample images, not patients: {missing}."] if missing else []
    _, _, val_targets, val_scores = read["val"]
    thresholds = _thresholds(run.classes, val_targets, val_scores, threshold_method)
    splits: dict[str, SplitScores] = {}
    for part, (path, ids, targets, scores) in read.items():
        known = [patients.get(value) for value in ids]
        by_patient = bool(patients) and all(value is not None for value in known)
        if patients and not by_patient:
            unknown = sum(value is None for value in known)
            notes.append(
                f"{unknown} {PART_TITLES[part]} image(s) are not in the dataset's label table: its intervals resample "
                "images, not patients."
            )
        summary = summarise(
            targets,
            scores,
            run.classes,
            {name: entry["value"] for name, entry in thresholds.items()},
            patients=tuple(str(value) for value in known) if by_patient else None,
            n_resamples=n_resamples,
            seed=seed,
        )
        splits[part] = SplitScores(part, path, ids, targets, scores, summary, "patient" if by_patient else "image")
    task = str(run.config.get("task") or "multilabel")
    logger.info("run %s: %d val and %d test predictions read", run.run_id, len(read["val"][1]), len(read["test"][1]))
    return RunEvidence(run, run.classes, task, history, result, thresholds, splits, files, tuple(notes))


def macro_auroc(evidence: RunEvidence, part: str) -> tuple[float | None, Mapping[str, Any]]:
    """The macro AUROC of one split and its bootstrap interval (empty when none)."""
    macro = evidence.splits[part].summary["macro"]
    return macro.get("auroc"), macro.get("auroc_ci") or {}

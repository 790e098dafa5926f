"""Ensemble members: saved runs that share dataset, classes and split, and their val/test predictions.

Members may differ in architecture and in everything else a benchmark names, but not in what decides
the validation and test images and their truth: dataset, classes, task, split fractions, split seed,
the frontal-only filter and the blank-label policy. `check_members` refuses any other mix, naming the
runs and the field. Their predictions (stored, or recomputed from their models) must then cover the
same images with the same labels; `stack_members` lines them up by sample id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbench.ensemble.options import ENSEMBLE_KIND
from medbench.errors import ConfigError, MedbenchError
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.storage import find_or_pull_runs

PARTS = ("val", "test")


@dataclass(frozen=True)
class SplitPredictions:
    """One split as one model saw it: sample ids, their targets (NaN = masked) and predictions, row-aligned."""

    ids: tuple[str, ...]
    targets: np.ndarray
    predictions: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(self.ids))
        n = len(self.ids)
        if self.targets.shape[0] != n or self.predictions.shape != self.targets.shape:
            raise ConfigError(
                f"{n} sample ids, targets of shape {self.targets.shape} and predictions of shape "
                f"{self.predictions.shape}: expected one row of each per sample id"
            )

    def reordered(self, ids: Sequence[str]) -> SplitPredictions:
        """The same rows in the order of `ids` (which must be exactly this split's ids)."""
        if tuple(ids) == self.ids:
            return self
        index = {sample: row for row, sample in enumerate(self.ids)}
        rows = np.asarray([index[sample] for sample in ids], dtype=np.int64)
        return SplitPredictions(tuple(ids), self.targets[rows], self.predictions[rows])


@dataclass(frozen=True)
class MemberStack:
    """The members' predictions of one split stacked on their common sample ids: (members, samples, classes)."""

    ids: tuple[str, ...]
    targets: np.ndarray
    predictions: np.ndarray


def split_signature(run: SavedRun) -> dict[str, Any]:
    """What must be equal across members: what decides the validation and test images and their truth."""
    spec = run.spec
    benchmark = spec.benchmark
    return {
        "dataset": benchmark.dataset,
        "classes": list(run.classes),
        "task": run.config.get("task", "multilabel"),
        "split": list(benchmark.split),
        "split seed": benchmark.seed,
        "frontal_only": spec.options.frontal_only,
        "unmentioned": spec.options.unmentioned,
    }


def member_runs(run_ids: Sequence[str], settings: Settings, *, minimum: int = 2) -> list[SavedRun]:
    """The saved runs of `run_ids` (pulled from the bucket when configured and not local), each once and complete.

    Raises:
        ConfigError: fewer than `minimum` distinct ids, an unknown id, an ensemble given as a member, or a run
            that did not finish.
    """
    wanted = list(dict.fromkeys(str(run_id) for run_id in run_ids))
    if len(wanted) < minimum:
        raise ConfigError(
            f"an ensemble of {len(wanted)} distinct run(s) {wanted}: expected at least {minimum} run ids "
            "(one run alone only with test-time augmentation)"
        )
    runs = find_or_pull_runs(settings, wanted)
    for run in runs:
        if run.config.get("kind") == ENSEMBLE_KIND:
            raise ConfigError(
                f"run {run.run_id} ({run.run_dir.path}) is itself an ensemble; expected training runs as members "
                f"(its members are {[member.get('id') for member in run.config.get('members', [])]})"
            )
        if not run.run_dir.is_complete():
            raise ConfigError(
                f"run {run.run_id} ({run.run_dir.path}) did not finish (no result.json); expected completed runs "
                "as members: finish it with `medbench exec` first"
            )
    return runs


def check_members(runs: Sequence[SavedRun]) -> dict[str, Any]:
    """The shared split signature of `runs`; ConfigError naming two runs and every field where they differ."""
    signatures = []
    for run in runs:
        try:
            signatures.append(split_signature(run))
        except MedbenchError as error:
            raise ConfigError(f"run {run.run_id}: cannot be an ensemble member: {error}") from None
    first = signatures[0]
    for run, signature in zip(runs[1:], signatures[1:]):
        differ = [key for key in first if signature[key] != first[key]]
        if differ:
            shown = "; ".join(f"{key} {first[key]!r} vs {signature[key]!r}" for key in differ)
            raise ConfigError(
                f"runs {runs[0].run_id} ({runs[0].name}) and {run.run_id} ({run.name}) do not share the dataset, "
                f"classes and split: {shown}; expected ensemble members evaluated on the same images and labels"
            )
    return first


def stored_predictions(run: SavedRun, part: str) -> SplitPredictions:
    """The run's ``predictions/<part>.csv``; ConfigError naming the file when it is missing or does not fit."""
    path = run.run_dir.predictions_path(part)
    try:
        ids, targets, predictions, classes = run.run_dir.read_predictions(part)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; expected the {part} predictions every finished run stores "
            "(or ask for test-time augmentation, which predicts with the model)"
        ) from None
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(
            f"{path}: cannot be read ({type(error).__name__}: {str(error)[:200]}); expected the predictions CSV "
            "medbench writes (sample_id, true:<class>…, pred:<class>…)"
        ) from None
    if classes != run.classes:
        raise ConfigError(f"{path}: classes {list(classes)}; expected the run's classes {list(run.classes)}")
    # The CSV holds the model's float32 outputs to 9 significant digits, which round-trips float32: going
    # through float32 gives back the model's exact values, so an ensemble built from stored predictions and
    # one recomputed from the models (re-evaluation, TTA with one plain cycle) combine identical numbers.
    exact = predictions.astype(np.float32).astype(np.float64)
    return SplitPredictions(tuple(ids), targets, exact)


def stack_members(runs: Sequence[SavedRun], parts: Sequence[SplitPredictions], part: str) -> MemberStack:
    """The members' predictions of one split on the first member's sample order.

    Raises:
        ConfigError: naming two runs whose split covers other images, or whose labels differ.
    """
    first = parts[0]
    aligned = [first]
    for run, other in zip(runs[1:], parts[1:]):
        if set(other.ids) != set(first.ids) or len(other.ids) != len(first.ids):
            only = sorted(set(first.ids) ^ set(other.ids))[:5]
            raise ConfigError(
                f"runs {runs[0].run_id} and {run.run_id} were evaluated on different {part} images "
                f"({len(first.ids)} vs {len(other.ids)}; e.g. {only}); expected members evaluated on the same images "
                "(did one of them skip unreadable images?)"
            )
        other = other.reordered(first.ids)
        if not np.array_equal(other.targets, first.targets, equal_nan=True):
            row = int(np.flatnonzero(~_equal_rows(other.targets, first.targets))[0])
            raise ConfigError(
                f"runs {runs[0].run_id} and {run.run_id} hold different {part} labels for sample {first.ids[row]!r}; "
                "expected members evaluated on the same truth"
            )
        aligned.append(other)
    return MemberStack(first.ids, first.targets, np.stack([member.predictions for member in aligned]))


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


def member_record(run: SavedRun) -> dict[str, Any]:
    """How an ensemble's config.json names one member."""
    return {
        "id": run.run_id,
        "name": run.name,
        "architecture": run.config.get("architecture"),
        "benchmark": run.spec.benchmark.name,
        "options": run.config.get("options"),
    }

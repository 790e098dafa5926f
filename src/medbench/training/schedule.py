"""The learning-rate schedule, early stopping and the best epoch — pure functions of a run's history.

Keras' ReduceLROnPlateau and EarlyStopping keep their state in memory, which a restart loses; these
derive every decision from the history rows alone (each row holds the epoch's validation mean AUROC
under `MONITOR`), so a resumed run takes the same decisions as an uninterrupted one. Hypothesis tests
check them against Keras decision for decision. One deliberate difference: Keras takes a NaN first
epoch as "best", after which nothing ever improves; here the first defined value counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medbench.benchmark.spec import ExperimentSpec

logger = logging.getLogger(__name__)

MONITOR = "val_mean_auroc"
"""The history key every decision watches: validation mean AUROC (None/NaN when undefined)."""

History = Sequence[dict[str, Any]]


def _defined(value: Any) -> bool:
    return value is not None and not math.isnan(value)


def improvements(history: History) -> list[bool]:
    """For each epoch, whether its val mean AUROC beat every earlier epoch (undefined never does)."""
    best = -math.inf
    flags = []
    for row in history:
        value = row.get(MONITOR)
        better = _defined(value) and value > best
        best = value if better else best
        flags.append(better)
    return flags


def plateau_decays(history: History, patience: int) -> list[bool]:
    """For each epoch, whether the plateau schedule decays the learning rate at its end.

    Keras' ReduceLROnPlateau rule: count epochs without improvement, decay at `patience`, count
    again from zero.
    """
    wait, decays = 0, []
    for better in improvements(history):
        wait = 0 if better else wait + 1
        decays.append(wait >= patience)
        wait = 0 if wait >= patience else wait
    return decays


def should_stop_early(history: History, patience: int | None) -> bool:
    """True once `patience` epochs in a row have not improved on the best val mean AUROC.

    As Keras' EarlyStopping, never after the first epoch alone.
    """
    if patience is None or len(history) < 2:
        return False
    flags = improvements(history)
    last_improvement = max((i for i, better in enumerate(flags) if better), default=-1)
    return len(flags) - 1 - last_improvement >= patience


def best_epoch(history: History) -> int:
    """The epoch (1-based) with the highest validation mean AUROC; the last epoch when none is defined."""
    scored = [(row[MONITOR], row["epoch"]) for row in history if _defined(row.get(MONITOR))]
    if not scored:
        logger.warning("validation mean AUROC undefined in every epoch; keeping the last epoch")
        return history[-1]["epoch"]
    return max(scored, key=lambda item: (item[0], -item[1]))[1]


@dataclass(frozen=True)
class EpochDecision:
    """What the schedule decides at the end of an epoch: the next learning rate (None = keep) and whether to stop."""

    next_rate: float | None
    stop: bool


@dataclass(frozen=True)
class Schedule:
    """A run's schedule: initial rate, decay factor, epochs, plateau or per-epoch decay, early stopping."""

    learning_rate: float
    lr_factor: float
    epochs: int
    lr_schedule: str = "plateau"
    plateau_patience: int = 1
    early_stopping_patience: int | None = None

    @classmethod
    def for_spec(cls, spec: ExperimentSpec) -> Schedule:
        benchmark, options = spec.benchmark, spec.options
        return cls(
            learning_rate=benchmark.learning_rate,
            lr_factor=benchmark.lr_factor,
            epochs=benchmark.epochs,
            lr_schedule=options.lr_schedule,
            plateau_patience=options.plateau_patience,
            early_stopping_patience=options.early_stopping_patience,
        )

    def rate_at_start(self, epoch: int) -> float | None:
        """The learning rate to set when 0-based `epoch` starts: the "epoch" schedule's decayed rate, else None."""
        return self.learning_rate * self.lr_factor**epoch if self.lr_schedule == "epoch" else None

    def after_epoch(self, history: History, rate: float) -> EpochDecision:
        """The decision after the last row of `history`, with `rate` the learning rate it trained at."""
        decay = self.lr_schedule == "plateau" and plateau_decays(history, self.plateau_patience)[-1]
        return EpochDecision(
            next_rate=rate * self.lr_factor if decay else None,
            stop=should_stop_early(history, self.early_stopping_patience),
        )

    def finished(self, history: History) -> bool:
        """True when a run with this history has nothing left to train."""
        return len(history) >= self.epochs or should_stop_early(history, self.early_stopping_patience)

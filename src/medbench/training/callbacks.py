"""Keras callbacks of a training run, each handed only what it needs (MONAI's handlers, not the trainer).

`EpochEnd` writes what makes a run resumable after every epoch: exact validation metrics, the
schedule's decisions, a checkpoint and a history row. `Progress` is the tqdm bar over all batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from medbench.metrics.multiclass import SplitReport
from medbench.runs.run_dir import RunDir
from medbench.training.model import save_model
from medbench.training.schedule import MONITOR, Schedule

logger = logging.getLogger(__name__)


class EpochEnd(keras.callbacks.Callback):
    """Each epoch: validation metrics, the schedule's decisions, a checkpoint, a history row.

    The learning rate is decayed before the checkpoint is written, so a run resumed from it
    continues with the rate the uninterrupted run would have used.

    Args:
        validate: scores the model on the validation split.
        schedule: decides the learning rate and early stopping from the history.
        run_dir: where checkpoints and history.json go.
        history: the rows so far (appended to in place).
    """

    def __init__(
        self,
        validate: Callable[[keras.Model], SplitReport],
        schedule: Schedule,
        run_dir: RunDir,
        history: list[dict[str, Any]],
    ) -> None:
        super().__init__()
        self.validate = validate
        self.schedule = schedule
        self.run_dir = run_dir
        self.history = history

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rate = self.schedule.rate_at_start(epoch)
        if rate is not None:
            self.model.optimizer.learning_rate.assign(rate)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        report = self.validate(self.model)
        mean_auroc = report.mean_auroc
        logs[MONITOR] = mean_auroc if mean_auroc is not None else float("nan")
        checkpoint = self.run_dir.checkpoint_path(epoch + 1)
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1,
            "learning_rate": rate,
            **{key: float(value) for key, value in logs.items() if key != MONITOR and np.isscalar(value)},
            MONITOR: mean_auroc,
            "val": report.to_dict(),
            "checkpoint": self.run_dir.relative(checkpoint),
        }
        so_far = [*self.history, row]
        decision = self.schedule.after_epoch(so_far, rate)
        if decision.next_rate is not None:
            self.model.optimizer.learning_rate.assign(decision.next_rate)
            logger.info("epoch %d: validation stalled, learning rate → %.3g", epoch + 1, decision.next_rate)
        if decision.stop:
            logger.info(
                "epoch %d: no improvement for %d epochs, stopping", epoch + 1, self.schedule.early_stopping_patience
            )
            self.model.stop_training = True
        save_model(self.model, checkpoint)
        self.run_dir.write_history(so_far)
        self.history.append(row)
        logger.info(
            "epoch %d: val mean AUROC %s", epoch + 1, "undefined" if mean_auroc is None else f"{mean_auroc:.4f}"
        )


class Progress(keras.callbacks.Callback):
    """A tqdm bar over all training batches, with the loss and the last validation mean AUROC."""

    def __init__(self, name: str, batches: int, done: int = 0) -> None:
        super().__init__()
        self.bar = tqdm(total=batches, initial=done, desc=name, unit="batch", leave=False)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        auroc = (logs or {}).get(MONITOR, float("nan"))
        defined = not math.isnan(auroc)
        self.bar.set_description(f"epoch {epoch + 1} val AUROC {auroc:.3f}" if defined else f"epoch {epoch + 1}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.bar.close()


def tensorboard(run_dir: RunDir) -> keras.callbacks.Callback:
    """TensorBoard event files under the run's tensorboard/ folder (no graph, no profiling)."""
    return keras.callbacks.TensorBoard(log_dir=str(run_dir.tensorboard_dir), write_graph=False, profile_batch=0)

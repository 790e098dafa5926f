"""A fitted combination of member predictions: mean, weighted mean or stacking, fitted on validation only.

`fit_combination` is the one place anything is fitted, and it takes validation arrays only: the test
split's labels never reach it, so they cannot shape the weights or the meta-learner. The fitted state
is recorded in the ensemble's config.json (the weights) or beside it (the meta-learner, joblib), and
`load_combination` gives back the same combination for re-evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medbench.ensemble.options import EnsembleOptions
from medbench.ensemble.stacking import fit_stacking, learner_params, load_stacking, predict_stacking, save_stacking
from medbench.ensemble.weights import fit_weights, uniform_weights, weighted_mean
from medbench.errors import ConfigError
from medbench.runs.run_dir import META_LEARNER, RunDir


@dataclass(frozen=True)
class Combination:
    """How member predictions become the ensemble's: `weights` for the averages, `stacked` for stacking."""

    method: str
    weights: np.ndarray | None = None
    stacked: dict[str, Any] | None = None
    meta_learner: str | None = None
    seed: int = 0

    def predict(self, stack: np.ndarray) -> np.ndarray:
        """The ensemble's predictions (samples, classes) from member predictions (members, samples, classes)."""
        if self.stacked is not None:
            return np.clip(predict_stacking(self.stacked, stack), 0.0, 1.0)
        if self.weights is None or len(self.weights) != np.shape(stack)[0]:
            raise ConfigError(f"{np.shape(stack)[0]} members but weights {self.weights}; expected one weight each")
        return np.clip(weighted_mean(stack, self.weights), 0.0, 1.0)

    def to_config(self) -> dict[str, Any]:
        """The fitted state as config.json records it (the meta-learner itself is a file beside it)."""
        record: dict[str, Any] = {"method": self.method, "fitted_on": "val"}
        if self.stacked is None:
            record["weights"] = [float(weight) for weight in np.asarray(self.weights)]
            return record
        return {
            **record,
            "meta_learner": self.meta_learner,
            "meta_learner_file": META_LEARNER,
            "meta_learner_params": learner_params(str(self.meta_learner), self.seed),
            "meta_learner_fallback_classes": list(self.stacked["fallback"]),
        }

    def save(self, run_dir: RunDir) -> None:
        """Write the meta-learner file of a stacking combination (nothing for the averages)."""
        if self.stacked is not None:
            save_stacking(self.stacked, run_dir.meta_learner_path)


def fit_combination(options: EnsembleOptions, val_stack: np.ndarray, val_targets: np.ndarray, task: str) -> Combination:
    """The combination `options` ask for, fitted on validation predictions (members, samples, classes) and
    validation targets (samples, classes; NaN = masked) only."""
    members = np.shape(val_stack)[0]
    if options.method == "mean":
        return Combination("mean", weights=uniform_weights(members))
    if options.method == "weighted":
        return Combination("weighted", weights=fit_weights(val_stack, val_targets, task))
    stacked = fit_stacking(options.meta_learner, val_stack, val_targets, task, options.seed)
    return Combination("stacking", stacked=stacked, meta_learner=options.meta_learner, seed=options.seed)


def load_combination(run_dir: RunDir, config: dict[str, Any], members: int, classes: int) -> Combination:
    """The combination an ensemble's config.json (and meta-learner file) record; ConfigError naming what is off."""
    method = config.get("method")
    where = run_dir.config_path
    if method in ("mean", "weighted"):
        weights = config.get("weights")
        if not isinstance(weights, list) or len(weights) != members:
            raise ConfigError(f"{where}: 'weights' {str(weights)[:100]}; expected one number per member ({members})")
        return Combination(method, weights=np.asarray(weights, dtype=np.float64))
    if method == "stacking":
        name = config.get("meta_learner")
        stacked = load_stacking(run_dir / str(config.get("meta_learner_file", META_LEARNER)), classes)
        return Combination("stacking", stacked=stacked, meta_learner=name, seed=int(config.get("seed", 0)))
    raise ConfigError(f"{where}: method {str(method)[:40]!r}; expected mean, weighted or stacking")

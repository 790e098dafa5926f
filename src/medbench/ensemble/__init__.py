"""Ensembles of saved runs, fitted on validation only and recorded like runs.

- `options`: `EnsembleOptions`, `TTAOptions` and the names of methods, meta-learners and aggregates;
- `aggregate`: AUCMEDI's aggregate functions (mean, median, vote, softmax, global argmax) in NumPy;
- `tta`: test-time augmentation (`predict_augmenting`) with the training pipeline's host augmentation;
- `members`: which runs may be combined, and their predictions lined up by sample id;
- `weights`, `stacking`, `combination`: weighted averaging and scikit-learn meta-learners, fitted on the
  validation split (the test labels never reach them);
- `record`, `build`: the ensemble's folder, config.json, result.json and log entry (`build_ensemble`);
- `bagging`: k members on patient-grouped folds of the training split (`train_bagging`);
- `reevaluate`: an ensemble re-scored from its members' models; `arguments`: `medbench ensemble`.

Importing the package is light: the names below load their module (and TensorFlow where needed) on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from medbench.ensemble.options import AGGREGATES, ENSEMBLE_KIND, META_LEARNERS, METHODS, EnsembleOptions, TTAOptions

_LAZY = {
    "predict_augmenting": "medbench.ensemble.tta",
    "model_predictions": "medbench.ensemble.tta",
    "fit_weights": "medbench.ensemble.weights",
    "fit_stacking": "medbench.ensemble.stacking",
    "Combination": "medbench.ensemble.combination",
    "fit_combination": "medbench.ensemble.combination",
    "build_ensemble": "medbench.ensemble.build",
    "bagging_specs": "medbench.ensemble.bagging",
    "train_bagging": "medbench.ensemble.bagging",
    "reevaluate_ensemble": "medbench.ensemble.reevaluate",
    "reevaluate_all": "medbench.ensemble.reevaluate",
}

__all__ = ["AGGREGATES", "ENSEMBLE_KIND", "META_LEARNERS", "METHODS", "EnsembleOptions", "TTAOptions", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medbench.ensemble' has no attribute {name!r}")

"""Stacking: a scikit-learn meta-learner over the members' predictions, fitted on the validation split only.

The features of an image are every member's predictions of every class (members × classes numbers).
Multi-label and binary data get one learner per class, each fitted on the images labelled for that
class (masked labels are left out per class, which a single multi-output learner could not do);
multi-class data gets one multinomial learner over the labelled images. A class whose validation labels
hold one value only cannot be learned: it falls back to the members' mean for that class, and the
stacked model records which classes did.

The fitted model is a plain dict of scikit-learn estimators and settings, saved with joblib (load
only files you wrote: unpickling runs code).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from medbench.atomic import write_bytes_atomic
from medbench.ensemble.options import META_LEARNERS
from medbench.errors import ConfigError

logger = logging.getLogger(__name__)

FORMAT = 1
"""Version of the saved stacked model's layout."""


def make_learner(name: str, seed: int) -> Any:
    """A fresh scikit-learn classifier for `name`, one of `META_LEARNERS`, seeded where it draws."""
    if name == "logreg":
        return LogisticRegression(max_iter=1000)
    if name == "forest":
        return RandomForestClassifier(n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1)
    if name == "boosting":
        return GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed)
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=2000, random_state=seed)
    raise ConfigError(f"meta-learner {name!r}: expected one of {', '.join(META_LEARNERS)}")


def learner_params(name: str, seed: int) -> dict[str, Any]:
    """The meta-learner's parameters as config.json records them (JSON values; others as their text)."""
    params = make_learner(name, seed).get_params()
    return {key: value if _is_json(value) else str(value) for key, value in sorted(params.items())}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def features(stack: np.ndarray) -> np.ndarray:
    """(samples, members × classes): each image's predictions by every member, member after member."""
    stack = np.asarray(stack, dtype=np.float64)
    members, samples, classes = stack.shape
    return stack.transpose(1, 0, 2).reshape(samples, members * classes)


def fit_stacking(name: str, stack: np.ndarray, targets: np.ndarray, task: str, seed: int = 0) -> dict[str, Any]:
    """The stacked model of `name` fitted on validation predictions `stack` (members, samples, classes) and
    `targets` (samples, classes; NaN = masked). See the module for what is fitted per task."""
    stack, targets = np.asarray(stack, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    inputs, classes = features(stack), stack.shape[2]
    learners: list[Any] = []
    if task == "multiclass":
        labelled = ~np.isnan(targets).any(axis=1)
        truth = targets[labelled].argmax(axis=1)
        learners.append(_fit(name, seed, inputs[labelled], truth, "every class"))
    else:
        for column in range(classes):
            labelled = ~np.isnan(targets[:, column])
            learners.append(_fit(name, seed, inputs[labelled], targets[labelled, column], f"class {column}"))
    fallback = [index for index, learner in enumerate(learners) if learner is None]
    return {
        "format": FORMAT,
        "meta_learner": name,
        "task": task,
        "classes": classes,
        "learners": learners,
        "fallback": fallback,
    }


def _fit(name: str, seed: int, inputs: np.ndarray, truth: np.ndarray, what: str) -> Any | None:
    """A learner fitted on (inputs, truth), or None when the labels hold fewer than two values."""
    if len(np.unique(truth)) < 2:
        logger.warning("stacking: the validation labels of %s hold one value only; it takes the members' mean", what)
        return None
    return make_learner(name, seed).fit(inputs, truth.astype(np.int64))


def predict_stacking(model: dict[str, Any], stack: np.ndarray) -> np.ndarray:
    """Predictions (samples, classes) of a fitted stacked model on member predictions (members, samples, classes)."""
    stack = np.asarray(stack, dtype=np.float64)
    if stack.shape[2] != model["classes"]:
        raise ConfigError(
            f"member predictions of {stack.shape[2]} classes; the meta-learner expects {model['classes']}"
        )
    inputs, mean = features(stack), stack.mean(axis=0)
    if model["task"] == "multiclass":
        learner = model["learners"][0]
        if learner is None:
            return mean
        result = np.zeros_like(mean)
        result[:, learner.classes_.astype(np.int64)] = learner.predict_proba(inputs)
        return result
    result = mean.copy()
    for column, learner in enumerate(model["learners"]):
        if learner is not None:
            result[:, column] = learner.predict_proba(inputs)[:, list(learner.classes_).index(1)]
    return result


def save_stacking(model: dict[str, Any], path: Path) -> None:
    """Write the stacked model with joblib, atomically."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_stacking(path: Path, classes: int) -> dict[str, Any]:
    """The stacked model saved at `path`; ConfigError naming the file when it is missing or not one."""
    try:
        model = joblib.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; expected the stacking ensemble's fitted meta-learner") from None
    except Exception as error:  # joblib/pickle raise many types for a damaged file
        raise ConfigError(
            f"{path}: cannot be loaded ({type(error).__name__}: {str(error)[:200]}); expected the meta-learner "
            "medbench saved with joblib"
        ) from None
    keys = {"format", "meta_learner", "task", "classes", "learners", "fallback"}
    if (
        not isinstance(model, dict)
        or not keys <= set(model)
        or model["format"] != FORMAT
        or model["classes"] != classes
    ):
        raise ConfigError(f"{path}: not a stacked model of {classes} classes in format {FORMAT} written by medbench")
    return model

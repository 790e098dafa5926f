"""The YAML search space of `medbench search`: a base benchmark, the fields to search and how.

::

    study: demo-lr                       # the study's name (default: the file's stem)
    architecture: 2D.SmallCNN            # or a list: searched like any field
    base: {dataset: demo, epochs: 4, n_classes: 5, image_size: 32, split: [80, 20]}
    options: {max_train_samples: 300}    # ExperimentOptions of every trial
    space:
      learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}   # a range: float, or int when both ends are
      batch_size: [16, 32]                                   # a list: one of these values
      augmentations: [[], [affine], [affine, color]]
      options.fcl: [false, true]                             # an ExperimentOptions field
    trials: 12                           # finished (complete or pruned) trials the study runs to
    sampler: {name: tpe, seed: 0}        # tpe | random
    pruner: {name: median, startup_trials: 2, warmup_epochs: 1}   # median | none
    folds: 3                             # optional: patient-grouped k-fold cross-validation

Every field of `Benchmark` and `ExperimentOptions` may be searched (the loss, learning rate, batch size,
augmentations, transformations, uncertainty policy, image size, …); a name that is neither is an error
naming it. The objective is the validation mean AUROC, never a test figure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.vocabulary import BAGGING_FOLDS
from medbench.benchmark.yaml_text import load_yaml
from medbench.errors import ConfigError, shown

__all__ = ["Choice", "Range", "SearchSpace", "load_search_space"]

OPTION_PREFIX = "options."
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
_KEYS = {"study", "architecture", "base", "options", "space", "trials", "sampler", "pruner", "folds"}


@dataclass(frozen=True)
class Choice:
    """One of `values` (YAML scalars or lists); Optuna sees each as its JSON text."""

    values: tuple[Any, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(json.dumps(value) for value in self.values)

    def value_of(self, label: str) -> Any:
        return self.values[self.labels.index(label)]


@dataclass(frozen=True)
class Range:
    """A number in [low, high]: int when both ends are whole numbers, float otherwise; `log` spaced."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    @property
    def integer(self) -> bool:
        return all(isinstance(value, int) and not isinstance(value, bool) for value in (self.low, self.high))


@dataclass(frozen=True)
class SearchSpace:
    """A study: what every trial shares and what it searches."""

    study: str
    base: dict[str, Any]
    parameters: dict[str, Choice | Range]
    architecture: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    trials: int = 10
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe", "seed": 0})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median", "startup_trials": 2, "warmup_epochs": 1})
    folds: int | None = None

    def trial_fields(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
        """(Benchmark fields, architecture, ExperimentOptions fields) of a trial with the searched `values`."""
        benchmark, options, architecture = dict(self.base), dict(self.options), self.architecture
        for name, value in values.items():
            if name == "architecture":
                architecture = value
            elif name.startswith(OPTION_PREFIX):
                options[name.removeprefix(OPTION_PREFIX)] = value
            else:
                benchmark[name] = value
        for key, value in list(benchmark.items()):
            if isinstance(value, list):
                benchmark[key] = tuple(value)
        return benchmark, architecture, options


def _parameter(name: str, spec: Any, where: str) -> Choice | Range:
    benchmark_fields = {item.name for item in fields(Benchmark)} - {"dataset"}
    option_fields = set(ExperimentOptions.keys())
    known = (
        name == "architecture"
        or name in benchmark_fields
        or (name.startswith(OPTION_PREFIX) and name.removeprefix(OPTION_PREFIX) in option_fields)
    )
    if not known:
        raise ConfigError(
            f"{where}: unknown search field {name!r}; expected a Benchmark field "
            f"({', '.join(sorted(benchmark_fields))}), architecture, or options.<key> with a key of "
            f"{', '.join(ExperimentOptions.keys())}"
        )
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: {name}: expected at least one value to choose from")
        return Choice(tuple(spec))
    if isinstance(spec, dict) and {"low", "high"} <= set(spec) and set(spec) <= {"low", "high", "log", "step"}:
        low, high = spec["low"], spec["high"]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
        if not numbers or not low < high:
            raise ConfigError(f"{where}: {name}: low {shown(low)} and high {shown(high)}: expected numbers low < high")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError(f"{where}: {name}: a log range needs low > 0, got {low}")
        return Range(low, high, log, spec.get("step"))
    raise ConfigError(f"{where}: {name}: expected a list of values or {{low, high[, log][, step]}}, got {shown(spec)}")


def _named(spec: Any, allowed: tuple[str, ...], what: str, where: str) -> dict[str, Any]:
    chosen = {"name": spec} if isinstance(spec, str) else dict(spec or {})
    if chosen.get("name") not in allowed:
        raise ConfigError(f"{where}: {what} {shown(chosen.get('name'))}: expected one of {', '.join(allowed)}")
    return chosen


def load_search_space(path: str | Path) -> SearchSpace:
    """A search-space YAML file, checked whole (unknown keys, fields and malformed ranges are errors)."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the search space ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with base: and space:, got {shown(data)}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; expected {', '.join(sorted(_KEYS))}")
    if not isinstance(data.get("base"), dict) or not isinstance(data.get("space"), dict) or not data["space"]:
        raise ConfigError(f"{path}: expected base: (Benchmark fields) and space: (the fields to search)")
    parameters = {str(name): _parameter(str(name), spec, str(path)) for name, spec in data["space"].items()}
    trials = data.get("trials", 10)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{path}: trials {shown(trials)}: expected a whole number of at least 1")
    folds = data.get("folds")
    if folds is not None and (
        isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= BAGGING_FOLDS.high
    ):
        raise ConfigError(f"{path}: folds {shown(folds)}: expected a whole number of folds in {BAGGING_FOLDS}")
    options = dict(data.get("options") or {})
    ExperimentOptions.from_dict(options)
    study = str(data.get("study") or path.stem)
    return SearchSpace(
        study=study,
        base=dict(data["base"]),
        parameters=parameters,
        architecture=data.get("architecture") if isinstance(data.get("architecture"), str) else None,
        options=options,
        trials=trials,
        sampler=_named(data.get("sampler", {"name": "tpe", "seed": 0}), SAMPLERS, "sampler", str(path)),
        pruner=_named(data.get("pruner", {"name": "median"}), PRUNERS, "pruner", str(path)),
        folds=folds,
    )

"""ExperimentOptions: the choices of a run that a benchmark name cannot carry, stored in each run's config.json.

Every field is checked when the options are made (type and range from the vocabulary), so a batch
file's ``options:`` or a ``--option key=value`` fails at load time naming the key, never mid-run.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

from medbench.benchmark.vocabulary import (
    BAGGING_FOLDS,
    FCL_WIDTH,
    LR_SCHEDULES,
    MIXED_PRECISION_POLICIES,
    PATIENCE,
    STRATEGIES,
    TRAIN_SAMPLES,
    UNMENTIONED_POLICIES,
    UPSAMPLE_FACTOR,
)
from medbench.benchmark.yaml_text import load_yaml
from medbench.errors import ConfigError, MedbenchError

_NONE_WORDS = frozenset({"none", "null", "~", ""})


@dataclass(frozen=True)
class ExperimentOptions:
    """Choices beyond the Benchmark's name; stored in each run's config.json.

    Attributes:
        weights: None (random init), "imagenet" (local Keras file) or a weights file path.
        fcl: add the Dense(512) + Dropout block to the head.
        fcl_units: the widths of that block's dense layers, each followed by Dropout (needs `fcl`; None = one
            Dense(512)); TIML's ``-fc2k`` heads are ``[2048, 2048]``.
        unmentioned: what a blank label becomes: "zero" or "mask".
        frontal_only: keep frontal views only.
        lr_schedule: "plateau" (multiply the LR by the benchmark's factor when val mean AUROC stalls)
            or "epoch" (multiply it after every epoch).
        plateau_patience: epochs without improvement before a plateau decay.
        early_stopping_patience: stop after this many epochs without improvement (None = never).
        upsample_factors: per-class factors for upsampled benchmarks (None = lift rare classes
            toward the median positive count).
        class_weight_fallback: a class without positives gets weight 1.0 instead of an error.
        max_train_samples: cap on training samples (quick runs); None = all.
        tensorboard: write TensorBoard event files.
        skip_unreadable: train and evaluate without images that cannot be read (listed in
            config.json) instead of stopping with the list of them.
        strategy: "default" (one device), "mirrored" (all GPUs of one host) or "multiworker"
            (several hosts described by TF_CONFIG).
        mixed_precision: None, "mixed_float16" or "mixed_bfloat16" (the output layer stays float32).
        jit_compile: compile the train step with XLA.
        metadata: label-table columns fed to the head's metadata block next to the image features
            (``[age, sex, frontal]``; `medbench.data.metadata`), standardized with training-split
            statistics; None = images only.
        bagging_fold: ``"i/k"`` makes the run a bagging member: it trains on the training split's patients
            outside fold i (from 0) of k patient-grouped folds (`medbench.data.splits.leave_fold_out`, seeded by
            the benchmark's seed); validation and test stay the benchmark's. None = the whole training split.
        cv_fold: ``"i/k"`` makes the run fold i of a patient-grouped k-fold cross-validation: the benchmark's
            training and validation patients are cut into k folds (seeded by the benchmark's seed), fold i
            validates and the others train; test stays the benchmark's.
        tags: labels that travel with the run into config.json and its log entry (``medbench search`` writes
            ``{"study": ..., "trial": ...}``); they do not change what is trained.
    """

    weights: str | None = None
    fcl: bool = False
    fcl_units: tuple[int, ...] | None = None
    unmentioned: str = "zero"
    frontal_only: bool = False
    lr_schedule: str = "plateau"
    plateau_patience: int = 1
    early_stopping_patience: int | None = None
    upsample_factors: dict[str, int] | None = None
    class_weight_fallback: bool = False
    max_train_samples: int | None = None
    tensorboard: bool = True
    skip_unreadable: bool = False
    strategy: str = "default"
    mixed_precision: str | None = None
    jit_compile: bool = False
    metadata: tuple[str, ...] | None = None
    bagging_fold: str | None = None
    cv_fold: str | None = None
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        for key in ("metadata", "fcl_units"):
            if isinstance(getattr(self, key), list):
                object.__setattr__(self, key, tuple(getattr(self, key)))
        hints = typing.get_type_hints(type(self))
        for item in fields(self):
            _check_type(item.name, getattr(self, item.name), hints[item.name])
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("strategy", self.strategy, STRATEGIES)
        _one_of("unmentioned", self.unmentioned, UNMENTIONED_POLICIES)
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise ConfigError(
                f"mixed_precision {self.mixed_precision!r}: expected none or one of "
                f"{', '.join(MIXED_PRECISION_POLICIES)}"
            )
        for key, allowed in (
            ("plateau_patience", PATIENCE),
            ("early_stopping_patience", PATIENCE),
            ("max_train_samples", TRAIN_SAMPLES),
        ):
            value = getattr(self, key)
            if value is not None and not allowed.low <= value <= allowed.high:
                raise ConfigError(f"{key} {value!r}: expected a whole number in {allowed}")
        if self.metadata is not None and (not self.metadata or len(set(self.metadata)) != len(self.metadata)):
            raise ConfigError(f"metadata {list(self.metadata)!r}: expected one or more distinct label-table columns")
        if self.bagging_fold is not None:
            fold_of(self.bagging_fold)
        if self.cv_fold is not None:
            fold_of(self.cv_fold, "cv_fold")
            if self.bagging_fold is not None:
                raise ConfigError(
                    "bagging_fold and cv_fold: expected at most one of them (both cut the training split)"
                )
        if self.fcl_units is not None and (
            not self.fcl
            or not self.fcl_units
            or not all(FCL_WIDTH.low <= units <= FCL_WIDTH.high for units in self.fcl_units)
        ):
            raise ConfigError(
                f"fcl_units {list(self.fcl_units)!r}: expected fcl true and one or more layer widths in {FCL_WIDTH}"
            )
        for name, factor in (self.upsample_factors or {}).items():
            if not UPSAMPLE_FACTOR.low <= factor <= UPSAMPLE_FACTOR.high:
                raise ConfigError(
                    f"upsample_factors[{name!r}] {factor!r}: expected a whole number in {UPSAMPLE_FACTOR}"
                )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names, as batch files and `--option` spell them."""
        return tuple(item.name for item in fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExperimentOptions:
        """Options from a mapping (a batch file's ``options:``, a config.json); unknown keys are an error."""
        data = dict(data or {})
        unknown = set(data) - set(cls.keys())
        if unknown:
            raise ConfigError(f"unknown experiment options {sorted(unknown)}; valid: {sorted(cls.keys())}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> ExperimentOptions:
        return ExperimentOptions.from_dict({**self.to_dict(), **changes})


def fold_of(text: str, key: str = "bagging_fold") -> tuple[int, int]:
    """``"i/k"`` (a `bagging_fold` or `cv_fold`) → (i, k) with 0 <= i < k and k in `BAGGING_FOLDS`; ConfigError
    otherwise."""
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"{key} {text!r}: expected i/k with whole numbers, e.g. 0/5 (folds from 0)") from None
    if not BAGGING_FOLDS.low <= count <= BAGGING_FOLDS.high or not 0 <= index < count:
        raise ConfigError(f"{key} {text!r}: expected i/k with k in {BAGGING_FOLDS} folds and 0 <= i < k (folds from 0)")
    return index, count


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` (the CLI's ``--option``) → (key, value), the value read as YAML like a batch file's.

    ``none``/``null`` mean None; the value's type is checked when the options are made.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--option {text!r}: expected key=value, e.g. max_train_samples=400")
    if key not in ExperimentOptions.keys():
        raise ConfigError(f"--option {text!r}: unknown option {key!r}; valid: {', '.join(ExperimentOptions.keys())}")
    if raw.strip().lower() in _NONE_WORDS:
        return key, None
    return key, load_yaml(raw, f"--option {text[:200]!r}")


def option_argument(text: str) -> tuple[str, Any]:
    """argparse type of ``--option KEY=VALUE``: a known ExperimentOptions key with a value of its type."""
    import argparse

    try:
        key, value = parse_assignment(text)
        ExperimentOptions.from_dict({key: value})
    except MedbenchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return key, value


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} {value!r}: expected one of {', '.join(allowed)}")


def _check_type(key: str, value: Any, hint: Any) -> None:
    """Refuse a value that does not have the field's declared type (bool is not an int here)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return
        origin = typing.get_origin(kind) or kind
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if origin is dict and isinstance(value, dict):
            item_type = typing.get_args(kind)[1]
            if all(isinstance(k, str) and _is_a(v, item_type) for k, v in value.items()):
                return
        elif origin is tuple and isinstance(value, tuple):
            item_type = typing.get_args(kind)[0]
            if item_type is str and all(isinstance(item, str) and item for item in value):
                return
            if item_type is int and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                return
        elif origin in (bool, str) and isinstance(value, origin):
            return
    expected = " or ".join(_type_text(kind) for kind in allowed)
    raise ConfigError(f"{key} {value!r}: expected {expected}")


def _is_a(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _type_text(kind: Any) -> str:
    if kind is type(None):
        return "none"
    if typing.get_origin(kind) is tuple:
        return "a list of column names" if typing.get_args(kind)[0] is str else "a list of whole numbers"
    if typing.get_origin(kind) is dict:
        return "a mapping of names to " + ("whole numbers" if typing.get_args(kind)[1] is int else "text")
    return getattr(kind, "__name__", str(kind))

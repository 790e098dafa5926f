"""What an ensemble is asked to be: the combination method, its meta-learner and test-time augmentation.

No TensorFlow and no scikit-learn here: the command line builds its choices from these names, and
`medbench --help` must stay light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from medbench.benchmark.vocabulary import AUGMENTATIONS, SEED, IntRange
from medbench.errors import ConfigError

ENSEMBLE_KIND = "ensemble"
"""The ``kind`` an ensemble's config.json and log entry carry (a training run has none)."""
METHODS: tuple[str, ...] = ("mean", "weighted", "stacking")
"""How member predictions are combined: plain mean, weighted mean (weights fitted on validation), stacking."""
META_LEARNERS: tuple[str, ...] = ("logreg", "forest", "boosting", "mlp")
"""Stacking's meta-learners (scikit-learn): logistic regression, random forest, gradient boosting, MLP."""
AGGREGATES: tuple[str, ...] = ("mean", "median", "vote", "softmax", "argmax")
"""How the test-time augmented predictions of one model become one (AUCMEDI's aggregate functions)."""
TTA_CYCLES = IntRange(1, 1000)
"""Augmented predictions per image that test-time augmentation may ask for."""


def _one_of(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} {value!r}: expected one of {', '.join(allowed)}")


def _whole(key: str, value: object, allowed: IntRange) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not allowed.low <= value <= allowed.high:
        raise ConfigError(f"{key} {value!r}: expected a whole number in {allowed}")


@dataclass(frozen=True)
class TTAOptions:
    """Test-time augmentation of each member: `n_cycles` seeded augmented predictions, then `aggregate`.

    Attributes:
        n_cycles: augmented predictions per image (AUCMEDI's ``n_cycles``).
        aggregate: one of `AGGREGATES` (`medbench.ensemble.aggregate`).
        augmentations: the host augmentations of the training pipeline to apply ("affine", "color");
            None = the member's benchmark's own, or all of them when it trains without any; () = none.
        seed: seed of the augmentation draws (cycle c, batch b draws from (seed, c, b)).
    """

    n_cycles: int = 10
    aggregate: str = "mean"
    augmentations: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.augmentations, list):
            object.__setattr__(self, "augmentations", tuple(self.augmentations))
        _whole("tta n_cycles", self.n_cycles, TTA_CYCLES)
        _one_of("tta aggregate", self.aggregate, AGGREGATES)
        _whole("tta seed", self.seed, SEED)
        for name in self.augmentations or ():
            _one_of("tta augmentation", name, AUGMENTATIONS)

    def augmentations_for(self, benchmark_augmentations: tuple[str, ...]) -> tuple[str, ...]:
        """The augmentations one member gets (see `augmentations`)."""
        if self.augmentations is not None:
            return self.augmentations
        return tuple(benchmark_augmentations) or AUGMENTATIONS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augmentations"] = list(self.augmentations) if self.augmentations is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TTAOptions:
        """Options from a config.json's ``tta`` (unknown keys are an error)."""
        known = {item.name for item in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ConfigError(f"tta {str(data)[:200]}: expected an object with keys {', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class EnsembleOptions:
    """How members are combined; everything fitted is fitted on the validation split only.

    Attributes:
        method: one of `METHODS`.
        meta_learner: stacking's learner, one of `META_LEARNERS` (ignored by the averages).
        tta: test-time augmentation of each member (its predictions then come from its model, not its
            stored predictions); None = the members' stored predictions.
        seed: random state of the meta-learner.
    """

    method: str = "mean"
    meta_learner: str = "logreg"
    tta: TTAOptions | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _one_of("ensemble method", self.method, METHODS)
        _one_of("meta-learner", self.meta_learner, META_LEARNERS)
        _whole("ensemble seed", self.seed, SEED)
        if self.tta is not None and not isinstance(self.tta, TTAOptions):
            raise ConfigError(f"tta {self.tta!r}: expected TTAOptions or None")

    @property
    def label(self) -> str:
        """The method as the ensemble's experiment folder names it: ``mean``, ``weighted``, ``stacking-forest``."""
        return f"stacking-{self.meta_learner}" if self.method == "stacking" else self.method

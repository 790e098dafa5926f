"""Per-class loss weights from the training labels, ignoring masked (NaN) targets.

Balanced weights make each class's positives and negatives contribute equally to the loss:

    w_pos = (n_pos + n_neg) / (2 n_pos),    w_neg = (n_pos + n_neg) / (2 n_neg)

so a class with 10 % positives gets ``w_pos = 5`` and ``w_neg ≈ 0.56``. They feed the
class-weighted loss (CWBCE); the weighted loss (WBCE) uses the ratio ``n_neg / n_pos`` instead.
One class per image (WCCE) takes scikit-learn's "balanced" weights ``w_c = n / (C n_c)`` instead.
Counts only ever come from the TRAINING split: weights derived from validation or test labels
leak them into training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from medbench.benchmark.vocabulary import WEIGHTED_LOSSES
from medbench.errors import ConfigError, LabelPolicyError

__all__ = [
    "L1_NORM_SCALE",
    "ClassWeights",
    "compute_class_weights",
    "compute_multiclass_weights",
    "loss_class_weights",
    "positive_weight_ratio",
]

logger = logging.getLogger(__name__)

L1_NORM_SCALE = 10.0
"""With ``l1_normed=True`` each weight vector is scaled to this L1 norm (the original project's choice)."""

OnMissing = Literal["error", "fallback"]
_ON_MISSING: tuple[str, ...] = ("error", "fallback")


@dataclass(frozen=True, eq=False)
class ClassWeights:
    """Positive and negative loss weights per class, with the label counts they came from.

    ``fallback_classes`` lists the classes that lacked positives or negatives and were given
    weight 1.0 (only with ``on_missing="fallback"``). The arrays are read-only copies.
    """

    classes: tuple[str, ...]
    positive: np.ndarray
    negative: np.ndarray
    n_pos: np.ndarray
    n_neg: np.ndarray
    l1_normed: bool = False
    fallback_classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "fallback_classes", tuple(self.fallback_classes))
        dtypes = {"positive": np.float64, "negative": np.float64, "n_pos": np.int64, "n_neg": np.int64}
        for name, dtype in dtypes.items():
            array = np.array(getattr(self, name), dtype=dtype)
            if array.shape != (len(classes),):
                raise ConfigError(
                    f"ClassWeights.{name} has shape {array.shape}; expected one value per class ({len(classes)},)"
                )
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        unknown = sorted(set(self.fallback_classes) - set(classes))
        if unknown:
            raise ConfigError(f"fallback classes {unknown} are not among the classes {list(classes)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassWeights):
            return NotImplemented
        return (
            self.classes == other.classes
            and self.l1_normed == other.l1_normed
            and self.fallback_classes == other.fallback_classes
            and all(
                np.array_equal(getattr(self, name), getattr(other, name))
                for name in ("positive", "negative", "n_pos", "n_neg")
            )
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def positive_ratio(self) -> np.ndarray:
        """``n_neg / n_pos`` per class (1.0 for fallback classes): the WBCE positive weight."""
        return _ratio(self.n_pos, self.n_neg)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, keyed by class name."""
        return {
            "l1_normed": self.l1_normed,
            "fallback_classes": list(self.fallback_classes),
            "per_class": {
                name: {
                    "positive": float(self.positive[j]),
                    "negative": float(self.negative[j]),
                    "n_pos": int(self.n_pos[j]),
                    "n_neg": int(self.n_neg[j]),
                }
                for j, name in enumerate(self.classes)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassWeights:
        """Inverse of :meth:`to_dict`."""
        try:
            per_class = data["per_class"]
            rows = list(per_class.values())
            return cls(
                classes=tuple(per_class),
                positive=np.array([r["positive"] for r in rows], dtype=np.float64),
                negative=np.array([r["negative"] for r in rows], dtype=np.float64),
                n_pos=np.array([r["n_pos"] for r in rows], dtype=np.int64),
                n_neg=np.array([r["n_neg"] for r in rows], dtype=np.int64),
                l1_normed=bool(data.get("l1_normed", False)),
                fallback_classes=tuple(data.get("fallback_classes", ())),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"class weights dict lacks {exc}; expected the layout written by to_dict()") from exc


def compute_class_weights(
    labels: ArrayLike,
    classes: Sequence[str],
    *,
    l1_normed: bool = False,
    on_missing: OnMissing = "error",
) -> ClassWeights:
    """Balanced positive/negative weights per class from TRAINING ``labels`` (NaN entries ignored).

    ``labels`` is an ``(n, c)`` array of 1.0/0.0/NaN in the order of ``classes``, or a label table
    (DataFrame) from which the ``classes`` columns are taken.

    ``l1_normed=True`` reproduces the original project's optional normalisation: the positive
    and the negative weight vector are each divided by their own L1 norm and multiplied by
    :data:`L1_NORM_SCALE` (10), so each sums to 10 over the classes. This keeps the overall
    loss scale independent of how rare the rarest class is, at the cost of the per-class balance
    (``w_pos`` and ``w_neg`` of a class are no longer inverse to its label frequencies).

    A class without positives or without negatives has no balanced weight.
    ``on_missing="error"`` raises :class:`LabelPolicyError` naming every such class and its
    counts. ``on_missing="fallback"`` gives that class weight 1.0 for both labels (plain BCE for
    it), records it in ``ClassWeights.fallback_classes`` and logs a warning; with
    ``l1_normed=True`` these 1.0 weights are normalised along with the others.
    """
    names, n_pos, n_neg = _count_labels(labels, classes)
    missing = _missing_classes(names, n_pos, n_neg, on_missing, purpose="class weights")
    total = n_pos + n_neg
    positive = _safe_divide(total, 2 * n_pos, missing)
    negative = _safe_divide(total, 2 * n_neg, missing)
    if l1_normed:
        positive = positive / np.abs(positive).sum() * L1_NORM_SCALE
        negative = negative / np.abs(negative).sum() * L1_NORM_SCALE
    return ClassWeights(
        classes=names,
        positive=positive,
        negative=negative,
        n_pos=n_pos,
        n_neg=n_neg,
        l1_normed=l1_normed,
        fallback_classes=tuple(name for name, m in zip(names, missing) if m),
    )


def compute_multiclass_weights(
    labels: ArrayLike,
    classes: Sequence[str],
    *,
    l1_normed: bool = False,
    on_missing: OnMissing = "error",
) -> ClassWeights:
    """Balanced weights of one-class-per-image TRAINING ``labels`` (one-hot rows; NaN rows ignored).

    ``positive[c] = n / (C n_c)``, scikit-learn's ``compute_class_weight("balanced")``, so every class
    contributes as much to the categorical cross-entropy as if the classes were equally frequent;
    ``negative`` is 1 (that loss has no negative term). ``l1_normed`` and a class without training
    images (``on_missing``) are handled as in :func:`compute_class_weights`.
    """
    names, n_pos, n_neg = _count_labels(labels, classes)
    missing = _missing_classes(names, n_pos, n_neg, on_missing, purpose="class weights")
    labelled = float(n_pos.sum())
    positive = _safe_divide(np.full(len(names), labelled), len(names) * n_pos.astype(np.float64), missing)
    if l1_normed:
        positive = positive / np.abs(positive).sum() * L1_NORM_SCALE
    return ClassWeights(
        classes=names,
        positive=positive,
        negative=np.ones(len(names)),
        n_pos=n_pos,
        n_neg=n_neg,
        l1_normed=l1_normed,
        fallback_classes=tuple(name for name, m in zip(names, missing) if m),
    )


def loss_class_weights(
    loss: str, task: str, labels: ArrayLike, classes: Sequence[str], *, l1_normed: bool, on_missing: OnMissing
) -> ClassWeights | None:
    """The class weights loss token `loss` takes for `task` from the TRAINING labels, or None if it takes none."""
    if loss not in WEIGHTED_LOSSES:
        return None
    compute = compute_multiclass_weights if task == "multiclass" else compute_class_weights
    return compute(labels, classes, l1_normed=l1_normed, on_missing=on_missing)


def positive_weight_ratio(
    labels: ArrayLike,
    classes: Sequence[str] | None = None,
    *,
    on_missing: OnMissing = "error",
) -> np.ndarray:
    """``n_neg / n_pos`` per class from TRAINING ``labels`` (NaN ignored): the WBCE positive weight.

    ``classes`` names the columns for error messages (and selects them from a label table);
    a class without positives or negatives is handled as in :func:`compute_class_weights`
    (ratio 1.0 under ``on_missing="fallback"``).
    """
    if classes is None:
        columns = getattr(labels, "columns", None)
        classes = [str(c) for c in columns] if columns is not None else None
    if classes is None:
        width = np.shape(labels)[-1] if np.ndim(labels) == 2 else 0
        classes = [f"column {j}" for j in range(width)]
    names, n_pos, n_neg = _count_labels(labels, classes)
    _missing_classes(names, n_pos, n_neg, on_missing, purpose="positive weight ratios")
    return _ratio(n_pos, n_neg)


def _count_labels(labels: ArrayLike, classes: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Validated class names and the positive/negative counts per class."""
    if isinstance(classes, str):
        raise ConfigError(f"classes is the string {classes!r}; expected a sequence of class names")
    names = tuple(classes)
    if not names:
        raise ConfigError("no classes given; expected one name per label column")
    columns = getattr(labels, "columns", None)
    if columns is not None:
        absent = [name for name in names if name not in columns]
        if absent:
            raise LabelPolicyError(f"label table has no columns {absent}; its columns are {list(columns)}")
        labels = labels[list(names)]  # type: ignore[index]
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LabelPolicyError(f"labels cannot be read as floats ({exc}); expected 1.0, 0.0 or NaN") from exc
    if values.ndim != 2 or values.shape[1] != len(names):
        raise LabelPolicyError(
            f"labels have shape {values.shape}; expected (n_samples, {len(names)}) for classes {list(names)}"
        )
    bad = ~(np.isnan(values) | (values == 0.0) | (values == 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise LabelPolicyError(
            f"label of sample {row} (0-based), class {names[col]!r} is {float(values[row, col])}; expected 1.0, 0.0 "
            "or NaN — apply the uncertainty policy before computing class weights"
        )
    n_pos = np.count_nonzero(values == 1.0, axis=0).astype(np.int64)
    n_neg = np.count_nonzero(values == 0.0, axis=0).astype(np.int64)
    return names, n_pos, n_neg


def _missing_classes(
    names: Sequence[str], n_pos: np.ndarray, n_neg: np.ndarray, on_missing: str, *, purpose: str
) -> np.ndarray:
    """Mask of classes lacking a label value; raises or warns according to ``on_missing``."""
    if on_missing not in _ON_MISSING:
        raise ConfigError(f"on_missing={on_missing!r}; expected one of {', '.join(map(repr, _ON_MISSING))}")
    missing = (n_pos == 0) | (n_neg == 0)
    if not missing.any():
        return missing
    described = ", ".join(
        f"{names[j]!r} (n_pos={int(n_pos[j])}, n_neg={int(n_neg[j])})" for j in np.flatnonzero(missing)
    )
    if on_missing == "error":
        raise LabelPolicyError(
            f"cannot compute {purpose}: classes without both positive and negative training labels: "
            f"{described}; expected at least one of each (drop the class, or pass on_missing='fallback' "
            "to use weight 1.0)"
        )
    logger.warning("%s: using weight 1.0 for classes without both labels: %s", purpose, described)
    return missing


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 1.0 where ``fallback`` (never divides by zero)."""
    out = np.ones(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=~fallback)
    return out


def _ratio(n_pos: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """``n_neg / n_pos``, 1.0 for classes lacking positives or negatives."""
    return _safe_divide(n_neg.astype(np.float64), n_pos.astype(np.float64), (n_pos == 0) | (n_neg == 0))

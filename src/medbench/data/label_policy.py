"""Label policy: raw CheXpert-style values (1, 0, -1, blank) → training targets (1, 0, NaN = masked).

The uncertainty policies and the per-class presets (``U75``: 7 classes U-zero, 5 U-one) are defined
here and named in benchmark names; blanks, class weights and upsampling follow the experiment's
options. Pure functions over numpy arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medbench.errors import LabelPolicyError

logger = logging.getLogger(__name__)

POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0
UNCERTAINTY_POLICIES: tuple[str, ...] = ("zeros", "ones", "ignore")
"""What an uncertain label becomes in every class: 0 (U-zeros), 1 (U-ones) or masked (U-ignore)."""
UNMENTIONED_POLICIES: tuple[str, ...] = ("zero", "mask")
"""What a blank (not mentioned) label becomes: a negative, or masked."""


@dataclass(frozen=True)
class UncertaintyPreset:
    """A named per-class mix of U-zeros and U-ones, e.g. ``U75`` = 7 classes U-zero, 5 U-one."""

    token: str
    uzeros: tuple[str, ...]
    uones: tuple[str, ...]

    def __post_init__(self) -> None:
        expected = f"U{len(self.uzeros)}{len(self.uones)}"
        if self.token != expected:
            raise LabelPolicyError(f"preset {self.token!r} lists {expected[1:]} classes; it must be named {expected!r}")
        overlap = set(self.uzeros) & set(self.uones)
        if overlap:
            raise LabelPolicyError(f"preset {self.token!r} puts {sorted(overlap)} in both U-zeros and U-ones")

    @property
    def classes(self) -> tuple[str, ...]:
        return self.uzeros + self.uones


UNCERTAINTY_PRESETS: dict[str, UncertaintyPreset] = {
    preset.token: preset
    for preset in (
        # CheXpert paper (Irvin et al. 2019): U-ones helps Atelectasis and Edema, U-zeros the rest of the five.
        UncertaintyPreset(
            "U32",
            uzeros=("Cardiomegaly", "Consolidation", "Pleural Effusion"),
            uones=("Atelectasis", "Edema"),
        ),
        UncertaintyPreset(
            "U75",
            uzeros=(
                "Enlarged Cardiomediastinum",
                "Cardiomegaly",
                "Lung Opacity",
                "Consolidation",
                "Pneumonia",
                "Pneumothorax",
                "Pleural Effusion",
            ),
            uones=("Lung Lesion", "Edema", "Atelectasis", "Pleural Other", "Fracture"),
        ),
        UncertaintyPreset(
            "U66",
            uzeros=(
                "Cardiomegaly",
                "Lung Opacity",
                "Consolidation",
                "Pneumonia",
                "Pneumothorax",
                "Pleural Effusion",
            ),
            uones=("Enlarged Cardiomediastinum", "Lung Lesion", "Edema", "Atelectasis", "Pleural Other", "Fracture"),
        ),
    )
}


def uncertain_targets(policy: str, classes: Sequence[str]) -> np.ndarray:
    """What an uncertain label becomes, per class: 0.0 (U-zeros), 1.0 (U-ones) or NaN (U-ignore)."""
    if policy == "zeros":
        return np.zeros(len(classes))
    if policy == "ones":
        return np.ones(len(classes))
    if policy == "ignore":
        return np.full(len(classes), np.nan)
    preset = UNCERTAINTY_PRESETS.get(policy)
    if preset is None:
        raise LabelPolicyError(
            f"uncertainty policy {policy!r}: expected zeros, ones, ignore or a preset {', '.join(UNCERTAINTY_PRESETS)}"
        )
    return _preset_targets(preset, classes)


def _preset_targets(preset: UncertaintyPreset, classes: Sequence[str]) -> np.ndarray:
    missing = [name for name in classes if name not in preset.classes]
    extra = [name for name in preset.classes if name not in classes]
    if missing or extra:
        raise LabelPolicyError(
            f"uncertainty preset {preset.token} is defined for the classes {list(preset.classes)}; "
            f"the benchmark's classes differ (not covered: {missing}, not in the label set: {extra})"
        )
    return np.array([1.0 if name in preset.uones else 0.0 for name in classes])


def encode_labels(
    raw: np.ndarray, classes: Sequence[str], uncertainty: str = "zeros", *, unmentioned: str = "zero"
) -> np.ndarray:
    """Turn raw label values into float32 targets with NaN marking masked entries.

    `unmentioned` says what a blank (NaN) becomes: "zero" (the CheXpert convention) or "mask".
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != len(classes):
        raise LabelPolicyError(
            f"labels of shape {raw.shape}: expected (n_samples, {len(classes)}) for classes {list(classes)}"
        )
    if unmentioned not in UNMENTIONED_POLICIES:
        raise LabelPolicyError(f"unmentioned policy {unmentioned!r}: expected one of {', '.join(UNMENTIONED_POLICIES)}")
    known = np.isnan(raw) | np.isin(raw, (POSITIVE, NEGATIVE, UNCERTAIN))
    if not known.all():
        row, col = np.argwhere(~known)[0]
        raise LabelPolicyError(
            f"label {raw[row, col]!r} in sample {row}, class {classes[col]!r}: expected 1.0, 0.0, -1.0 or blank"
        )
    targets = raw.copy()
    uncertain = raw == UNCERTAIN
    targets[uncertain] = np.broadcast_to(uncertain_targets(uncertainty, classes), raw.shape)[uncertain]
    if unmentioned == "zero":
        targets[np.isnan(raw)] = NEGATIVE
    return targets.astype(np.float32)


def label_counts(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: positives, negatives and masked entries."""
    targets = np.asarray(targets, dtype=np.float64)
    return (
        (targets == POSITIVE).sum(axis=0),
        (targets == NEGATIVE).sum(axis=0),
        np.isnan(targets).sum(axis=0),
    )


def default_upsample_factors(targets: np.ndarray, classes: Sequence[str], *, max_factor: int = 4) -> dict[str, int]:
    """Factors that lift rare classes toward the median positive count, capped at `max_factor`."""
    positives = label_counts(targets)[0]
    present = positives[positives > 0]
    if present.size == 0:
        return {name: 1 for name in classes}
    median = float(np.median(present))
    return {
        name: int(min(max_factor, max(1, round(median / count)))) if count > 0 else 1
        for name, count in zip(classes, positives)
    }


def upsample_indices(targets: np.ndarray, classes: Sequence[str], factors: Mapping[str, int]) -> np.ndarray:
    """Row indices with each sample repeated by the LARGEST factor among its positive classes.

    Factors never compound: a sample positive for two upsampled classes appears max(f1, f2) times,
    not f1 * f2 or f1 + f2 (the original's bug inflated multi-finding studies).
    """
    unknown = set(factors) - set(classes)
    if unknown:
        raise LabelPolicyError(
            f"upsampling factors name unknown classes {sorted(unknown)}; classes are {list(classes)}"
        )
    bad = {name: f for name, f in factors.items() if not isinstance(f, (int, np.integer)) or f < 1}
    if bad:
        raise LabelPolicyError(f"upsampling factors {bad}: expected integers >= 1")
    per_class = np.array([factors.get(name, 1) for name in classes], dtype=np.int64)
    positive = np.asarray(targets) == POSITIVE
    repeats = np.where(positive, per_class, 1).max(axis=1, initial=1)
    return np.repeat(np.arange(len(repeats)), repeats)

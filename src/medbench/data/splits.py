"""Patient-level splits: no patient's images end up in two parts (train/validation/test leakage)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from medbench.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

__all__ = ["leave_fold_out", "patient_counts", "split_by_patient"]

_TOLERANCE = 1e-6


def patient_counts(n_patients: int, fractions: Sequence[float]) -> list[int]:
    """How many of `n_patients` each part gets: ``floor(f * n)``, the remainder by largest fraction.

    Ties go to the earlier part, so the result depends only on the arguments. Shares are rounded to
    1e-9 first, so fractions that differ only by float rounding (0.1 written as 1/10 or normalised
    twice) give the same counts.
    """
    fractions = _checked_fractions(fractions)
    exact = [round(fraction * n_patients, 9) for fraction in fractions]
    counts = [math.floor(value) for value in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-round(exact[i] - counts[i], 9), i))
    for i in order[: n_patients - sum(counts)]:
        counts[i] += 1
    return counts


def split_by_patient(table: pd.DataFrame, fractions: Sequence[float], seed: int) -> list[pd.DataFrame]:
    """Split a label table into ``len(fractions)`` patient-disjoint parts.

    `fractions` are fractions of *patients* (each > 0, summing to 1), e.g. ``(0.6, 0.2, 0.2)``.
    Patients are sorted by id and shuffled with `seed`, so the split depends only on the set of
    patients and the seed, not on row order. Every row lands in exactly one part; each part keeps
    the table's row order and index. Every part must receive at least one patient.
    """
    fractions = _checked_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed {seed!r} is not allowed; expected a non-negative integer")
    if "patient_id" not in table.columns:
        raise DatasetError(
            f"the table has no 'patient_id' column; expected a label table with columns like "
            f"sample_id, path, patient_id (found {list(table.columns)})",
            column="patient_id",
        )
    patient_ids = table["patient_id"]
    if patient_ids.isna().any():
        position = int(np.argmax(patient_ids.isna().to_numpy()))
        raise DatasetError(
            f"row {table.index[position]!r} of the table has no patient id; expected every row to name its patient",
            column="patient_id",
        )
    codes, patients = pd.factorize(patient_ids.astype(str), sort=True)
    counts = patient_counts(len(patients), fractions)
    if min(counts) == 0:
        raise DatasetError(
            f"{len(patients)} patient(s) cannot be split into {len(fractions)} non-empty parts with fractions "
            f"{list(fractions)} (patients per part: {counts}); expected at least one patient per part",
            column="patient_id",
        )
    order = np.random.default_rng(int(seed)).permutation(len(patients))
    part_of_patient = np.empty(len(patients), dtype=np.int64)
    part_of_patient[order] = np.repeat(np.arange(len(counts)), counts)
    part_of_row = part_of_patient[codes]
    parts = [table.loc[part_of_row == part] for part in range(len(counts))]
    logger.info(
        "split %d rows of %d patients into %s rows (%s patients), seed %d",
        len(table),
        len(patients),
        [len(part) for part in parts],
        counts,
        seed,
    )
    return parts


def fold_rows(table: pd.DataFrame, fold: int, folds: int, seed: int) -> pd.DataFrame:
    """The rows of `table` whose patients are in fold `fold` of `folds` (the complement of `leave_fold_out`)."""
    left = leave_fold_out(table, fold, folds, seed)
    return table.loc[~table.index.isin(left.index)]


def leave_fold_out(table: pd.DataFrame, fold: int, folds: int, seed: int) -> pd.DataFrame:
    """The rows of `table` whose patients are outside fold `fold` (from 0) of `folds` patient-grouped folds.

    The folds are `split_by_patient` into `folds` equal fractions with `seed`, so the k tables left by
    folds 0..k-1 each miss a different, disjoint share of the patients (a bagging member's training data).
    Row order and index are kept.
    """
    if not 0 <= fold < folds:
        raise ConfigError(f"fold {fold} of {folds}: expected 0 <= fold < {folds} (folds from 0)")
    left_out = split_by_patient(table, [1.0 / folds] * folds, seed=seed)[fold]
    return table.loc[~table["patient_id"].astype(str).isin(set(left_out["patient_id"].astype(str)))]


def _checked_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(value) for value in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions {fractions!r} are not numbers; expected e.g. (0.8, 0.1, 0.1)") from None
    if not values:
        raise ConfigError("fractions are empty; expected one fraction per part, e.g. (0.8, 0.1, 0.1)")
    if any(not math.isfinite(value) or value <= 0 for value in values):
        raise ConfigError(f"fractions {list(values)} must each be > 0; expected e.g. (0.8, 0.1, 0.1)")
    if abs(sum(values) - 1.0) > _TOLERANCE:
        raise ConfigError(
            f"fractions {list(values)} sum to {sum(values):g}; expected fractions of 1 that sum to 1, e.g. (0.95, 0.05)"
        )
    total = sum(values)
    return tuple(value / total for value in values)

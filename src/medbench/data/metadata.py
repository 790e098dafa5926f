"""Metadata features for the classifier head: label-table columns (age, sex, view, …) as a float matrix.

An encoding is fitted on the training split only and then applied to every split, so no statistic of
the validation or test images leaks into training. Numeric columns are standardized with the training
mean and standard deviation; a missing value becomes 0 (the training mean) and sets the column's
"missing" indicator, so the model can tell a mean-aged patient from one whose age is unknown.
Categorical columns (text, such as sex) are one-hot over the categories seen in training; a missing or
unseen value is all zeros. Boolean columns (``frontal``) are 0/1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medbench.errors import DatasetError

__all__ = ["MetadataEncoding"]

_KINDS = ("numeric", "categorical", "boolean")


@dataclass(frozen=True)
class MetadataEncoding:
    """How each chosen column becomes features, with the training statistics it needs.

    Attributes:
        columns: Label-table columns, in feature order.
        kinds: "numeric", "categorical" or "boolean" per column.
        means, stds: Training mean and standard deviation per numeric column (name → value).
        categories: Training categories per categorical column, sorted.
    """

    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    means: Mapping[str, float] = field(default_factory=dict)
    stds: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def fit(cls, train: pd.DataFrame, columns: Sequence[str]) -> MetadataEncoding:
        """The encoding of `columns`, its statistics taken from `train` (the training split) alone."""
        columns = tuple(columns)
        missing = [name for name in columns if name not in train.columns]
        if missing:
            offered = [name for name in train.columns if name not in ("sample_id", "path", "patient_id")]
            raise DatasetError(
                f"metadata columns {missing} are not in the label table; expected some of {offered[:20]}"
            )
        if not columns or len(set(columns)) != len(columns):
            raise DatasetError(f"metadata columns {list(columns)}: expected one or more distinct column names")
        kinds, means, stds, categories = [], {}, {}, {}
        for name in columns:
            values = train[name]
            if pd.api.types.is_bool_dtype(values):
                kinds.append("boolean")
            elif pd.api.types.is_numeric_dtype(values):
                known = values.to_numpy(dtype=np.float64)
                known = known[np.isfinite(known)]
                if known.size == 0:
                    raise DatasetError(f"metadata column {name!r} has no value in the training split; expected some")
                kinds.append("numeric")
                means[name] = float(known.mean())
                stds[name] = float(known.std()) or 1.0
            else:
                kinds.append("categorical")
                categories[name] = tuple(sorted({str(value) for value in values.dropna()}))
        return cls(columns, tuple(kinds), means, stds, categories)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """One name per feature column of `transform`'s output."""
        names: list[str] = []
        for name, kind in zip(self.columns, self.kinds, strict=True):
            if kind == "numeric":
                names += [name, f"{name}:missing"]
            elif kind == "categorical":
                names += [f"{name}={category}" for category in self.categories[name]]
            else:
                names.append(name)
        return tuple(names)

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """The (rows, features) float32 matrix of `table` (any split), with the training statistics."""
        missing = [name for name in self.columns if name not in table.columns]
        if missing:
            raise DatasetError(f"metadata columns {missing} are not in the label table; expected them in every split")
        parts = []
        for name, kind in zip(self.columns, self.kinds, strict=True):
            values = table[name]
            if kind == "numeric":
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
                unknown = ~np.isfinite(numbers)
                scaled = np.where(unknown, 0.0, (numbers - self.means[name]) / self.stds[name])
                parts += [scaled, unknown.astype(np.float64)]
            elif kind == "categorical":
                text = np.array([None if pd.isna(value) else str(value) for value in values], dtype=object)
                parts += [(text == category).astype(np.float64) for category in self.categories[name]]
            else:
                parts.append(values.to_numpy(dtype=np.float64))
        return np.stack(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """For config.json: everything needed to encode new images as the run was trained."""
        return {
            "columns": list(self.columns),
            "kinds": list(self.kinds),
            "means": dict(self.means),
            "stds": dict(self.stds),
            "categories": {name: list(values) for name, values in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetadataEncoding:
        kinds = tuple(data["kinds"])
        if any(kind not in _KINDS for kind in kinds):
            raise DatasetError(f"metadata kinds {list(kinds)}: expected each of {', '.join(_KINDS)}")
        return cls(
            tuple(data["columns"]),
            kinds,
            {name: float(value) for name, value in data["means"].items()},
            {name: float(value) for name, value in data["stds"].items()},
            {name: tuple(values) for name, values in data["categories"].items()},
        )

"""Metadata features: fitted on the training split only, applied to every split, missing values marked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.data.datasets import get_dataset, load_dataset
from medbench.data.metadata import MetadataEncoding
from medbench.data.splits import split_by_patient
from medbench.errors import DatasetError


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame(
        {
            "age": [20.0, 40.0, np.nan, 60.0],
            "sex": ["Male", "Female", None, "Female"],
            "frontal": [True, False, True, True],
        }
    )
    test = pd.DataFrame(
        {"age": [40.0, np.nan, 100.0], "sex": ["Female", "Other", None], "frontal": [False, True, True]}
    )
    return train, test


def test_statistics_come_from_the_training_split_and_apply_to_every_split() -> None:
    train, test = _tables()
    encoding = MetadataEncoding.fit(train, ["age", "sex", "frontal"])
    assert encoding.kinds == ("numeric", "categorical", "boolean")
    mean, std = np.mean([20, 40, 60]), np.std([20, 40, 60])
    assert (encoding.means["age"], encoding.stds["age"]) == (pytest.approx(mean), pytest.approx(std))
    assert encoding.feature_names == ("age", "age:missing", "sex=Female", "sex=Male", "frontal")
    features = encoding.transform(test)
    assert features.dtype == np.float32 and features.shape == (3, 5)
    np.testing.assert_allclose(features[:, 0], [(40 - mean) / std, 0.0, (100 - mean) / std], rtol=1e-6)
    np.testing.assert_array_equal(features[:, 1], [0, 1, 0])
    np.testing.assert_array_equal(features[:, 2:4], [[1, 0], [0, 0], [0, 0]])  # unseen, missing: all zeros
    np.testing.assert_array_equal(features[:, 4], [0, 1, 1])


def test_the_encoding_round_trips_through_json() -> None:
    train, test = _tables()
    encoding = MetadataEncoding.fit(train, ["sex", "age"])
    again = MetadataEncoding.from_dict(json.loads(json.dumps(encoding.to_dict())))
    assert again == encoding
    np.testing.assert_array_equal(again.transform(test), encoding.transform(test))


def test_demo_metadata_uses_only_the_training_patients(demo_data_dir: Path) -> None:
    train, _ = load_dataset(get_dataset("demo"), demo_data_dir)
    fit_part, held_out = split_by_patient(train, (0.8, 0.2), seed=0)
    encoding = MetadataEncoding.fit(fit_part, ["age", "sex", "frontal"])
    assert encoding.means["age"] == pytest.approx(fit_part["age"].mean())
    assert encoding.means["age"] != pytest.approx(train["age"].mean(), abs=1e-9)
    features = encoding.transform(held_out)
    assert features.shape == (len(held_out), len(encoding.feature_names)) and np.isfinite(features).all()


@pytest.mark.parametrize(
    ("columns", "message"),
    [(["weight"], r"metadata columns \['weight'\] are not in the label table"), ([], "one or more distinct")],
)
def test_unknown_or_no_columns_are_refused(columns: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        MetadataEncoding.fit(_tables()[0], columns)


def test_a_numeric_column_without_any_training_value_is_refused() -> None:
    with pytest.raises(DatasetError, match="'age' has no value in the training split"):
        MetadataEncoding.fit(pd.DataFrame({"age": [np.nan, np.nan]}), ["age"])

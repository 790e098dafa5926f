"""Patient-level splits: disjoint, deterministic, proportional, order-keeping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medbench.data.readers import read_chestxray14_csv
from medbench.data.splits import patient_counts, split_by_patient
from medbench.errors import ConfigError, DatasetError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NIH_METADATA = SHARED / "nih-metadata" / "Data_Entry_2017_v2020.csv.gz"


def needs_shared(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that reads ../shared/data; it is skipped where that folder is absent."""
    skip = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data (real NIH images) not present")
    return pytest.mark.shared_data(skip(test))


@pytest.fixture(scope="module")
def nih() -> pd.DataFrame:
    if not SHARED.exists():
        pytest.skip("../shared/data (real NIH images) not present")
    return read_chestxray14_csv(NIH_METADATA, "images", check_images=False)


def table_of(patients: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"img{i}" for i in range(len(patients))], "patient_id": patients})


def assert_partition(table: pd.DataFrame, parts: list[pd.DataFrame]) -> None:
    """Every row in exactly one part, row order kept, no patient in two parts."""
    indices = np.concatenate([part.index.to_numpy() for part in parts])
    assert sorted(indices.tolist()) == sorted(table.index.tolist())
    for part in parts:
        assert (np.diff(table.index.get_indexer(part.index)) > 0).all()
        pd.testing.assert_frame_equal(part, table.loc[part.index])
    seen: set[str] = set()
    for part in parts:
        patients = set(part["patient_id"])
        assert not patients & seen
        seen |= patients


@needs_shared
def test_split_real_nih_file(nih: pd.DataFrame) -> None:
    parts = split_by_patient(nih, (0.7, 0.1, 0.2), seed=42)
    assert_partition(nih, parts)
    n_patients = nih["patient_id"].nunique()
    assert n_patients == 30_805
    counts = [part["patient_id"].nunique() for part in parts]
    assert counts == patient_counts(n_patients, (0.7, 0.1, 0.2)) == [21_564, 3_080, 6_161]
    assert sum(len(part) for part in parts) == 112_120
    shares = np.array([len(part) for part in parts]) / len(nih)
    np.testing.assert_allclose(shares, [0.7, 0.1, 0.2], atol=0.03)  # rows follow patients roughly

    again = split_by_patient(nih, [0.7, 0.1, 0.2], seed=42)
    for first, second in zip(parts, again, strict=True):
        pd.testing.assert_frame_equal(first, second)
    other = split_by_patient(nih, (0.7, 0.1, 0.2), seed=43)
    assert set(other[1]["patient_id"]) != set(parts[1]["patient_id"])


@needs_shared
def test_split_ignores_row_order(nih: pd.DataFrame) -> None:
    sample = nih.iloc[:5000]
    shuffled = sample.sample(frac=1.0, random_state=0)
    parts = split_by_patient(sample, (0.95, 0.05), seed=7)
    shuffled_parts = split_by_patient(shuffled, (0.95, 0.05), seed=7)
    for part, other in zip(parts, shuffled_parts, strict=True):
        assert set(part["sample_id"]) == set(other["sample_id"])
    assert_partition(shuffled, shuffled_parts)


def test_patient_counts_largest_remainder() -> None:
    assert patient_counts(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert patient_counts(11, (0.6, 0.2, 0.2)) == [7, 2, 2]
    assert patient_counts(3, (0.5, 0.5)) == [2, 1]  # ties go to the earlier part
    assert patient_counts(0, (1.0,)) == [0]


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((0.5, 0.4), r"sum to 0.9; expected fractions of 1"),
        ((95, 5), "sum to 100"),
        ((1.0, 0.0), "must each be > 0"),
        ((1.2, -0.2), "must each be > 0"),
        ((float("nan"), 1.0), "must each be > 0"),
        ((), "fractions are empty"),
        (("a", "b"), "are not numbers"),
    ],
)
def test_bad_fractions(fractions: tuple[object, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split_by_patient(table_of(["a", "b"]), fractions, seed=0)  # type: ignore[arg-type]


def test_bad_tables_and_seeds() -> None:
    with pytest.raises(DatasetError, match="2 patient\\(s\\) cannot be split into 3 non-empty parts"):
        split_by_patient(table_of(["a", "a", "b"]), (0.4, 0.3, 0.3), seed=0)
    with pytest.raises(DatasetError, match="no 'patient_id' column"):
        split_by_patient(pd.DataFrame({"sample_id": ["x"]}), (1.0,), seed=0)
    with pytest.raises(DatasetError, match="has no patient id"):
        split_by_patient(table_of(["a", None, "b"]), (0.5, 0.5), seed=0)  # type: ignore[list-item]
    for seed in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="expected a non-negative integer"):
            split_by_patient(table_of(["a", "b"]), (0.5, 0.5), seed=seed)  # type: ignore[arg-type]


def test_single_part_is_the_whole_table() -> None:
    table = table_of(["b", "a", "b"])
    (part,) = split_by_patient(table, (1.0,), seed=3)
    pd.testing.assert_frame_equal(part, table)


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[pd.DataFrame, tuple[float, ...], int]:
    patients = draw(st.lists(st.integers(0, 40).map(lambda i: f"p{i}"), min_size=1, max_size=120))
    weights = draw(st.lists(st.integers(1, 20), min_size=1, max_size=4))
    fractions = tuple(weight / sum(weights) for weight in weights)
    seed = draw(st.integers(0, 2**32 - 1))
    table = table_of(patients)
    table.index = pd.Index(draw(st.permutations(range(1000, 1000 + len(patients)))))
    return table, fractions, seed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_cases())
def test_split_invariants(case: tuple[pd.DataFrame, tuple[float, ...], int]) -> None:
    table, fractions, seed = case
    n_patients = table["patient_id"].nunique()
    expected = patient_counts(n_patients, fractions)
    if min(expected) == 0:
        with pytest.raises(DatasetError, match="non-empty parts"):
            split_by_patient(table, fractions, seed)
        return
    parts = split_by_patient(table, fractions, seed)
    assert len(parts) == len(fractions)
    assert [part["patient_id"].nunique() for part in parts] == expected
    assert sum(len(part) for part in parts) == len(table)
    indices = np.concatenate([part.index.to_numpy() for part in parts])
    assert sorted(indices.tolist()) == sorted(table.index.tolist())
    for part in parts:
        positions = table.index.get_indexer(part.index)
        assert (np.diff(positions) > 0).all()  # original row order kept
    seen: set[str] = set()
    for part in parts:
        assert not set(part["patient_id"]) & seen
        seen |= set(part["patient_id"])
    for part, again in zip(parts, split_by_patient(table, fractions, seed), strict=True):
        pd.testing.assert_frame_equal(part, again)
    for count, fraction in zip(expected, fractions, strict=True):
        assert abs(count - fraction * n_patients) < 1


def test_counts_ignore_float_rounding_of_the_fractions() -> None:
    # 0.3 + 0.6 + 0.1 != 1.0 in floating point; normalising once or twice must not move a patient.
    once = tuple(value / sum((0.3, 0.6, 0.1)) for value in (0.3, 0.6, 0.1))
    assert patient_counts(4, (0.3, 0.6, 0.1)) == patient_counts(4, once) == [1, 3, 0]
    with pytest.raises(DatasetError, match="non-empty parts"):
        split_by_patient(table_of(["a", "b", "c", "d"]), (0.3, 0.6, 0.1), seed=0)

"""The readers' fast string checks give exactly what the plain pandas rules give, on any text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.data.readers.cells import parse_ages, parse_labels, relative_paths, stripped
from medbench.data.readers.chestxray14 import _file_names
from medbench.data.readers.chexpert import _patient_folder, patient_folders
from medbench.errors import DatasetError

FILE = Path("labels.csv")
# Cells built from the pieces the rules are about, so that every rule is hit often.
cells = st.lists(st.sampled_from(["a", "b1", "/", ".", "..", "\\", " ", "\t", ":", "C:", "é", "-"]), max_size=5).map(
    "".join
)


def reference_paths(raw: pd.Series) -> pd.Series | str:
    """The rules as regular expressions over pandas columns (how the readers said them before)."""
    paths = raw.str.strip().str.replace("\\", "/", regex=False)
    if (paths == "").any():
        return "empty"
    if (paths.str.startswith("/") | paths.str.match(r"^[A-Za-z]:")).any():
        return "absolute"
    if paths.str.contains(r"(?:^|/)\.\.(?:/|$)", regex=True).any():
        return "escaping"
    untidy = paths.str.contains(r"//|(?:^|/)\.(?:/|$)|/$", regex=True)
    paths = paths.copy()
    paths[untidy] = ["/".join(part for part in value.split("/") if part not in ("", ".")) for value in paths[untidy]]
    if (paths == "").any():
        return "no file"
    return paths


def outcome(raw: pd.Series) -> pd.Series | str:
    try:
        return relative_paths(raw, FILE, "Path", np.arange(len(raw)) + 2)
    except DatasetError as error:
        message = str(error)
        for kind, text in (
            ("empty", "is empty"),
            ("absolute", "absolute path"),
            ("escaping", "leaves the dataset"),
            ("no file", "names no file"),
        ):
            if text in message:
                return kind
        raise


@settings(max_examples=400, deadline=None)
@given(st.lists(cells, min_size=1, max_size=6))
def test_relative_paths_follow_the_rules_exactly(values: list[str]) -> None:
    raw = pd.Series(values, dtype="str")
    expected, got = reference_paths(raw), outcome(raw)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert list(got) == list(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(cells, min_size=1, max_size=6))
def test_nih_file_names_follow_the_rules_exactly(values: list[str]) -> None:
    raw = pd.Series(values, dtype="str")
    names, bad = _file_names(raw)
    stripped = raw.str.strip()
    expected = (stripped == "") | stripped.str.contains(r"[/\\]", regex=True) | stripped.isin([".", ".."])
    assert list(names) == list(stripped) and list(bad) == list(expected)


padded_cells = st.lists(st.sampled_from(["a", "7", " ", "\t", "\n", "\r", "\x1c", "\xa0", "é", ""]), max_size=4).map(
    "".join
)


@settings(max_examples=400, deadline=None)
@given(st.lists(padded_cells, min_size=1, max_size=6))
def test_strip_fast_path_equals_str_strip(values: list[str]) -> None:
    raw = pd.Series(values, dtype="str")
    assert list(stripped(raw)) == [value.strip() for value in values]


folder_parts = st.sampled_from(["patient", "patient1", "patient007", "patient٣", "patientx", "p1", "", "\n", "a b"])
folder_paths = st.lists(folder_parts, min_size=1, max_size=4).map("/".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(folder_paths, min_size=1, max_size=6))
def test_patient_folders_equal_the_per_path_rule(values: list[str]) -> None:
    got = patient_folders(pd.Series(values, dtype="str"))
    assert [None if pd.isna(value) else value for value in got] == [_patient_folder(value) for value in values]


def test_values_parsed_once_per_distinct_value_land_on_their_rows() -> None:
    frame = pd.DataFrame({"A": ["1.0", " 0.0", "", "-1.0", "1.0"], "B": ["0", "0", "1", "1", " 1 "]}, dtype="str")
    rows = np.arange(5) + 2
    labels = parse_labels(frame, ["A", "B"], (1.0, 0.0, -1.0), "x", FILE, rows, blank_allowed=True)
    np.testing.assert_array_equal(labels["A"], [1.0, 0.0, np.nan, -1.0, 1.0])
    np.testing.assert_array_equal(labels["B"], [0.0, 0.0, 1.0, 1.0, 1.0])
    frame.loc[3, "B"] = "yes"
    with pytest.raises(DatasetError, match=r"row 5, column 'B': value 'yes' is not a label"):
        parse_labels(frame, ["A", "B"], (1.0, 0.0, -1.0), "x", FILE, rows, blank_allowed=True)
    ages = parse_ages(pd.Series(["058Y", "006M", "", "58", "010D"], dtype="str"), FILE, "Age", rows, units=True)
    np.testing.assert_allclose(ages.to_numpy(), [58.0, 0.5, np.nan, 58.0, 10 / 365.25])

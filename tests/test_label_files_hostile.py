"""Broken label files: short and long rows, repeated or padded header names, trailing commas, header only.

Each file is written for real in the test's folder and read by the real reader (or `medbench
preprocess` in a child process); the messages must name the file, the row (header = row 1) and the
column at fault.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from cli_process import run_medbench
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.data.datasets import get_dataset, load_dataset
from medbench.data.readers import (
    CHEXPERT_CLASSES,
    CHEXPERT_METADATA_COLUMNS,
    read_chestxray14_csv,
    read_chexpert_csv,
    read_generic_csv,
    read_onehot_csv,
)
from medbench.errors import DatasetError
from medbench.settings import Settings

HEADER = [*CHEXPERT_METADATA_COLUMNS, *CHEXPERT_CLASSES]
WIDTH = len(HEADER)
LABELS = ("1.0", "0.0", "-1.0", "")
BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def chexpert_line(patient: int, labels: Sequence[str] | None = None) -> str:
    """One CheXpert CSV line (no line break); labels default to a fixed mix of the four values."""
    cells = labels if labels is not None else [LABELS[(patient + i) % 4] for i in range(len(CHEXPERT_CLASSES))]
    path = f"CheXpert-v1.0-small/train/patient{patient:05d}/study1/view1_frontal.jpg"
    return ",".join([path, "Female", "60", "Frontal", "AP", *cells])


def chexpert_file(root: Path, header: str, lines: Sequence[str], newline: str = "\n") -> Path:
    """`header` and `lines` written as ``<root>/CheXpert-v1.0-small/train.csv``."""
    path = root / "CheXpert-v1.0-small" / "train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join([header, *lines]).encode("utf-8") + newline.encode())
    return path


def read(path: Path, root: Path) -> object:
    return read_chexpert_csv(path, root, check_images=False)


GOOD = [chexpert_line(patient) for patient in range(1, 6)]
HEADER_LINE = ",".join(HEADER)


def refused(path: Path, root: Path) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        read(path, root)
    assert caught.value.file == path
    return caught.value


# -- header only, repeated and padded names ------------------------------------------------------------------


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE, [])
    error = refused(path, tmp_path)
    assert str(error) == (
        f"{path}: has a header and no rows; expected at least one row (one per image) below the header"
    )
    chexpert_file(tmp_path, HEADER_LINE, ["", ""])
    assert "has a header and no rows" in str(refused(path, tmp_path))


def test_a_class_column_named_twice_is_refused_naming_both_positions(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE + ",Edema", [line + ",1.0" for line in GOOD])
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (1, "Edema")
    assert str(error) == (
        f"{path}, row 1, column 'Edema': the header names this column twice (columns 11 and 20); "
        "expected each column name once"
    )


def test_a_padded_repeat_is_refused_showing_both_spellings(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE + ", Edema", [line + ",1.0" for line in GOOD])
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (1, "Edema")
    assert "(columns 11 and 20, spelt 'Edema' and ' Edema': names are compared without surrounding whitespace)" in (
        str(error)
    )


def test_a_padded_name_alone_is_read_as_the_stripped_name(tmp_path: Path) -> None:
    clean = read(chexpert_file(tmp_path / "clean", HEADER_LINE, GOOD), tmp_path / "clean")
    padded_header = HEADER_LINE.replace(",Edema,", ", Edema\t,")
    padded = read(chexpert_file(tmp_path / "padded", padded_header, GOOD), tmp_path / "padded")
    np.testing.assert_array_equal(padded["Edema"].to_numpy(), clean["Edema"].to_numpy())
    assert list(padded.columns) == list(clean.columns)


def test_a_blank_first_line_is_refused_as_a_missing_header(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, "", [HEADER_LINE, *GOOD])
    error = refused(path, tmp_path)
    assert str(error) == f"{path}, row 1: the first line is blank; expected the header row on the first line"


def test_a_huge_cell_is_cut_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("file,A\nx.png,1\ny.png," + "7" * 100_000 + "\n")
    with pytest.raises(DatasetError) as caught:
        read_generic_csv(path, tmp_path, "file", check_images=False)
    assert (caught.value.row, caught.value.column) == (3, "A")
    assert len(str(caught.value)) < 600 and "(100,000 characters) is not a label" in str(caught.value)


# -- short and long rows ---------------------------------------------------------------------------------


def test_a_row_cut_after_its_metadata_is_refused_with_row_and_column(tmp_path: Path) -> None:
    cut_line = ",".join(GOOD[2].split(",")[:5])
    path = chexpert_file(tmp_path, HEADER_LINE, [*GOOD[:2], cut_line, *GOOD[3:]])
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (4, "No Finding")
    assert str(error) == (
        f"{path}, row 4, column 'No Finding': the row has 5 fields, the header has 19, so this is not a "
        "well-formed CSV file; expected every row to have all 19 fields (column 'No Finding' onward is "
        "missing: was the row cut short?)"
    )


def test_every_short_row_is_counted_and_blank_lines_keep_row_numbers(tmp_path: Path) -> None:
    short = [",".join(line.split(",")[:7]) for line in GOOD[3:]]
    path = chexpert_file(tmp_path, HEADER_LINE, [GOOD[0], "", GOOD[1], *short, "", ""], newline="\r\n")
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (5, "Cardiomegaly")
    assert str(error).endswith("(2 rows have a wrong number of fields; the first is shown)")


def test_a_row_too_long_is_refused_with_the_field_counts(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE, [*GOOD[:3], GOOD[3] + ",x,y", GOOD[4]])
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (5, None)
    assert str(error) == (
        f"{path}, row 5: the row has 21 fields, the header has 19, so this is not a well-formed CSV file; "
        "expected every row to have the header's 19 fields (a trailing comma, or an unquoted comma inside a value?)"
    )


def test_a_trailing_comma_on_the_rows_only_is_refused(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE, [line + "," for line in GOOD])
    error = refused(path, tmp_path)
    assert error.row == 2
    assert "the row has 20 fields, the header has 19" in str(error)


def test_a_trailing_comma_on_every_line_is_an_ignored_empty_column(tmp_path: Path) -> None:
    clean = read(chexpert_file(tmp_path / "clean", HEADER_LINE, GOOD), tmp_path / "clean")
    trailing = chexpert_file(tmp_path / "t", HEADER_LINE + ",", [line + "," for line in GOOD])
    table = read(trailing, tmp_path / "t")
    assert list(table.columns) == list(clean.columns)
    np.testing.assert_array_equal(table[list(CHEXPERT_CLASSES)].to_numpy(), clean[list(CHEXPERT_CLASSES)].to_numpy())


def test_an_unnamed_column_holding_a_value_is_refused(tmp_path: Path) -> None:
    lines = [line + "," for line in GOOD]
    lines[3] += "1.0"
    path = chexpert_file(tmp_path, HEADER_LINE + ",", lines)
    error = refused(path, tmp_path)
    assert error.row == 5
    assert str(error) == (
        f"{path}, row 5: column 20 has no name in the header but holds '1.0'; expected a header name for every "
        "column that holds values (an unnamed column of empty cells, as a trailing comma on every line makes, "
        "is ignored)"
    )


def test_a_lone_cr_file_is_read_and_its_short_row_refused(tmp_path: Path) -> None:
    path = chexpert_file(tmp_path, HEADER_LINE, GOOD, newline="\r")
    assert len(read(path, tmp_path)) == len(GOOD)
    chexpert_file(tmp_path, HEADER_LINE, [*GOOD[:4], GOOD[4].rsplit(",", 2)[0]], newline="\r")
    error = refused(path, tmp_path)
    assert (error.row, error.column) == (6, "Fracture")


# -- quoted fields, the other readers -------------------------------------------------------------------------


def quoted_generic(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    """A generic CSV written by `csv.writer` (commas and line breaks inside cells are quoted)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["file", "note", "A", "B"], *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_quoted_commas_and_line_breaks_are_cells_not_fields(tmp_path: Path) -> None:
    rows = [["a,1.png", "two\nlines, and a comma", "1", "0"], ["b.png", 'say "hi"', "", "-1"], ["c.png", "", "0", "1"]]
    path = quoted_generic(tmp_path / "labels.csv", rows)
    table = read_generic_csv(path, tmp_path, "file", ["A", "B"], check_images=False)
    assert table["sample_id"].tolist() == ["a,1.png", "b.png", "c.png"]
    np.testing.assert_array_equal(table[["A", "B"]].to_numpy(), [[1.0, 0.0], [np.nan, -1.0], [0.0, 1.0]])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('"d,2.png","x\ny"\n')
    with pytest.raises(DatasetError) as caught:
        read_generic_csv(path, tmp_path, "file", ["A", "B"], check_images=False)
    assert (caught.value.row, caught.value.column) == (5, "A")
    assert "the row has 2 fields, the header has 4" in str(caught.value)


NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
NIH_ROWS = ["a.png,Mass,0,1,50,M,PA,1,1,1,1", "b.png,Edema,0,2,40,F,AP,1,1,1,1", "c.png,No Finding,0,3,30,F,PA,1,1,1,1"]


def nih_file(path: Path, header: str, rows: Sequence[str]) -> Path:
    data = ("\n".join([header, *rows]) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.mark.parametrize("name", ["labels.csv", "labels.csv.gz"])
def test_nih_rows_short_or_long_are_refused(tmp_path: Path, name: str) -> None:
    path = nih_file(tmp_path / name, NIH_HEADER, [NIH_ROWS[0], "b.png,Edema,0,2,40,F,AP", NIH_ROWS[2]])
    with pytest.raises(DatasetError) as caught:
        read_chestxray14_csv(path, tmp_path, check_images=False)
    assert (caught.value.row, caught.value.column) == (3, "OriginalImage[Width")
    # NIH's reader used to parse only the columns it uses, so a longer row went through unseen.
    nih_file(path, NIH_HEADER, [NIH_ROWS[0], NIH_ROWS[1] + ",9", NIH_ROWS[2]])
    with pytest.raises(DatasetError, match="the row has 12 fields, the header has 11") as caught:
        read_chestxray14_csv(path, tmp_path, check_images=False)
    assert caught.value.row == 3


def test_nih_header_only_and_repeated_column_are_refused(tmp_path: Path) -> None:
    path = nih_file(tmp_path / "labels.csv", NIH_HEADER, [])
    with pytest.raises(DatasetError, match="has a header and no rows"):
        read_chestxray14_csv(path, tmp_path, check_images=False)
    nih_file(path, NIH_HEADER + ",Patient ID", [row + ",9" for row in NIH_ROWS])
    with pytest.raises(DatasetError, match=r"names this column twice \(columns 4 and 12\)") as caught:
        read_chestxray14_csv(path, tmp_path, check_images=False)
    assert (caught.value.row, caught.value.column) == (1, "Patient ID")


def test_a_truncated_gzip_label_file_is_refused(tmp_path: Path) -> None:
    path = nih_file(tmp_path / "labels.csv.gz", NIH_HEADER, NIH_ROWS * 50)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DatasetError, match=r"cannot be decompressed as a \.gz file \(EOFError") as caught:
        read_chestxray14_csv(path, tmp_path, check_images=False)
    assert caught.value.file == path


def test_onehot_short_row_and_trailing_commas(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("image,MEL,NV,BCC\nISIC_1,1,0,0\nISIC_2,0,1\nISIC_3,0,0,1\n")
    with pytest.raises(DatasetError) as caught:
        read_onehot_csv(path, tmp_path, extension="jpg", check_images=False)
    assert (caught.value.row, caught.value.column) == (3, "BCC")
    path.write_text("image,MEL,NV,BCC,\nISIC_1,1,0,0,\nISIC_2,0,1,0,\n")
    table = read_onehot_csv(path, tmp_path, extension="jpg", check_images=False)
    assert list(table.columns[-3:]) == ["MEL", "NV", "BCC"], "the unnamed empty column is not a class"


def test_generic_repeat_and_trailing_comma_on_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("file,A,B,A \nx.png,1,0,1\n")
    with pytest.raises(DatasetError, match=r"names this column twice \(columns 2 and 4, spelt 'A' and 'A '"):
        read_generic_csv(path, tmp_path, "file", check_images=False)
    path.write_text("file,A,B\nx.png,1,0,\ny.png,0,1,\n")
    with pytest.raises(DatasetError, match="the row has 4 fields, the header has 3") as caught:
        read_generic_csv(path, tmp_path, "file", check_images=False)
    assert caught.value.row == 2


def test_load_dataset_refuses_a_short_row_in_the_demo_layout(tmp_path: Path, demo_data_dir: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data_dir / "demo", data_dir / "demo")
    train = data_dir / "demo" / "CheXpert-v1.0-small" / "train.csv"
    lines = train.read_text().splitlines()
    lines[6] = ",".join(lines[6].split(",")[:5])
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(get_dataset("demo"), data_dir)
    assert (caught.value.file, caught.value.row, caught.value.column) == (train, 7, "No Finding")


# -- the command line --------------------------------------------------------------------------------------


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("damage", ["short-row", "header-only", "repeated-class"])
def test_preprocess_on_a_damaged_label_file_is_one_error_line(tmp_path: Path, demo_data_dir: Path, damage: str) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data_dir / "demo", data_dir / "demo")
    train = data_dir / "demo" / "CheXpert-v1.0-small" / "train.csv"
    lines = train.read_text().splitlines()
    if damage == "short-row":
        lines[3] = ",".join(lines[3].split(",")[:5])
    elif damage == "header-only":
        lines = lines[:1]
    else:
        lines = [lines[0] + ",Edema", *(line + ",1.0" for line in lines[1:])]
    train.write_text("\n".join(lines) + "\n")
    before = _digests(tmp_path)
    project = Settings(
        root=tmp_path,
        data_dir=data_dir,
        models_dir=tmp_path / "models",
        logs_dir=tmp_path / "logs",
        weights_dir=tmp_path / "weights",
    )
    result = run_medbench(["preprocess", BENCHMARK], project)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("medbench: error:")]
    assert len(errors) == 1 and str(train) in errors[0]
    expected = {
        "short-row": ", row 4, column 'No Finding': the row has 5 fields, the header has 19",
        "header-only": ": has a header and no rows",
        "repeated-class": ", row 1, column 'Edema': the header names this column twice (columns 11 and 20)",
    }[damage]
    assert f"{train}{expected}" in errors[0]
    after = _digests(tmp_path)
    assert {name: after[name] for name in before} == before, "every file that was there is byte-identical"


# -- property: a cut row is never read with its labels silently blank -------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.lists(st.sampled_from(LABELS), min_size=14, max_size=14), min_size=2, max_size=5),
    which=st.integers(min_value=0, max_value=4),
    keep=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_a_cut_row_is_refused_or_read_with_its_labels(
    labels: list[list[str]], which: int, keep: float, newline: str
) -> None:
    lines = [chexpert_line(index + 1, row) for index, row in enumerate(labels)]
    which %= len(lines)
    length = max(1, int(keep * len(lines[which])))  # keep 1..len-1 characters: the row loses its end
    cut_line = lines[which][:length]
    lines[which] = cut_line
    kept_fields = cut_line.split(",")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = chexpert_file(root, HEADER_LINE, lines, newline=newline)
        try:
            table = read(path, root)
        except DatasetError as error:
            assert error.row == which + 2, str(error)
            return
    # Accepted: only a cut inside the last field leaves every field in place (and cannot be seen).
    assert len(kept_fields) == WIDTH
    row = table.iloc[which]
    original = labels[which]
    for name, cell in zip(CHEXPERT_CLASSES[:-1], original[:-1], strict=True):
        assert (np.isnan(row[name]) and cell == "") or row[name] == float(cell)

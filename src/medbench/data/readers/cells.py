"""Checking a label CSV's columns, paths and cells: what the readers share for that.

`label_csv.read_csv` reads every cell as a string (blank lines dropped; `file_rows` gives the file's
row numbers); the checks and parsers here turn columns into validated values and raise, through
`fail_where`, a `DatasetError` that names the file, the row, the column and what was expected.

Label files repeat a few values in most columns (labels, sexes, views, ages, finding lists), so the
parsers work on each distinct value once (`distinct`) and spread the results back over the rows:
the same checks and messages at a fraction of the string operations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.errors import DatasetError, shown


def distinct(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, uniques): `values` equals ``uniques.iloc[codes]``; parse `uniques`, then index results by `codes`."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes, pd.Series(uniques, dtype="str")


def stripped(values: pd.Series) -> pd.Series:
    """`values.str.strip()`, computed once per distinct value (or not at all where nothing is padded)."""
    if not _maybe_padded(values):
        return values.astype("str")
    codes, uniques = distinct(values)
    return pd.Series(uniques.str.strip().to_numpy(dtype=object)[codes], dtype="str", index=values.index)


ASCII_WHITESPACE_BUT_BLANK_AND_NEWLINE = "\t\r\x0b\x0c\x1c\x1d\x1e\x1f"
"""What `str.strip` removes among ASCII characters, less the blank and the newline the fast scans test apart."""


def _maybe_padded(values: pd.Series) -> bool:
    """False only when no value can start or end with whitespace (one scan of them joined by newlines).

    Any non-ASCII text, a value holding a newline, any ASCII whitespace but blanks, or a blank next to
    a newline or at either end counts as maybe padded: the exact per-value strip then runs.
    """
    joined = "\n".join(values.to_numpy(dtype=object))
    if not joined.isascii() or joined.count("\n") != len(values) - 1:
        return True
    if joined[:1] == " " or joined[-1:] == " " or " \n" in joined or "\n " in joined:
        return True
    return any(space in joined for space in ASCII_WHITESPACE_BUT_BLANK_AND_NEWLINE)


def file_rows(frame: pd.DataFrame, file: Path) -> np.ndarray:
    """1-based file row of each frame row (the header is row 1), refusing a file with no rows."""
    if len(frame) == 0:
        raise DatasetError(
            "has a header and no rows; expected at least one row (one per image) below the header", file=file
        )
    return frame.index.to_numpy(dtype=np.int64) + 2


def require_columns(frame: pd.DataFrame, expected: Iterable[str], file: Path) -> None:
    """Fail, naming all of them, when any `expected` column is missing from the header."""
    expected = list(dict.fromkeys(expected))
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise DatasetError(
            f"missing column(s) {missing}; expected columns {expected}, found {shown_names(frame.columns)}",
            file=file,
            row=1,
            column=missing[0],
        )


def shown_names(names: Iterable[object], limit: int = 40) -> str:
    """A header's names as a list, the first `limit` of a longer one (a message stays bounded)."""
    names = [str(name)[:200] for name in names]
    if len(names) <= limit:
        return str(names)
    return f"{str(names[:limit])[:-1]}, …] ({len(names)} columns in all)"


def choose_label_columns(
    frame: pd.DataFrame, chosen: Sequence[str] | None, exclude: Iterable[str | None], file: Path
) -> tuple[str, ...]:
    """The label columns: `chosen`, else every column not in `exclude` (in file order)."""
    if chosen is not None:
        return tuple(chosen)
    excluded = {name for name in exclude if name}
    columns = tuple(name for name in frame.columns if name not in excluded)
    if not columns:
        raise DatasetError(
            f"has no label columns; expected numeric class columns besides {sorted(excluded)}", file=file, row=1
        )
    return columns


def fail_where(
    mask: pd.Series | np.ndarray,
    values: pd.Series,
    file: Path,
    column: str | None,
    rows: np.ndarray | None,
    problem: str,
) -> None:
    """Raise for the first True position of `mask`, counting all of them."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    first = int(np.argmax(mask))
    count = int(mask.sum())
    more = f" ({count} rows have this problem; the first is shown)" if count > 1 else ""
    raise DatasetError(
        f"value {shown(str(values.iloc[first]))} {problem}{more}",
        file=file,
        row=None if rows is None else int(rows[first]),
        column=column,
    )


_DRIVE_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _has_part(path: str, part: str) -> bool:
    """True when `part` is a whole component of the '/'-separated `path` (``'..'`` in ``'a/../b'``)."""
    return path == part or path.startswith(part + "/") or path.endswith("/" + part) or f"/{part}/" in path


_MAYBE_UNTIDY = ("//", "/\n", "/.", "\n.", "\\", " \n", "\n ")


def _clean(raw: pd.Series) -> bool:
    """True when no path can be empty, absolute, escaping, untidy or padded: the column is fine as it is.

    Substring tests over all paths joined by newlines, each a superset of its per-row rule (any
    non-ASCII text takes the exact route), so a False only means the exact per-row checks must run.
    """
    joined = "\n".join(raw.to_numpy(dtype=object))
    if not joined or not joined.isascii() or joined[0] in "/. \n" or joined[-1] in "/ \n":
        return False
    if "\n\n" in joined or "\n/" in joined or ":" in joined or ".." in joined:
        return False
    if any(space in joined for space in ASCII_WHITESPACE_BUT_BLANK_AND_NEWLINE):
        return False
    return not any(part in joined for part in _MAYBE_UNTIDY)


def relative_paths(raw: pd.Series, file: Path, column: str, rows: np.ndarray) -> pd.Series:
    """Validate image paths relative to the dataset root and normalize them to POSIX form.

    Paths are unique per row, so the checks are one pass of plain string tests over the column, each
    exactly the rule its message states (empty, absolute, a '..' component, an empty or '.' component).
    """
    if _clean(raw):
        return raw.astype("str")
    values = [value.strip().replace("\\", "/") for value in raw.to_numpy(dtype=object)]
    count = len(values)
    empty, absolute, escaping, untidy = (np.zeros(count, dtype=bool) for _ in range(4))
    for index, value in enumerate(values):
        if not value:
            empty[index] = True
            continue
        if value[0] == "/" or (value[1:2] == ":" and value[0] in _DRIVE_LETTERS):
            absolute[index] = True
        if ".." in value and _has_part(value, ".."):
            escaping[index] = True
        if "//" in value or value[-1] == "/" or ("." in value and _has_part(value, ".")):
            untidy[index] = True
    paths = pd.Series(values, dtype="str", index=raw.index)
    fail_where(empty, paths, file, column, rows, "is empty; expected an image path")
    fail_where(
        absolute, paths, file, column, rows, "is an absolute path; expected a path relative to the dataset folder"
    )
    fail_where(
        escaping,
        paths,
        file,
        column,
        rows,
        "leaves the dataset folder ('..'); expected a path inside the dataset folder",
    )
    if untidy.any():
        for index in np.flatnonzero(untidy):
            values[index] = "/".join(part for part in values[index].split("/") if part not in ("", "."))
        paths = pd.Series(values, dtype="str", index=raw.index)
        fail_where(paths == "", stripped(raw), file, column, rows, "names no file; expected an image path")
    return paths


def relative_folder(folder: Path, root: Path, file: Path) -> str:
    """The POSIX prefix (``"images/"`` or ``""``) of `folder` inside `root`."""
    relative = os.path.relpath(os.path.abspath(folder), os.path.abspath(root))
    if relative == os.curdir:
        return ""
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise DatasetError(f"image folder {folder} is outside the dataset folder {root}; expected it inside", file=file)
    return Path(relative).as_posix() + "/"


def categorical_column(
    frame: pd.DataFrame, column: str, allowed: Iterable[str], file: Path, rows: np.ndarray
) -> pd.Series:
    """The stripped cells of a categorical column, failing on any value outside `allowed`."""
    allowed = list(allowed)
    values = stripped(frame[column])
    shown = ", ".join(repr(value) if value else "empty" for value in allowed)
    fail_where(~values.isin(allowed), values, file, column, rows, f"is not allowed; expected one of {shown}")
    return values


def parse_sex(values: pd.Series, names: Mapping[str, str]) -> pd.Series:
    """Sex as 'Male'/'Female' (object dtype), None where unknown."""
    codes, uniques = distinct(values)
    parsed = np.array([names.get(value) for value in uniques], dtype=object)
    return pd.Series(parsed[codes], dtype=object, index=values.index)


_AGE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[YyMmDd]?)$")


def parse_ages(raw: pd.Series, file: Path, column: str, rows: np.ndarray, *, units: bool = False) -> pd.Series:
    """Ages in years (NaN when empty); with `units`, NIH's old ``058Y``/``006M``/``010D`` form is read too."""
    codes, uniques = distinct(raw)
    values = uniques.str.strip()
    blank = values == ""
    parts = values.str.extract(_AGE)
    bad = ~blank & parts["number"].isna()
    if not units:
        bad |= ~blank & (parts["unit"] != "")
    fail_where(
        bad.to_numpy()[codes],
        pd.Series(values.to_numpy(dtype=object)[codes], dtype="str"),
        file,
        column,
        rows,
        "is not an age; expected a non-negative number of years or an empty cell",
    )
    years = pd.to_numeric(parts["number"], errors="coerce").astype(np.float64)
    if units:
        divisor = parts["unit"].str.upper().map({"": 1.0, "Y": 1.0, "M": 12.0, "D": 365.25}).astype(np.float64)
        years = years / divisor
    return pd.Series(years.to_numpy()[codes], index=raw.index)


def parse_labels(
    frame: pd.DataFrame,
    classes: Sequence[str],
    allowed: tuple[float, ...],
    expected: str,
    file: Path,
    rows: np.ndarray,
    *,
    blank_allowed: bool,
) -> dict[str, np.ndarray]:
    """Parse label cells to float64 (empty → NaN), failing on any value outside `allowed`."""
    labels: dict[str, np.ndarray] = {}
    for name in classes:
        codes, uniques = distinct(frame[name])
        cells = uniques.str.strip()
        blank = (cells == "").to_numpy()
        values = pd.to_numeric(cells.where(~blank, None), errors="coerce").to_numpy(dtype=np.float64)
        parsed = ~np.isnan(values)
        bad = (~blank & ~parsed) | (parsed & ~np.isin(values, allowed))
        if not blank_allowed:
            bad |= blank
        if bad.any():
            shown = pd.Series(cells.to_numpy(dtype=object)[codes], dtype="str")
            fail_where(bad[codes], shown, file, name, rows, f"is not a label; expected {expected}")
        labels[name] = values[codes]
    return labels

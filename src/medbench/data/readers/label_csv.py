"""Reading a label CSV: every cell a string, each header name once, every row as long as the header.

Left to itself, `pandas.read_csv` accepts three broken files without a word: a row cut short (its
missing fields become empty cells, which a reader takes for labels "not mentioned"), a header that
names a column twice (the copy is renamed ``Edema.1`` and ignored) and data rows one field longer
than the header (the first column silently becomes the index). `read_csv` therefore parses the
file with ``header=None``, so that pandas holds every row to the header's width and refuses longer
ones, and counts the fields of every row on the raw bytes, so that short rows are refused too.

The count costs one `bytes.count` in the usual case (no quote character in the file): with no row
longer than the header, the file's commas add up to (width - 1) per row exactly when no row is
short. Otherwise the commas of each line are counted with NumPy and matched to pandas' own records
(the commas and line breaks inside quoted cells are taken off), so quoted fields stay correct.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import lzma
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.errors import SHOWN, DatasetError, shown

logger = logging.getLogger(__name__)

_DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
_PANDAS_TOO_LONG = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as a string (no NA guessing), the columns named by the stripped header.

    Refused: a repeated header name, a row with more or fewer fields than the header, a column
    without a header name that holds a value (an unnamed column with only empty cells, e.g. from a
    trailing comma on every line, is dropped). Fully blank lines are dropped; the index keeps each
    row's place (`file_rows`).
    """
    raw = _file_bytes(path)
    try:
        records = pd.read_csv(
            io.BytesIO(raw),
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        if raw.strip(b"\xef\xbb\xbf \t\r\n"):
            raise DatasetError(
                "the first line is blank; expected the header row on the first line", file=path, row=1
            ) from None
        raise DatasetError("file is empty; expected a header row and one row per image", file=path) from None
    except pd.errors.ParserError as err:
        raise _parser_error(err, path) from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"is not UTF-8 text ({err}); expected a UTF-8 CSV file", file=path) from err
    spellings = [str(name) for name in records.iloc[0]]
    names = [name.strip() for name in spellings]
    _check_unique_names(names, spellings, path)
    _check_field_counts(raw, records, names, path)
    frame = records.iloc[1:].set_axis(pd.RangeIndex(len(records) - 1), axis=0).set_axis(names, axis=1)
    frame = _drop_unnamed(frame, names, path)
    if frame.shape[1] == 0:
        return frame
    maybe_blank = (frame.iloc[:, 0] == "").to_numpy()
    if not maybe_blank.any():
        return frame
    blank = np.zeros(len(frame), dtype=bool)
    blank[maybe_blank] = (frame.loc[maybe_blank] == "").all(axis=1).to_numpy()
    return frame.loc[~blank] if blank.any() else frame


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed by suffix (``.gz``, ``.bz2``, ``.xz``, ``.zip``) as pandas would."""
    if not path.is_file():
        raise DatasetError("label file does not exist; expected a CSV file at this path", file=path)
    data = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix in _DECOMPRESS:
            return _DECOMPRESS[suffix](data)
        if suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                if len(members) != 1:
                    raise DatasetError(
                        f"zip archive holds {len(members)} files; expected exactly one CSV file", file=path
                    )
                return archive.read(members[0])
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise DatasetError(
            f"cannot be decompressed as a {suffix} file ({type(err).__name__}: {str(err)[:SHOWN]}); "
            f"expected a complete {suffix} file (was a download interrupted?)",
            file=path,
        ) from None
    return data


def _parser_error(err: pd.errors.ParserError, path: Path) -> DatasetError:
    """pandas' tokenizer error as one line naming the row; a row longer than the header is the usual one."""
    text = " ".join(str(err).split())
    match = _PANDAS_TOO_LONG.search(text)
    if match:
        width, row, fields = (int(group) for group in match.groups())
        return DatasetError(_too_long(fields, width), file=path, row=row)
    return DatasetError(
        f"is not a well-formed CSV file ({text[:SHOWN]}); expected the same number of fields on every row",
        file=path,
    )


def _check_unique_names(names: list[str], spellings: list[str], path: Path) -> None:
    """Refuse a header naming a column twice (compared after stripping surrounding whitespace)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            continue
        if name not in seen:
            seen[name] = position
            continue
        first = seen[name]
        spelt = ""
        if spellings[first] != spellings[position]:
            spelt = (
                f", spelt {shown(str(spellings[first]))} and {shown(str(spellings[position]))}: "
                "names are compared without surrounding whitespace"
            )
        raise DatasetError(
            f"the header names this column twice (columns {first + 1} and {position + 1}{spelt}); "
            "expected each column name once",
            file=path,
            row=1,
            column=name,
        )


def _check_field_counts(raw: bytes, records: pd.DataFrame, names: list[str], path: Path) -> None:
    """Refuse the first row with fewer (or more) fields than the header, counting all such rows."""
    width, count = len(names), len(records)
    if width == 1:
        return
    if b'"' not in raw:
        missing = (width - 1) * count - raw.count(b",")
        if missing == 0 or missing == (width - 1) * _trailing_empty_lines(raw, records):
            return
    fields = _fields_per_record(raw, records)
    if fields is None:
        fields = _fields_by_csv_module(raw, count)
    if fields is None:
        logger.warning("%s: could not match its lines to CSV records; its field counts were not checked", path)
        return
    wrong = (fields != 0) & (fields != width)
    if not wrong.any():
        return
    first = int(np.argmax(wrong))
    found = int(fields[first])
    others = int(wrong.sum()) - 1
    more = f" ({others + 1} rows have a wrong number of fields; the first is shown)" if others else ""
    if found > width:
        raise DatasetError(_too_long(found, width) + more, file=path, row=first + 1)
    name = names[found]
    onward = f"column {shown(str(name))}" if name else f"column {found + 1} (unnamed)"
    raise DatasetError(
        f"the row has {found} fields, the header has {width}, so this is not a well-formed CSV file; expected "
        f"every row to have all {width} fields ({onward} onward is missing: was the row cut short?){more}",
        file=path,
        row=first + 1,
        column=name or None,
    )


def _too_long(fields: int, width: int) -> str:
    """The problem of a row with more fields than the header."""
    return (
        f"the row has {fields} fields, the header has {width}, so this is not a well-formed CSV file; expected "
        f"every row to have the header's {width} fields (a trailing comma, or an unquoted comma inside a value?)"
    )


def _trailing_empty_lines(raw: bytes, records: pd.DataFrame) -> int:
    """How many empty lines end the file (0 unless pandas read that many blank records at its end)."""
    tail = raw[len(raw.rstrip(b"\r\n")) :]
    empty = max(tail.count(b"\n") - 1, 0)
    if empty == 0 or empty >= len(records):
        return 0
    last = records.iloc[-empty:]
    return empty if bool((last == "").all(axis=None)) else 0


def _fields_per_record(raw: bytes, records: pd.DataFrame) -> np.ndarray | None:
    """Fields of each record (0 for an empty line), from the commas of each line; None if lines and records disagree.

    A record spans one line plus one per line break inside its cells; its separators are its lines'
    commas less the commas inside its cells. Only files with a quote character look at the cells.
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    breaks = np.flatnonzero(data == ord("\n"))
    ends = breaks if len(breaks) and breaks[-1] == len(data) - 1 else np.append(breaks, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1))
    commas = np.flatnonzero(data == ord(","))
    per_line = np.diff(np.searchsorted(commas, ends), prepend=0)
    lengths = ends - starts
    lone_cr = np.zeros(len(starts), dtype=bool)
    single = np.flatnonzero(lengths == 1)
    lone_cr[single] = data[starts[single]] == ord("\r")
    empty_line = (lengths == 0) | lone_cr
    if b'"' in raw:
        inner_commas = np.zeros(len(records), dtype=np.int64)
        inner_breaks = np.zeros(len(records), dtype=np.int64)
        for position in range(records.shape[1]):
            cells = records.iloc[:, position]
            inner_commas += cells.str.count(",").to_numpy(dtype=np.int64)
            inner_breaks += cells.str.count("\n").to_numpy(dtype=np.int64)
    else:
        inner_commas = inner_breaks = np.zeros(len(records), dtype=np.int64)
    spans = inner_breaks + 1
    if int(spans.sum()) != len(starts):
        return None
    last = np.cumsum(spans) - 1
    first = last - inner_breaks
    cumulative = np.concatenate(([0], np.cumsum(per_line)))
    separators = cumulative[last + 1] - cumulative[first] - inner_commas
    fields = separators + 1
    fields[(spans == 1) & empty_line[first]] = 0
    return fields


def _fields_by_csv_module(raw: bytes, count: int) -> np.ndarray | None:
    """Fields of each record by Python's `csv` module: only for files whose lines `_fields_per_record` cannot match."""
    text = raw.decode("utf-8-sig")
    fields = np.fromiter((len(row) for row in csv.reader(io.StringIO(text, newline=""))), dtype=np.int64)
    return fields if len(fields) == count else None


def _drop_unnamed(frame: pd.DataFrame, names: list[str], path: Path) -> pd.DataFrame:
    """Drop the columns without a header name, refusing one that holds a value (its meaning is unknown)."""
    unnamed = [position for position, name in enumerate(names) if not name]
    if not unnamed:
        return frame
    for position in unnamed:
        cells = frame.iloc[:, position]
        filled = (cells.str.strip() != "").to_numpy()
        if filled.any():
            row = int(np.argmax(filled))
            raise DatasetError(
                f"column {position + 1} has no name in the header but holds {shown(str(cells.iloc[row]))}; expected a "
                "header name for every column that holds values (an unnamed column of empty cells, as a "
                "trailing comma on every line makes, is ignored)",
                file=path,
                row=int(frame.index[row]) + 2,
            )
    return frame.iloc[:, [position for position, name in enumerate(names) if name]]

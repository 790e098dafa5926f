"""Boxes of where a finding is, in NIH's `BBox_List_2017.csv` format, and how well a map points at them.

NIH's file has the header ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` (the bracketed name spans four
columns, then three empty ones) and rows of six values: the image's file name, the finding and the box
in pixels of the image (x, y the top-left corner, w, h its size). The demo writes its boxes the same way,
the image named by its path relative to the dataset root. An image given by path takes the rows whose
Image Index is its name, or its path's tail.

Two checks per map and box (Zhang et al.'s pointing game, and the share of the map's mass): the map's
maximum lies inside the box (a hit), and how much of the map's positive part above its floor lies inside
it. NumPy only: no TensorFlow.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medbench.errors import DatasetError

BOX_FILE = "BBox_List_2017.csv"
BOX_HEADER = ("Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", "")
"""NIH's header as the csv module reads it: "Bbox [x,y,w,h]" spans four columns, then three empty ones."""
BOX_EXPECTED = "expected NIH's BBox_List_2017.csv format: Image Index,Finding Label,Bbox [x,y,w,h],,,"


@dataclass(frozen=True)
class Box:
    """Where one finding is in one image: x, y (top-left corner), w, h in pixels of that image."""

    image: str
    label: str
    x: float
    y: float
    w: float
    h: float

    def moved(self, left: float, top: float, scale_x: float, scale_y: float) -> Box:
        """The box in another frame: shifted by (-left, -top), then scaled (a crop, then a resize)."""
        return Box(
            self.image,
            self.label,
            (self.x - left) * scale_x,
            (self.y - top) * scale_y,
            self.w * scale_x,
            self.h * scale_y,
        )


def box_file_text(boxes: Iterable[Box]) -> str:
    """The CSV text of `boxes` in NIH's format (header and six values a row; whole pixels without ".0")."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(BOX_HEADER)
    for box in boxes:
        values = [int(value) if float(value).is_integer() else value for value in (box.x, box.y, box.w, box.h)]
        writer.writerow([box.image, box.label, *values])
    return stream.getvalue()


def read_boxes(path: str | os.PathLike[str]) -> list[Box]:
    """The boxes of a box file; DatasetError naming the file, row and column of anything else."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(
            f"cannot be read ({type(error).__name__}: {str(error)[:200]}); {BOX_EXPECTED}", file=path
        ) from None
    if not rows or [cell.strip() for cell in rows[0][:2]] != list(BOX_HEADER[:2]):
        header = ",".join(rows[0])[:120] if rows else "nothing"
        raise DatasetError(f"starts with {header!r}; {BOX_EXPECTED}", file=path, row=1)
    boxes = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 6 or any(cell.strip() for cell in row[6:]):
            raise DatasetError(
                f"holds {len(row)} values: expected 6 (image, finding, x, y, w, h)", file=path, row=number
            )
        values = []
        for column, cell in zip(("x", "y", "w", "h"), row[2:6]):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or (column in ("w", "h") and value <= 0):
                wanted = "a positive number of pixels" if column in ("w", "h") else "a number of pixels"
                raise DatasetError(f"{cell[:40]!r}: expected {wanted}", file=path, row=number, column=column)
            values.append(value)
        if not row[0].strip() or not row[1].strip():
            raise DatasetError("has an empty Image Index or Finding Label", file=path, row=number)
        boxes.append(Box(row[0].strip(), row[1].strip(), *values))
    return boxes


def boxes_of(boxes: Sequence[Box], image: str | os.PathLike[str], label: str | None = None) -> list[Box]:
    """The boxes of `image` (matched by name or path tail) and, when given, of the finding `label` (any case)."""
    path = Path(image).absolute().as_posix()
    found = []
    for box in boxes:
        index = box.image.replace("\\", "/").removeprefix("./")
        if (path == index or path.endswith("/" + index.lstrip("/"))) and (
            label is None or box.label.casefold() == label.casefold()
        ):
            found.append(box)
    return found


def box_mask(boxes: Sequence[Box], shape: Sequence[int]) -> np.ndarray:
    """A (height, width) mask of the pixels whose centres lie in any of `boxes` (given in that image's pixels)."""
    height, width = int(shape[0]), int(shape[1])
    rows = np.arange(height, dtype=np.float64)[:, np.newaxis] + 0.5
    columns = np.arange(width, dtype=np.float64)[np.newaxis, :] + 0.5
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        mask |= (rows >= box.y) & (rows <= box.y + box.h) & (columns >= box.x) & (columns <= box.x + box.w)
    return mask


def unit_map(saliency: np.ndarray) -> np.ndarray:
    """The map's positive part above its floor, scaled to [0, 1] (float64; all zeros for a flat map).

    The floor is the map's minimum when that is positive (RISE's offset) and 0 otherwise, so signed maps
    (integrated gradients, occlusion) keep their positive evidence and non-negative ones are min-max scaled.
    """
    values = np.nan_to_num(np.asarray(saliency, dtype=np.float64))
    floor = max(float(values.min()), 0.0)
    span = float(values.max()) - floor
    if span <= 0:
        return np.zeros_like(values)
    return np.clip((values - floor) / span, 0.0, 1.0)


def pointing_hit(saliency: np.ndarray, mask: np.ndarray) -> bool:
    """The pointing game: is the map's (first) maximum inside `mask`? A flat map points nowhere (a miss)."""
    values = np.nan_to_num(np.asarray(saliency, dtype=np.float64))
    if values.shape != mask.shape:
        raise DatasetError(f"a map of shape {values.shape} against a box mask of shape {mask.shape}: expected equal")
    if values.max() <= values.min():
        return False
    return bool(mask.flat[int(np.argmax(values))])


def mass_share(saliency: np.ndarray, mask: np.ndarray) -> float:
    """The share of `unit_map(saliency)`'s mass inside `mask` (0 for a flat map)."""
    unit = unit_map(saliency)
    total = float(unit.sum())
    return float(unit[mask].sum() / total) if total > 0 else 0.0


@dataclass(frozen=True)
class BoxScore:
    """One map checked against the boxes of its finding in its image."""

    image: str
    method: str
    label: str
    hit: bool
    mass: float


def summarise(scores: Sequence[BoxScore]) -> list[dict[str, object]]:
    """Per method and finding, then per method over all findings ("all"): n, hits, hit rate, mean mass share."""
    groups: dict[tuple[str, str], list[BoxScore]] = {}
    for score in scores:
        groups.setdefault((score.method, score.label), []).append(score)
        groups.setdefault((score.method, "all"), []).append(score)
    rows = []
    for (method, label), members in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1] == "all", item[0][1])
    ):
        rows.append(
            {
                "method": method,
                "class": label,
                "n": len(members),
                "hits": sum(member.hit for member in members),
                "hit_rate": sum(member.hit for member in members) / len(members),
                "mass_share": float(np.mean([member.mass for member in members])),
            }
        )
    return rows

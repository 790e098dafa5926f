"""The demo: a synthetic CheXpert look-alike, the job behind `make demo`, and runs for the notebooks.

`write_demo_dataset` writes the exact CheXpert-v1.0-small layout in seconds, so every part of medbench
(loaders, label policies, pipeline, training, evaluation) runs end to end without downloading
anything. Each image is a noisy, chest-like grayscale picture; each finding present in the study is
painted as its own pattern (a blob, ring, stripes, dots, a band, a line or a corner mark) in its own
place, and findings occur independently of each other. Where each one is painted is written as a box
(NIH's `BBox_List_2017.csv` format, one file in `train/` and one in `valid/`), so that explanation maps
can be checked against it. The five competition classes use large patterns that a small CNN learns at
32-64 px within a couple of epochs. Labels are written like
CheXpert's: the training CSV mixes 1.0, 0.0, -1.0 (uncertain) and blanks (not mentioned), while the
validation CSV holds only 1.0 and 0.0, like the radiologist-labelled original.

`run_demo` is `make demo`: demo data → a small batch → per-epoch re-evaluation → leaderboard.
`ensure_runs` gives the notebooks completed runs to look at, training a tiny batch only when there
are none.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.predefined import grid
from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.vocabulary import DEFAULT_ARCHITECTURE, IMAGE_SIZE, SEED
from medbench.data.datasets import CHEXPERT_PATHOLOGIES
from medbench.data.readers import CHEXPERT_CLASSES, CHEXPERT_METADATA_COLUMNS
from medbench.errors import ConfigError, DatasetError
from medbench.experiment_exec import run_batch
from medbench.runs import SavedRun, find_runs
from medbench.settings import Settings
from medbench.tracking.logs import all_entries
from medbench.xai.localization import BOX_FILE, Box, box_file_text

logger = logging.getLogger(__name__)

__all__ = [
    "DEMO_BENCHMARKS",
    "DEMO_FOLDER",
    "PREVALENCE",
    "QUICK_BENCHMARKS",
    "completed_runs",
    "ensure_demo_data",
    "ensure_runs",
    "run_demo",
    "write_demo_dataset",
]

DEMO_FOLDER = "CheXpert-v1.0-small"
"""The folder the demo writes under its root, named like the real dataset."""
DEMO_MARKER = ".medbench-demo"
"""The file that marks a DEMO_FOLDER as written by medbench (only such a folder is ever replaced)."""

PREVALENCE: dict[str, float] = {
    "Enlarged Cardiomediastinum": 0.12,
    "Cardiomegaly": 0.30,
    "Lung Opacity": 0.35,
    "Lung Lesion": 0.10,
    "Edema": 0.30,
    "Consolidation": 0.30,
    "Pneumonia": 0.10,
    "Atelectasis": 0.30,
    "Pneumothorax": 0.12,
    "Pleural Effusion": 0.35,
    "Pleural Other": 0.06,
    "Fracture": 0.08,
    "Support Devices": 0.45,
}
"""Probability that a study shows each finding (drawn independently); No Finding follows from them."""

DEMO_BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark.from_name("demo_BCE_E5_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam"),
    Benchmark.from_name("demo_WBCE_E5_B16_C0_N5_AugAffine_Uone_D64_DS8020_1LR3_LF5_Adam"),
)
"""The batch of `make demo`, trained with the default architecture."""

QUICK_BENCHMARKS: tuple[Benchmark, ...] = tuple(
    grid(Benchmark.from_name("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), loss=["BCE", "WBCE"])
)
"""Two 32 px, 2-epoch benchmarks on the demo data (seconds each on a CPU), for the notebooks."""

MAX_PATIENTS = 10_000
"""The most patients per split the demo writes (about 23,000 images, some minutes on two cores)."""
_JPEG_QUALITY = 90
BOX_FRACTION = 0.05
"""A finding's box bounds the pixels where its pattern exceeds this fraction of its own peak."""
_LATERAL_PROBABILITY = 0.3
_MAX_EXTRA_STUDIES = 2
_EXTRA_STUDY_PROBABILITY = 0.35
# How the training CSV reports a finding: given present / absent, P(1.0, -1.0) and P(blank, 0.0, -1.0).
_REPORT_PRESENT = (0.8, 0.2)
_REPORT_ABSENT = (0.62, 0.28, 0.10)


@dataclass(frozen=True)
class _Image:
    """One image to write: where, which view, which findings it shows, and its own random seed."""

    relative_path: str
    frontal: bool
    findings: tuple[str, ...]
    seed: tuple[int, ...]


def write_demo_dataset(
    out_dir: str | os.PathLike[str],
    *,
    n_train_patients: int = 200,
    n_valid_patients: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (320, 390),
    overwrite: bool = False,
    workers: int = 2,
) -> Path:
    """Write the synthetic dataset under `out_dir` and return `out_dir` (the folder holding ``CheXpert-v1.0-small``).

    `size` is (width, height) of every image. The output is a pure function of the arguments: the
    same seed writes the same bytes. An existing ``CheXpert-v1.0-small`` folder is replaced only with
    `overwrite`; the new one is assembled beside it and moved into place when complete.
    """
    for what, count in (("training patients", n_train_patients), ("validation patients", n_valid_patients)):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or not 1 <= count <= MAX_PATIENTS:
            raise ConfigError(f"{what} {count!r}: expected a whole number in 1..{MAX_PATIENTS}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not SEED.low <= seed <= SEED.high:
        raise ConfigError(f"seed {seed!r} is not allowed; expected a whole number in {SEED}")
    width, height = (int(value) for value in size)
    if not (32 <= width <= IMAGE_SIZE.high and 32 <= height <= IMAGE_SIZE.high):
        raise ConfigError(f"size {size!r}: expected (width, height) of 32..{IMAGE_SIZE.high} px each")
    root = Path(out_dir)
    target = root / DEMO_FOLDER
    if target.is_symlink():
        raise DatasetError(
            f"is a symbolic link (to {os.readlink(target)}); medbench never writes through or replaces one, "
            f"expected no {DEMO_FOLDER} here",
            file=target,
        )
    if target.exists():
        if not (target / DEMO_MARKER).is_file():
            raise DatasetError(
                f"is not a demo dataset medbench wrote (it has no {DEMO_MARKER} marker): it may be a real "
                "CheXpert download, so medbench never replaces it, even with overwrite; expected no "
                f"{DEMO_FOLDER} folder here. Move it away or write the demo data to another folder",
                file=target,
            )
        if not overwrite:
            raise DatasetError(
                "already holds medbench's demo dataset; pass overwrite=True (medbench demo-data --overwrite) "
                "to replace it",
                file=target,
            )
    started = time.perf_counter()
    rng = np.random.default_rng([seed, 0])
    train_rows, train_images = _patients(rng, seed, "train", range(1, n_train_patients + 1), training=True)
    first_valid = n_train_patients + 1
    valid_rows, valid_images = _patients(
        rng, seed, "valid", range(first_valid, first_valid + n_valid_patients), training=False
    )
    images = train_images + valid_images

    staging = root / f".{DEMO_FOLDER}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / DEMO_MARKER).write_text(
        f"written by medbench.demo.write_demo_dataset (seed {seed}, {width}x{height} px); "
        "medbench demo-data --overwrite replaces only a folder with this file\n",
        encoding="utf-8",
    )
    _write_csv(staging / "train.csv", train_rows)
    _write_csv(staging / "valid.csv", valid_rows)
    painter = _Painter(width, height)

    def write(image: _Image) -> list[Box]:
        path = staging / image.relative_path.removeprefix(f"{DEMO_FOLDER}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels, places = painter.paint_with_boxes(np.random.default_rng(image.seed), image.frontal, image.findings)
        Image.fromarray(pixels).save(path, format="JPEG", quality=_JPEG_QUALITY)
        return [Box(image.relative_path, *place) for place in places]

    logger.info("writing %d synthetic images (%d x %d px) to %s", len(images), width, height, target)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        boxes = list(tqdm(pool.map(write, images), total=len(images), desc="demo images", unit="img"))
    for split in ("train", "valid"):
        listed = [box for placed in boxes for box in placed if box.image.startswith(f"{DEMO_FOLDER}/{split}/")]
        (staging / split / BOX_FILE).write_text(box_file_text(listed), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    logger.info(
        "demo dataset: %d training rows, %d validation rows in %.1f s",
        len(train_rows),
        len(valid_rows),
        time.perf_counter() - started,
    )
    return root


# --------------------------------------------------------------------------------------------------
# Patients, studies and label rows
# --------------------------------------------------------------------------------------------------


def _patients(
    rng: np.random.Generator, seed: int, split: str, numbers: range, *, training: bool
) -> tuple[list[list[str]], list[_Image]]:
    """CSV rows and image jobs for the patients `numbers` of one split.

    Training patients have one to three studies with noisy labels; validation patients have one
    study labelled exactly, like CheXpert's radiologist-labelled validation set.
    """
    rows: list[list[str]] = []
    images: list[_Image] = []
    split_code = 1 if split == "train" else 2
    for number in numbers:
        sex = rng.choice(("Male", "Female", "Unknown"), p=(0.55, 0.44, 0.01))
        age = int(np.clip(rng.normal(62, 17), 18, 90))
        n_studies = 1 + (rng.binomial(_MAX_EXTRA_STUDIES, _EXTRA_STUDY_PROBABILITY) if training else 0)
        for study in range(1, n_studies + 1):
            present = tuple(name for name, p in PREVALENCE.items() if rng.random() < p)
            labels = _reported_labels(rng, present, training=training)
            views = ["frontal"] + (["lateral"] if rng.random() < _LATERAL_PROBABILITY else [])
            for index, view in enumerate(views, start=1):
                relative = f"{DEMO_FOLDER}/{split}/patient{number:05d}/study{study}/view{index}_{view}.jpg"
                frontal = view == "frontal"
                rows.append(
                    [
                        relative,
                        str(sex),
                        str(min(age + study - 1, 90)),
                        view.capitalize(),
                        _projection(rng, frontal),
                        *labels,
                    ]
                )
                images.append(_Image(relative, frontal, present, (seed, split_code, number, study, index)))
    return rows, images


def _projection(rng: np.random.Generator, frontal: bool) -> str:
    """The ``AP/PA`` cell: mostly AP/PA for frontal views, mostly empty (some LL/RL) for laterals."""
    if frontal:
        return str(rng.choice(("AP", "PA", ""), p=(0.74, 0.24, 0.02)))
    return str(rng.choice(("", "LL", "RL"), p=(0.88, 0.08, 0.04)))


def _reported_labels(rng: np.random.Generator, present: tuple[str, ...], *, training: bool) -> list[str]:
    """The 14 label cells of a study, in CheXpert's column order: noisy for training, exact otherwise."""
    cells: dict[str, str] = {}
    for name in CHEXPERT_CLASSES[1:]:
        if not training:
            cells[name] = "1.0" if name in present else "0.0"
        elif name in present:
            cells[name] = str(rng.choice(("1.0", "-1.0"), p=_REPORT_PRESENT))
        else:
            cells[name] = str(rng.choice(("", "0.0", "-1.0"), p=_REPORT_ABSENT))
    normal = not any(name in present for name in CHEXPERT_PATHOLOGIES)
    cells["No Finding"] = "1.0" if normal else ("" if training else "0.0")
    return [cells[name] for name in CHEXPERT_CLASSES]


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*CHEXPERT_METADATA_COLUMNS, *CHEXPERT_CLASSES])
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------


class _Painter:
    """Paints chest-like backgrounds and one pattern per finding on a fixed pixel grid.

    Geometry is given in fractions of the width (x) and height (y), so any `size` works.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.x = xs / width
        self.y = ys / height
        self.aspect = height / width
        self.patterns: dict[str, Callable[[float, float], np.ndarray]] = {
            "Enlarged Cardiomediastinum": lambda dx, dy: 45 * self._box(0.41 + dx, 0.59 + dx, 0.14 + dy, 0.42 + dy),
            "Cardiomegaly": lambda dx, dy: 55 * self._disk(0.52 + dx, 0.66 + dy, 0.14),
            "Lung Opacity": lambda dx, dy: 55 * self._gauss(0.29 + dx, 0.33 + dy, 0.07),
            "Lung Lesion": lambda dx, dy: 80 * self._ring(0.72 + dx, 0.17 + dy, 0.05, 0.014),
            "Edema": lambda dx, dy: (
                55 * self._box(0.12 + dx, 0.88 + dx, 0.47 + dy, 0.57 + dy) * self._stripes(0.0, 0.03)
            ),
            "Consolidation": lambda dx, dy: 80 * self._ellipse(0.28 + dx, 0.64 + dy, 0.09, 0.06, soft=0.15),
            "Pneumonia": lambda dx, dy: 75 * self._box(0.63 + dx, 0.83 + dx, 0.59 + dy, 0.70 + dy) * self._dots(0.035),
            "Atelectasis": lambda dx, dy: (
                60 * self._box(0.60 + dx, 0.85 + dx, 0.29 + dy, 0.44 + dy) * self._stripes(1.0, 0.05)
            ),
            "Pneumothorax": lambda dx, dy: -55 * self._ellipse(0.29 + dx, 0.19 + dy, 0.11, 0.05, soft=0.3),
            "Pleural Effusion": lambda dx, dy: (
                70
                * self._box(0.12 + dx, 0.88 + dx, 0.74 + dy, 0.85 + dy)
                * np.clip((self.y - 0.70 - dy) / 0.12, 0.3, 1.0)
            ),
            "Pleural Other": lambda dx, dy: 75 * self._segment((0.92 + dx, 0.25 + dy), (0.92 + dx, 0.70 + dy), 0.007),
            "Fracture": lambda dx, dy: (
                85
                * np.maximum(
                    self._segment((0.06 + dx, 0.06 + dy), (0.16 + dx, 0.14 + dy), 0.008),
                    self._segment((0.16 + dx, 0.06 + dy), (0.06 + dx, 0.14 + dy), 0.008),
                )
            ),
            "Support Devices": lambda dx, dy: (
                95
                * np.maximum(
                    self._segment((0.56 + dx, 0.0), (0.50 + dx, 0.52 + dy), 0.006),
                    self._box(0.88, 0.95, 0.03, 0.09, soft=0.0),
                )
            ),
        }

    def paint(self, rng: np.random.Generator, frontal: bool, findings: tuple[str, ...]) -> np.ndarray:
        """One grayscale image (uint8, height x width)."""
        return self.paint_with_boxes(rng, frontal, findings)[0]

    def paint_with_boxes(
        self, rng: np.random.Generator, frontal: bool, findings: tuple[str, ...]
    ) -> tuple[np.ndarray, list[tuple[str, int, int, int, int]]]:
        """One grayscale image and (finding, x, y, w, h) of each pattern painted, from the same random draws."""
        dx, dy = rng.uniform(-0.025, 0.025, size=2)
        picture = self._frontal(dx, dy) if frontal else self._lateral(dx, dy)
        picture = picture * rng.uniform(0.9, 1.1) + self._smooth_noise(rng, 14.0)
        places: list[tuple[str, int, int, int, int]] = []
        for name in findings:
            strength = rng.uniform(0.8, 1.2)
            pattern = self.patterns[name](dx, dy)
            picture += strength * pattern
            if (extent := self._extent(pattern)) is not None:
                places.append((name, *extent))
        picture += rng.normal(0.0, 7.0, size=picture.shape).astype(np.float32)
        return np.clip(np.rint(picture), 0, 255).astype(np.uint8), places

    @staticmethod
    def _extent(pattern: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) in pixels bounding where |pattern| exceeds BOX_FRACTION of its peak (None: nothing painted)."""
        peak = float(np.abs(pattern).max())
        if peak <= 0:
            return None
        strong = np.abs(pattern) > BOX_FRACTION * peak
        rows, columns = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
        return int(columns[0]), int(rows[0]), int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1)

    def _frontal(self, dx: float, dy: float) -> np.ndarray:
        body = 95 * self._ellipse(0.5 + dx, 0.56 + dy, 0.46, 0.50, soft=0.12)
        lungs = -60 * (
            self._ellipse(0.30 + dx, 0.44 + dy, 0.15, 0.30, soft=0.25)
            + self._ellipse(0.70 + dx, 0.44 + dy, 0.15, 0.30, soft=0.25)
        )
        spine = 35 * self._box(0.47 + dx, 0.53 + dx, 0.0, 1.0, soft=0.01)
        heart = 35 * self._ellipse(0.55 + dx, 0.63 + dy, 0.12, 0.09, soft=0.4)
        return 25 + body + lungs + spine + heart

    def _lateral(self, dx: float, dy: float) -> np.ndarray:
        body = 100 * self._ellipse(0.5 + dx, 0.55 + dy, 0.44, 0.48, soft=0.12)
        lung = -55 * self._ellipse(0.47 + dx, 0.45 + dy, 0.28, 0.30, soft=0.3)
        spine = 40 * self._box(0.78 + dx, 0.86 + dx, 0.1, 1.0, soft=0.01)
        return 25 + body + lung + spine

    def _smooth_noise(self, rng: np.random.Generator, amplitude: float) -> np.ndarray:
        coarse = rng.normal(0.0, amplitude, size=(6, 5)).astype(np.float32)
        return np.asarray(Image.fromarray(coarse).resize((self.width, self.height), Image.Resampling.BILINEAR))

    def _ellipse(self, cx: float, cy: float, ax: float, ay: float, *, soft: float) -> np.ndarray:
        """1 inside, 0 outside, a linear edge of relative width `soft`."""
        distance = np.sqrt(((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2)
        return np.clip((1.0 - distance) / max(soft, 1e-6), 0.0, 1.0)

    def _disk(self, cx: float, cy: float, radius: float) -> np.ndarray:
        return self._ellipse(cx, cy, radius, radius / self.aspect, soft=0.15)

    def _gauss(self, cx: float, cy: float, sigma: float) -> np.ndarray:
        return np.exp(-(((self.x - cx) ** 2 + ((self.y - cy) * self.aspect) ** 2) / (2 * sigma**2)))

    def _ring(self, cx: float, cy: float, radius: float, thickness: float) -> np.ndarray:
        distance = np.sqrt((self.x - cx) ** 2 + ((self.y - cy) * self.aspect) ** 2)
        return np.clip(1.0 - np.abs(distance - radius) / thickness, 0.0, 1.0)

    def _box(self, x0: float, x1: float, y0: float, y1: float, *, soft: float = 0.02) -> np.ndarray:
        if soft <= 0:
            return ((self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)).astype(np.float32)
        inside_x = np.minimum(self.x - x0, x1 - self.x)
        inside_y = np.minimum(self.y - y0, y1 - self.y)
        return np.clip(np.minimum(inside_x, inside_y) / soft, 0.0, 1.0)

    def _stripes(self, slope: float, period: float) -> np.ndarray:
        """Stripes 0..1 along ``y + slope * x`` (0: horizontal), `period` in fractions of the height."""
        phase = (self.y * self.aspect + slope * self.x) / (period * self.aspect)
        return 0.5 + 0.5 * np.cos(2 * np.pi * phase)

    def _dots(self, spacing: float) -> np.ndarray:
        """A grid of soft dots, `spacing` apart (fractions of the width)."""
        u = np.cos(2 * np.pi * self.x / spacing)
        v = np.cos(2 * np.pi * self.y * self.aspect / spacing)
        return np.clip(u * v, 0.0, 1.0)

    def _segment(self, start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
        """A line from `start` to `end` (x, y fractions), `width` in fractions of the width."""
        px, py = self.x, self.y * self.aspect
        ax, ay = start[0], start[1] * self.aspect
        bx, by = end[0], end[1] * self.aspect
        vx, vy = bx - ax, by - ay
        t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0.0, 1.0)
        distance = np.sqrt((px - ax - t * vx) ** 2 + (py - ay - t * vy) ** 2)
        return np.clip(1.0 - distance / width, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# The demo job and runs for the notebooks
# --------------------------------------------------------------------------------------------------


def ensure_demo_data(settings: Settings, *, seed: int = 0) -> Path:
    """Write the demo dataset under <data dir>/demo unless it is already there."""
    root = settings.data_dir / "demo"
    if (root / DEMO_FOLDER / "train.csv").is_file() and (root / DEMO_FOLDER / "valid.csv").is_file():
        logger.info("demo data already at %s", root)
        return root
    return write_demo_dataset(root, seed=seed)


def run_demo(settings: Settings | None = None) -> str:
    """Run the whole demo and return the leaderboard text of its runs."""
    from medbench.leaderboard import format_leaderboard, leaderboard
    from medbench.reevaluation import reevaluate

    settings = settings or Settings.from_env()
    started = time.time()
    ensure_demo_data(settings)
    entries = run_batch([ExperimentSpec(benchmark, DEFAULT_ARCHITECTURE) for benchmark in DEMO_BENCHMARKS], settings)
    completed = [entry for entry in entries if entry["status"] == "completed"]
    reevaluate(settings, [entry["id"] for entry in completed], epochs=True)
    board = format_leaderboard(leaderboard(completed))
    logger.info(
        "demo finished in %.0f s (%d of %d runs completed)", time.time() - started, len(completed), len(entries)
    )
    return board


def completed_runs(settings: Settings) -> list[SavedRun]:
    """Saved runs that finished (their folder holds result.json)."""
    return [run for run in find_runs(settings.models_dir) if run.run_dir.is_complete()]


def ensure_runs(settings: Settings, *, progress: bool = True) -> list[SavedRun]:
    """The completed runs; when there are none (or no completed log entry), run the quick demo batch first.

    The demo data is written under `<data dir>/demo` if it is missing.
    """
    runs = completed_runs(settings)
    logged = [entry for entry in all_entries(settings.logs_dir) if entry.get("status", "completed") == "completed"]
    if runs and logged:
        return runs
    logger.info("no completed runs under %s: running the quick demo batch", settings.models_dir)
    ensure_demo_data(settings)
    run_batch(
        [ExperimentSpec(benchmark, DEFAULT_ARCHITECTURE) for benchmark in QUICK_BENCHMARKS], settings, progress=progress
    )
    return completed_runs(settings)

"""The synthetic CheXpert look-alike: patients, studies, label rows, images and their box files.

`write_demo_dataset` writes the exact CheXpert-v1.0-small layout in seconds, so every part of medbench
(loaders, label policies, pipeline, training, evaluation) runs end to end without downloading
anything. Each image is a noisy, chest-like grayscale picture; each finding present in the study is
painted as its own pattern (a blob, ring, stripes, dots, a band, a line or a corner mark) in its own
place, and findings occur independently of each other. Where each one is painted is written as a box
(NIH's `BBox_List_2017.csv` format, one file in `train/` and one in `valid/`), so that explanation maps
can be checked against it. At the "easy" difficulty the five competition classes use large patterns
that a small CNN learns at 32-64 px within a couple of epochs. Labels are written like CheXpert's: the
training CSV mixes 1.0, 0.0, -1.0 (uncertain) and blanks (not mentioned), while the validation CSV
holds only 1.0 and 0.0, like the radiologist-labelled original.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from medbench.benchmark.vocabulary import IMAGE_SIZE, SEED
from medbench.data.datasets import CHEXPERT_PATHOLOGIES
from medbench.data.readers import CHEXPERT_CLASSES, CHEXPERT_METADATA_COLUMNS
from medbench.demo.difficulty import DemoDifficulty, get_difficulty
from medbench.demo.painter import Painter
from medbench.errors import ConfigError, DatasetError
from medbench.xai.localization import BOX_FILE, Box, box_file_text

logger = logging.getLogger(__name__)

DEMO_FOLDER = "CheXpert-v1.0-small"
"""The folder the demo writes under its root, named like the real dataset."""
DEMO_MARKER = ".medbench-demo"
"""The file that marks a DEMO_FOLDER as written by medbench (only such a folder is ever replaced)."""
MARKER_DIFFICULTY = "difficulty: "
"""The marker's line that records the difficulty the data was written with (JSON after it)."""

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

MAX_PATIENTS = 10_000
"""The most patients per split the demo writes (about 23,000 images, some minutes on two cores)."""
_JPEG_QUALITY = 90
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
    difficulty: str | DemoDifficulty = "easy",
) -> Path:
    """Write the synthetic dataset under `out_dir` and return `out_dir` (the folder holding ``CheXpert-v1.0-small``).

    `size` is (width, height) of every image. The output is a pure function of the arguments: the
    same seed writes the same bytes. An existing ``CheXpert-v1.0-small`` folder is replaced only with
    `overwrite`; the new one is assembled beside it and moved into place when complete. `difficulty`
    (a preset name or a DemoDifficulty) sets pattern contrast, pixel noise and training label noise; it is
    recorded in the folder's marker file.
    """
    level = get_difficulty(difficulty)
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
    train_rows, train_images = _patients(rng, seed, "train", range(1, n_train_patients + 1), level.label_noise)
    first_valid = n_train_patients + 1
    valid_rows, valid_images = _patients(rng, seed, "valid", range(first_valid, first_valid + n_valid_patients), None)
    images = train_images + valid_images

    staging = root / f".{DEMO_FOLDER}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / DEMO_MARKER).write_text(
        f"written by medbench.demo.write_demo_dataset (seed {seed}, {width}x{height} px); "
        "medbench demo-data --overwrite replaces only a folder with this file\n"
        f"{MARKER_DIFFICULTY}{json.dumps(level.to_dict(), sort_keys=True)}\n",
        encoding="utf-8",
    )
    _write_csv(staging / "train.csv", train_rows)
    _write_csv(staging / "valid.csv", valid_rows)
    painter = Painter(width, height, contrast=level.contrast, noise=level.noise)

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
    rng: np.random.Generator, seed: int, split: str, numbers: range, label_noise: float | None
) -> tuple[list[list[str]], list[_Image]]:
    """CSV rows and image jobs for the patients `numbers` of one split.

    Training patients (`label_noise` a probability) have one to three studies with noisy labels;
    validation patients (`label_noise` None) have one study labelled exactly, like CheXpert's
    radiologist-labelled validation set.
    """
    training = label_noise is not None
    rows: list[list[str]] = []
    images: list[_Image] = []
    split_code = 1 if split == "train" else 2
    for number in numbers:
        sex = rng.choice(("Male", "Female", "Unknown"), p=(0.55, 0.44, 0.01))
        age = int(np.clip(rng.normal(62, 17), 18, 90))
        n_studies = 1 + (rng.binomial(_MAX_EXTRA_STUDIES, _EXTRA_STUDY_PROBABILITY) if training else 0)
        for study in range(1, n_studies + 1):
            present = tuple(name for name, p in PREVALENCE.items() if rng.random() < p)
            labels = _reported_labels(rng, present, label_noise)
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


def _reported_labels(rng: np.random.Generator, present: tuple[str, ...], label_noise: float | None) -> list[str]:
    """The 14 label cells of a study, in CheXpert's column order: noisy for training, exact otherwise.

    With label noise, each finding is reported as if its presence were flipped with that probability
    (no random draw is made without it, so the "easy" data stays byte-identical to the original demo).
    """
    training = label_noise is not None
    cells: dict[str, str] = {}
    for name in CHEXPERT_CLASSES[1:]:
        shown = name in present
        if label_noise and rng.random() < label_noise:
            shown = not shown
        if not training:
            cells[name] = "1.0" if shown else "0.0"
        elif shown:
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


def written_difficulty(root: Path) -> DemoDifficulty | None:
    """The difficulty recorded in the demo data under `root` (None: no demo data, or written before it was recorded)."""
    marker = root / DEMO_FOLDER / DEMO_MARKER
    try:
        lines = marker.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(MARKER_DIFFICULTY):
            try:
                return DemoDifficulty(**json.loads(line.removeprefix(MARKER_DIFFICULTY)))
            except (ValueError, TypeError, ConfigError):
                return None
    return DemoDifficulty() if lines else None

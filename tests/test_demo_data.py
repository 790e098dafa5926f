"""The synthetic demo dataset: CheXpert's exact layout, realistic labels, deterministic bytes."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medbench.data.datasets import CHEXPERT_COMPETITION_CLASSES, get_dataset, load_dataset
from medbench.data.readers import CHEXPERT_CLASSES, read_chexpert_csv
from medbench.demo import (
    DEMO_MARKER,
    DIFFICULTIES,
    PREVALENCE,
    DemoDifficulty,
    Painter,
    ensure_demo_data,
    get_difficulty,
    write_demo_dataset,
)
from medbench.demo.dataset import written_difficulty
from medbench.errors import ConfigError, DatasetError
from medbench.settings import Settings
from medbench.xai.localization import BOX_FILE, read_boxes

CHEXPERT_HEADER = [
    "Path",
    "Sex",
    "Age",
    "Frontal/Lateral",
    "AP/PA",
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The default-size demo dataset under data/demo, and how long writing it took."""
    data_dir = tmp_path_factory.mktemp("data")
    started = time.perf_counter()
    root = write_demo_dataset(data_dir / "demo")
    return root, time.perf_counter() - started


def raw_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_layout_and_timing(demo: tuple[Path, float]) -> None:
    root, seconds = demo
    assert seconds < 20, f"writing the default demo took {seconds:.1f} s"
    folder = root / "CheXpert-v1.0-small"
    assert sorted(p.name for p in folder.iterdir()) == [DEMO_MARKER, "train", "train.csv", "valid", "valid.csv"]
    assert (folder / "train" / "patient00001" / "study1" / "view1_frontal.jpg").is_file()
    train = raw_csv(folder / "train.csv")
    patients = train["Path"].str.extract(r"/(patient\d{5})/")[0]
    assert patients.nunique() == 200
    assert (
        train["Path"]
        .str.fullmatch(r"CheXpert-v1\.0-small/train/patient\d{5}/study\d/view\d_(frontal|lateral)\.jpg")
        .all()
    )
    assert (train["Path"].str.extract(r"/(study\d)/")[0] != "study1").any()  # several studies per patient
    assert train["Path"].str.endswith("view2_lateral.jpg").any()
    jpgs = sorted(p.relative_to(root).as_posix() for p in folder.rglob("*.jpg"))
    valid = raw_csv(folder / "valid.csv")
    assert jpgs == sorted([*train["Path"], *valid["Path"]])
    assert valid["Path"].str.startswith("CheXpert-v1.0-small/valid/").all()
    assert valid["Path"].str.extract(r"/(patient\d{5})/")[0].nunique() == 40
    assert not set(patients) & set(valid["Path"].str.extract(r"/(patient\d{5})/")[0])
    with Image.open(folder / "train" / "patient00001" / "study1" / "view1_frontal.jpg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (320, 390))


def test_csv_columns_and_label_mix(demo: tuple[Path, float]) -> None:
    folder = demo[0] / "CheXpert-v1.0-small"
    for name in ("train.csv", "valid.csv"):
        with open(folder / name, newline="", encoding="utf-8") as handle:
            assert next(csv.reader(handle)) == CHEXPERT_HEADER
    assert list(CHEXPERT_CLASSES) == CHEXPERT_HEADER[5:]
    train, valid = raw_csv(folder / "train.csv"), raw_csv(folder / "valid.csv")
    cells = train[list(CHEXPERT_CLASSES)].to_numpy().ravel()
    assert set(cells) == {"1.0", "0.0", "-1.0", ""}
    counts = pd.Series(cells).value_counts(normalize=True)
    assert all(counts[value] > 0.05 for value in ("1.0", "0.0", "-1.0", ""))
    assert set(valid[list(CHEXPERT_CLASSES)].to_numpy().ravel()) == {"1.0", "0.0"}
    assert set(train["Sex"]) <= {"Male", "Female", "Unknown"} and {"Male", "Female"} <= set(train["Sex"])
    assert set(train["Frontal/Lateral"]) == {"Frontal", "Lateral"}
    assert set(train["AP/PA"]) <= {"AP", "PA", "LL", "RL", ""} and {"AP", "PA", ""} <= set(train["AP/PA"])
    assert train["Age"].astype(int).between(18, 90).all()
    for name in CHEXPERT_COMPETITION_CLASSES:
        assert (train[name] == "1.0").sum() >= 60 and (valid[name] == "1.0").sum() >= 5


def test_loaders_read_it_back(demo: tuple[Path, float]) -> None:
    root = demo[0]
    table = read_chexpert_csv(root / "CheXpert-v1.0-small" / "train.csv", root)
    assert len(table) > 300 and table["patient_id"].nunique() == 200
    assert set(np.unique(table[list(CHEXPERT_CLASSES)].to_numpy())) >= {1.0, 0.0, -1.0}
    assert table[list(CHEXPERT_CLASSES)].isna().any().any()
    # A study's views share its labels, as in CheXpert.
    study = table["sample_id"].str.rpartition("/")[0]
    assert (table.groupby(study)[list(CHEXPERT_CLASSES)].nunique(dropna=False) == 1).all().all()
    train, test = load_dataset(get_dataset("demo"), root.parent)
    assert len(train) == len(table) and test is not None and len(test) >= 40
    assert not test[list(CHEXPERT_CLASSES)].isna().any().any()


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(root: Path) -> dict[str, str]:
        return {
            path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    options = {"n_train_patients": 8, "n_valid_patients": 3, "size": (96, 117)}
    first = digest(write_demo_dataset(tmp_path / "a", seed=5, **options))
    second = digest(write_demo_dataset(tmp_path / "b", seed=5, workers=1, **options))
    other = digest(write_demo_dataset(tmp_path / "c", seed=6, **options))
    assert first == second and len(first) > 10
    assert first != other
    with Image.open(
        tmp_path / "a" / "CheXpert-v1.0-small" / "train" / "patient00001" / "study1" / "view1_frontal.jpg"
    ) as image:
        assert image.size == (96, 117)


def test_existing_dataset_needs_overwrite(tmp_path: Path) -> None:
    options = {"n_train_patients": 2, "n_valid_patients": 1, "size": (64, 78)}
    write_demo_dataset(tmp_path, **options)
    with pytest.raises(DatasetError, match="already holds medbench's demo dataset; pass overwrite=True"):
        write_demo_dataset(tmp_path, **options)
    stale = tmp_path / "CheXpert-v1.0-small" / "stale.txt"
    stale.write_text("old")
    write_demo_dataset(tmp_path, overwrite=True, **options)
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["CheXpert-v1.0-small"]
    assert (tmp_path / "CheXpert-v1.0-small" / DEMO_MARKER).is_file()
    with pytest.raises(ValueError, match=r"validation patients 0: expected a whole number in 1\.\.10000"):
        write_demo_dataset(tmp_path / "x", n_valid_patients=0)


def test_each_finding_is_its_own_visible_pattern() -> None:
    """Every finding paints a strong pattern, in a place or shape no other finding shares."""
    painter = Painter(320, 390)
    patterns = {name: np.abs(painter.patterns[name](0.0, 0.0)).ravel() for name in PREVALENCE}
    for name, pattern in patterns.items():
        assert pattern.max() > 40, name
        for other, second in patterns.items():
            if other != name:
                overlap = pattern @ second / (np.linalg.norm(pattern) * np.linalg.norm(second))
                assert overlap < 0.3, f"{name} overlaps {other} ({overlap:.2f})"
    plain = painter.paint(np.random.default_rng(0), True, ())
    assert plain.dtype == np.uint8 and plain.shape == (390, 320) and plain.std() > 20


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_folder_medbench_did_not_write_is_never_replaced(tmp_path: Path, overwrite: bool) -> None:
    real = tmp_path / "CheXpert-v1.0-small"
    (real / "train" / "patient00001" / "study1").mkdir(parents=True)
    (real / "train.csv").write_text("Path,Sex\n")
    (real / "train" / "patient00001" / "study1" / "view1_frontal.jpg").write_bytes(b"a real radiograph")
    before = sorted((path.relative_to(tmp_path), path.read_bytes()) for path in real.rglob("*") if path.is_file())
    with pytest.raises(DatasetError, match="is not a demo dataset medbench wrote.*never replaces it"):
        write_demo_dataset(tmp_path, n_train_patients=2, n_valid_patients=1, size=(64, 78), overwrite=overwrite)
    after = sorted((path.relative_to(tmp_path), path.read_bytes()) for path in real.rglob("*") if path.is_file())
    assert after == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["CheXpert-v1.0-small"]


def test_a_symlinked_demo_folder_is_left_alone(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_demo_dataset(elsewhere, n_train_patients=2, n_valid_patients=1, size=(64, 78))
    out = tmp_path / "out"
    out.mkdir()
    (out / "CheXpert-v1.0-small").symlink_to(elsewhere / "CheXpert-v1.0-small")
    with pytest.raises(DatasetError, match="is a symbolic link"):
        write_demo_dataset(out, n_train_patients=2, n_valid_patients=1, size=(64, 78), overwrite=True)
    assert (elsewhere / "CheXpert-v1.0-small" / "train.csv").is_file()


# difficulty


def test_difficulty_scales_the_patterns_and_the_noise() -> None:
    """The same draws at half contrast paint each finding at half its strength; noise sets the pixel scatter."""
    findings = tuple(CHEXPERT_COMPETITION_CLASSES)

    def painted(contrast: float, noise: float) -> np.ndarray:
        painter = Painter(96, 117, contrast=contrast, noise=noise)
        plain = painter.paint(np.random.default_rng(4), True, ()).astype(float)
        return painter.paint(np.random.default_rng(4), True, findings).astype(float) - plain

    full, half = painted(1.0, 0.0), painted(0.5, 0.0)
    strong = np.abs(full) > 20
    assert strong.mean() > 0.1
    np.testing.assert_allclose(half[strong] / full[strong], 0.5, atol=0.1)
    quiet = Painter(96, 117, noise=0.0).paint(np.random.default_rng(4), True, ()).astype(float)
    noisy = Painter(96, 117, noise=20.0).paint(np.random.default_rng(4), True, ()).astype(float)
    assert 15 < np.std(noisy - quiet) < 25


def _reported_against_painted(root: Path, split: str) -> tuple[int, int]:
    """(studies x competition findings painted but reported as absent or blank, findings painted) in one split."""
    folder = root / "CheXpert-v1.0-small"
    painted = {(box.image, box.label) for box in read_boxes(folder / split / BOX_FILE)}
    rows = raw_csv(folder / f"{split}.csv")
    frontal = rows[rows["Frontal/Lateral"] == "Frontal"]
    missed = total = 0
    for _, row in frontal.iterrows():
        for name in CHEXPERT_COMPETITION_CLASSES:
            if (row["Path"], name) in painted:
                total += 1
                missed += row[name] in ("", "0.0")
    return missed, total


def test_label_noise_flips_training_reports_and_never_validation(tmp_path: Path) -> None:
    options = {"n_train_patients": 60, "n_valid_patients": 30, "size": (64, 78)}
    easy = write_demo_dataset(tmp_path / "easy", **options)
    noisy = write_demo_dataset(tmp_path / "noisy", difficulty=DemoDifficulty(label_noise=0.3), **options)
    assert _reported_against_painted(easy, "train")[0] == 0, "without label noise a painted finding is never denied"
    missed, total = _reported_against_painted(noisy, "train")
    assert total > 50 and 0.15 < missed / total < 0.45
    for root in (easy, noisy):
        assert _reported_against_painted(root, "valid")[0] == 0, "validation labels stay exact"


def _own_project(root: Path) -> Settings:
    """Project folders under `root` with their own data folder (never the session's shared demo data)."""
    return Settings(root, root / "data", root / "models", root / "logs", root / "weights")


def test_difficulty_is_recorded_and_demo_data_at_another_is_rewritten(tmp_path: Path) -> None:
    settings = _own_project(tmp_path)
    root = settings.data_dir / "demo"
    write_demo_dataset(root, n_train_patients=4, n_valid_patients=2, size=(64, 78))
    assert written_difficulty(root) == DIFFICULTIES["easy"]
    ensure_demo_data(settings, difficulty="hard")
    assert written_difficulty(root) == DIFFICULTIES["hard"]
    rows = raw_csv(root / "CheXpert-v1.0-small" / "train.csv")
    assert len(rows) > 4, "rewritten at the demo's default size"
    stamp = (root / "CheXpert-v1.0-small" / "train.csv").stat().st_mtime_ns
    ensure_demo_data(settings, difficulty="hard")
    assert (root / "CheXpert-v1.0-small" / "train.csv").stat().st_mtime_ns == stamp, "same difficulty: kept"


@pytest.mark.parametrize(
    "bad", [{"contrast": 0.0}, {"noise": -1.0}, {"label_noise": 0.7}, {"contrast": float("nan")}, {"noise": "x"}]
)
def test_a_bad_difficulty_names_its_field(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        DemoDifficulty(**bad)


def test_an_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ConfigError, match="easy, medium, hard"):
        get_difficulty("brutal")


def test_without_a_difficulty_demo_data_already_there_is_kept(tmp_path: Path) -> None:
    """Tests and notebooks share one demo folder: only the demo job (which names its difficulty) rewrites it."""
    settings = _own_project(tmp_path)
    write_demo_dataset(settings.data_dir / "demo", n_train_patients=4, n_valid_patients=2, size=(64, 78))
    ensure_demo_data(settings)
    assert written_difficulty(settings.data_dir / "demo") == DIFFICULTIES["easy"]
    assert len(raw_csv(settings.data_dir / "demo" / "CheXpert-v1.0-small" / "valid.csv")) <= 4

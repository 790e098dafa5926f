"""Dataset specs, the registry, and every label-file loader (with their error messages)."""

from __future__ import annotations

import csv
import gzip
import os
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.data import datasets
from medbench.data.datasets import (
    CHEXPERT_COMPETITION_CLASSES,
    CHEXPERT_PATHOLOGIES,
    DatasetSpec,
    dataset_names,
    get_dataset,
    load_dataset,
    register_dataset,
)
from medbench.data.readers import (
    CHESTXRAY14_CLASSES,
    CHEXPERT_CLASSES,
    CHEXPERT_METADATA_COLUMNS,
    read_chestxray14_csv,
    read_chexpert_csv,
    read_class_folders,
    read_generic_csv,
    read_onehot_csv,
)
from medbench.errors import DatasetError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NIH_SAMPLE = SHARED / "nih-cxr14-sample"
NIH_METADATA = SHARED / "nih-metadata" / "Data_Entry_2017_v2020.csv.gz"
NIH_64 = SHARED / "nih-cxr14-64px"


def needs_shared(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that reads ../shared/data; it is skipped where that folder is absent."""
    skip = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data (real NIH images) not present")
    return pytest.mark.shared_data(skip(test))


LEADING = ["sample_id", "path", "patient_id", "frontal"]
CHEXPERT_HEADER = [*CHEXPERT_METADATA_COLUMNS, *CHEXPERT_CLASSES]


def chexpert_row(
    path: str, *labels: str, sex: str = "Female", age: str = "68", view: str = "Frontal", projection: str = "AP"
) -> list[str]:
    """A CheXpert CSV row; missing label cells are blank."""
    cells = list(labels) + [""] * (len(CHEXPERT_CLASSES) - len(labels))
    return [path, sex, age, view, projection, *cells]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def touch_images(root: Path, relative_paths: Sequence[str]) -> None:
    for relative in relative_paths:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")


def chexpert_dataset(root: Path, rows: Sequence[Sequence[str]], name: str = "train.csv", images: bool = True) -> Path:
    """A CheXpert-layout label file under `root` (and empty image files unless `images` is False)."""
    csv_path = write_csv(root / "CheXpert-v1.0-small" / name, CHEXPERT_HEADER, rows)
    if images:
        safe = [
            row[0] for row in rows if row[0] and ".." not in row[0] and not row[0].startswith("/") and ":" not in row[0]
        ]
        touch_images(root, safe)
    return csv_path


P1 = "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"
P2 = "CheXpert-v1.0-small/train/patient00001/study1/view2_lateral.jpg"
P3 = "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"


# -- specs and registry ------------------------------------------------------------------------------


def test_predefined_datasets() -> None:
    assert {"chexpert", "chexpert-dev", "demo", "chestxray14-256", "chestxray14-512"} <= set(dataset_names())
    for name in ("chexpert", "chexpert-dev", "demo"):
        spec = get_dataset(name)
        assert spec.format == "chexpert" and spec.root == name
        assert spec.train == "CheXpert-v1.0-small/train.csv"
        assert spec.test == "CheXpert-v1.0-small/valid.csv"
        assert spec.classes == CHEXPERT_CLASSES
        assert spec.classes_for(14) == CHEXPERT_CLASSES
        assert spec.classes_for(12) == CHEXPERT_PATHOLOGIES
        assert len(CHEXPERT_PATHOLOGIES) == 12 and "No Finding" not in CHEXPERT_PATHOLOGIES
        assert "Support Devices" not in CHEXPERT_PATHOLOGIES
        assert spec.classes_for(5) == CHEXPERT_COMPETITION_CLASSES
    for size in (256, 512):
        spec = get_dataset(f"chestxray14-{size}")
        assert spec.format == "chestxray14" and spec.root == f"chestxray14-{size}"
        assert spec.train == "Data_Entry_2017_v2020.csv" and spec.image_dir == "images"
        assert spec.test == "test_list.txt" and spec.train_list == "train_val_list.txt"
        assert spec.classes == CHESTXRAY14_CLASSES and list(spec.label_sets) == [14]


def test_classes_for_unknown_size_lists_valid_sizes() -> None:
    with pytest.raises(DatasetError, match=r"no 7-class label set; valid numbers of classes: 5, 12, 14"):
        get_dataset("chexpert").classes_for(7)


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'chexpret'; known datasets: .*chestxray14-256.*chexpert"):
        get_dataset("chexpret")


def test_register_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    spec = DatasetSpec(
        name="isic-2019",
        format="onehot",
        root="isic",
        train="gt.csv",
        image_dir="images",
        classes=("MEL", "NV"),
        image_extension="jpg",
    )
    assert register_dataset(spec) is spec
    assert get_dataset("isic-2019") is spec and "isic-2019" in dataset_names()
    register_dataset(spec)  # the same spec again is fine
    other = DatasetSpec(
        name="isic-2019", format="onehot", root="elsewhere", train="gt.csv", image_dir="images", classes=("MEL", "NV")
    )
    with pytest.raises(DatasetError, match="already registered"):
        register_dataset(other)
    register_dataset(other, replace=True)
    assert get_dataset("isic-2019").root == "elsewhere"


def test_spec_defaults_and_immutability() -> None:
    spec = DatasetSpec(name="x", format="csv", root="x", train="labels.csv", path_column="file", classes=["a", "b"])
    assert spec.classes == ("a", "b") and spec.label_sets == {2: ("a", "b")}
    assert spec.classes_for(2) == ("a", "b")
    assert hash(spec) == hash(spec)
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(AttributeError):
        spec.root = "y"  # type: ignore[misc]
    assert spec.root_path("/data") == Path("/data/x")
    absolute = DatasetSpec(name="y", format="folder", root="/mnt/y", train="train", classes=("a",))
    assert absolute.root_path("/data") == Path("/mnt/y")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "CheXpert"}, "lowercase letters, digits and single hyphens"),
        ({"name": "a--b"}, "lowercase letters"),
        (
            {"format": "nifti"},
            "format 'nifti' is unknown; expected one of chexpert, chestxray14, onehot, csv, folder, dicom",
        ),
        ({"classes": ()}, "classes must be a non-empty"),
        ({"classes": ("a", "a")}, r"duplicates: \['a'\]"),
        ({"label_sets": {1: ("a",)}}, r"must include the full set \(2 classes\)"),
        ({"label_sets": {2: ("a", "b"), 1: ("z",)}}, r"unknown classes \['z'\]"),
        ({"label_sets": {2: ("a", "b"), 3: ("a", "b")}}, "must hold 3 distinct classes"),
        ({"format": "onehot"}, "needs image_dir"),
        ({"format": "csv"}, "needs path_column"),
        ({"patient_pattern": "("}, "not a valid regular expression"),
    ],
)
def test_spec_validation(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "ok", "format": "folder", "root": "r", "train": "train", "classes": ("a", "b")}
    with pytest.raises(DatasetError, match=message):
        DatasetSpec(**{**fields, **changes})  # type: ignore[arg-type]


# -- CheXpert ------------------------------------------------------------------------------------------


def test_read_chexpert_csv(tmp_path: Path) -> None:
    rows = [
        chexpert_row(P1, "1.0", "", "0.0", "-1.0", "1", "0", "-1", sex="Female", age="68", projection="AP"),
        chexpert_row(
            P2,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "1.0",
            sex="Female",
            age="68",
            view="Lateral",
            projection="",
        ),
        chexpert_row(P3, sex="Unknown", age="", projection="PA"),
    ]
    csv_path = chexpert_dataset(tmp_path, rows)
    table = read_chexpert_csv(csv_path, tmp_path)

    assert list(table.columns) == [*LEADING, "sex", "age", *CHEXPERT_CLASSES]
    assert table["sample_id"].tolist() == [P1, P2, P3]
    assert table["path"].tolist() == [os.path.join(os.path.abspath(tmp_path), *p.split("/")) for p in (P1, P2, P3)]
    assert table["patient_id"].tolist() == ["patient00001", "patient00001", "patient00002"]
    assert table["frontal"].tolist() == [True, False, True] and table["frontal"].dtype == bool
    assert table["sex"].tolist() == ["Female", "Female", None]
    np.testing.assert_array_equal(table["age"].to_numpy(), [68.0, 68.0, np.nan])
    assert all(table[name].dtype == np.float64 for name in CHEXPERT_CLASSES)
    first = table.loc[0, list(CHEXPERT_CLASSES[:7])].to_numpy(dtype=float)
    np.testing.assert_array_equal(first, [1.0, np.nan, 0.0, -1.0, 1.0, 0.0, -1.0])
    assert (
        table.loc[1, "Support Devices"] == 1.0 and np.isnan(table.loc[2, list(CHEXPERT_CLASSES)].to_numpy(float)).all()
    )
    assert isinstance(table.index, pd.RangeIndex)


@pytest.mark.parametrize("projection", ["", "AP", "PA", "LL", "RL"])
def test_chexpert_projection_values(tmp_path: Path, projection: str) -> None:
    csv_path = chexpert_dataset(tmp_path, [chexpert_row(P1, "1.0", projection=projection)])
    assert len(read_chexpert_csv(csv_path, tmp_path)) == 1


@pytest.mark.parametrize(
    ("row", "row_number", "column", "message"),
    [
        (
            chexpert_row(P3, "", "2.0"),
            3,
            "Enlarged Cardiomediastinum",
            r"value '2.0' is not a label; expected 1.0 \(positive\), 0.0 \(negative\), -1.0 \(uncertain\) or an empty",
        ),
        (chexpert_row(P3, "", "", "yes"), 3, "Cardiomegaly", "value 'yes' is not a label"),
        (chexpert_row(P3, "nan"), 3, "No Finding", "value 'nan' is not a label"),
        (
            chexpert_row(P3, view="Oblique"),
            3,
            "Frontal/Lateral",
            "'Oblique' is not allowed; expected one of 'Frontal', 'Lateral'",
        ),
        (chexpert_row(P3, projection="XY"), 3, "AP/PA", "expected one of empty, 'AP', 'PA', 'LL', 'RL'"),
        (chexpert_row(P3, sex="X"), 3, "Sex", "expected one of 'Male', 'Female', 'Unknown', empty"),
        (chexpert_row(P3, age="old"), 3, "Age", "is not an age"),
        (chexpert_row("../outside/patient00009/a.jpg"), 3, "Path", r"leaves the dataset folder \('..'\)"),
        (chexpert_row("CheXpert-v1.0-small/train/../../x/patient00009.jpg"), 3, "Path", "leaves the dataset folder"),
        (chexpert_row("/etc/patient00009/x.jpg"), 3, "Path", "is an absolute path; expected a path relative"),
        (chexpert_row("C:/data/patient00009/x.jpg"), 3, "Path", "is an absolute path"),
        (chexpert_row(""), 3, "Path", "is empty; expected an image path"),
        (
            chexpert_row("CheXpert-v1.0-small/train/p9/study1/view1_frontal.jpg"),
            3,
            "Path",
            "has no 'patientNNNNN' folder",
        ),
        (chexpert_row(P1), 3, "Path", rf"image '{P1}' is listed twice \(rows 2 and 3\); expected each image once"),
    ],
)
def test_chexpert_errors_name_file_row_column(
    tmp_path: Path, row: list[str], row_number: int, column: str, message: str
) -> None:
    csv_path = chexpert_dataset(tmp_path, [chexpert_row(P1, "1.0"), row])
    with pytest.raises(DatasetError, match=message) as caught:
        read_chexpert_csv(csv_path, tmp_path)
    error = caught.value
    assert (error.file, error.row, error.column) == (csv_path, row_number, column)
    assert str(error).startswith(f"{csv_path}, row {row_number}, column {column!r}: ")


def test_chexpert_counts_all_bad_cells(tmp_path: Path) -> None:
    rows = [chexpert_row(P1, "1.0"), chexpert_row(P2, "2"), chexpert_row(P3, "3")]
    csv_path = chexpert_dataset(tmp_path, rows)
    with pytest.raises(
        DatasetError, match=r"value '2' is not a label.*\(2 rows have this problem; the first is shown\)"
    ):
        read_chexpert_csv(csv_path, tmp_path)


def test_chexpert_missing_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="label file does not exist") as caught:
        read_chexpert_csv(tmp_path / "nope.csv", tmp_path)
    assert caught.value.file == tmp_path / "nope.csv"
    header = [name for name in CHEXPERT_HEADER if name not in ("Edema", "Age")]
    csv_path = write_csv(tmp_path / "train.csv", header, [])
    with pytest.raises(
        DatasetError, match=r"missing column\(s\) \['Age', 'Edema'\]; expected columns \['Path', 'Sex'"
    ) as caught:
        read_chexpert_csv(csv_path, tmp_path)
    assert (caught.value.row, caught.value.column) == (1, "Age")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="file is empty"):
        read_chexpert_csv(tmp_path / "empty.csv", tmp_path)


def test_chexpert_ragged_csv(tmp_path: Path) -> None:
    csv_path = chexpert_dataset(tmp_path, [chexpert_row(P1), [*chexpert_row(P3), "extra", "fields"]])
    with pytest.raises(DatasetError, match="not a well-formed CSV file"):
        read_chexpert_csv(csv_path, tmp_path)


def test_missing_images_are_reported_together(tmp_path: Path) -> None:
    paths = [f"CheXpert-v1.0-small/train/patient{i:05d}/study1/view1_frontal.jpg" for i in range(1, 16)]
    csv_path = chexpert_dataset(tmp_path, [chexpert_row(path) for path in paths], images=False)
    touch_images(tmp_path, paths[:3])
    with pytest.raises(DatasetError) as caught:
        read_chexpert_csv(csv_path, tmp_path)
    message = str(caught.value)
    assert "12 of 15 listed image files are missing" in message
    assert "first 10: row 5 " in message and paths[12] in message and paths[13] not in message
    assert caught.value.row == 5
    assert len(read_chexpert_csv(csv_path, tmp_path, check_images=False)) == 15
    shutil.rmtree(tmp_path / "CheXpert-v1.0-small" / "train")
    with pytest.raises(DatasetError, match="none of the 15 listed image files exist"):
        read_chexpert_csv(csv_path, tmp_path)


def test_blank_lines_keep_row_numbers(tmp_path: Path) -> None:
    csv_path = chexpert_dataset(tmp_path, [chexpert_row(P1)])
    with open(csv_path, "a", encoding="utf-8") as handle:
        handle.write("\n" + ",".join(chexpert_row(P3, "7")) + "\n\n")
    touch_images(tmp_path, [P3])
    with pytest.raises(DatasetError) as caught:
        read_chexpert_csv(csv_path, tmp_path)
    assert caught.value.row == 4


def test_untidy_paths_are_normalized(tmp_path: Path) -> None:
    csv_path = chexpert_dataset(tmp_path, [chexpert_row("./" + P1.replace("/study1/", "//study1/./"))], images=False)
    touch_images(tmp_path, [P1])
    assert read_chexpert_csv(csv_path, tmp_path)["sample_id"].tolist() == [P1]


# -- ChestX-ray14 ---------------------------------------------------------------------------------------


@needs_shared
def test_chestxray14_real_sample() -> None:
    table = read_chestxray14_csv(NIH_SAMPLE / "Data_Entry_2017_v2020.csv", "images")
    assert len(table) == 403
    assert list(table.columns) == [*LEADING, "sex", "age", *CHESTXRAY14_CLASSES]
    row = table.set_index("sample_id").loc["images/00000100_000.png"]
    assert row["patient_id"] == "100" and row["sex"] == "Male" and row["age"] == 60.0 and row["frontal"]
    positives = [name for name in CHESTXRAY14_CLASSES if row[name] == 1.0]
    assert positives == ["Atelectasis", "Effusion", "Infiltration"]
    assert Path(row["path"]) == (NIH_SAMPLE / "images" / "00000100_000.png").absolute()
    normal = table.set_index("sample_id").loc["images/00000129_000.png", list(CHESTXRAY14_CLASSES)]
    assert (normal == 0.0).all()
    labels = table[list(CHESTXRAY14_CLASSES)].to_numpy()
    assert set(np.unique(labels)) == {0.0, 1.0} and (labels.sum(axis=0) > 0).all()
    assert table["frontal"].all() and set(table["sex"]) == {"Male", "Female"}


@needs_shared
def test_chestxray14_full_metadata_file() -> None:
    started = time.perf_counter()
    table = read_chestxray14_csv(NIH_METADATA, "images", check_images=False)
    elapsed = time.perf_counter() - started
    assert len(table) == 112_120 and table["patient_id"].nunique() == 30_805
    assert table["sample_id"].is_unique and table["sample_id"].str.startswith("images/").all()
    raw = pd.read_csv(NIH_METADATA, usecols=[0, 6], header=0, names=["image", "view"], index_col=False)
    assert (raw["view"] == "AP").sum() == 44_810
    assert table["frontal"].all()  # AP views are frontal too
    no_finding = table[list(CHESTXRAY14_CLASSES)].sum(axis=1) == 0
    assert no_finding.sum() == 60_361
    assert table["Hernia"].sum() == 227 and table["Infiltration"].sum() == 19_894
    assert elapsed < 10


@needs_shared
def test_image_check_on_112k_rows_is_one_listing_per_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = tmp_path / "images"
    images.mkdir()
    names = pd.read_csv(NIH_METADATA, usecols=[0]).iloc[:, 0].tolist()
    for name in names[:-3]:
        os.close(os.open(images / name, os.O_CREAT | os.O_WRONLY))
    shutil.copy(NIH_METADATA, tmp_path / "Data_Entry_2017_v2020.csv.gz")
    calls: list[str] = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: calls.append(path) or listdir(path))
    started = time.perf_counter()
    with pytest.raises(DatasetError, match=r"3 of 112120 listed image files are missing .*00030805_000.png"):
        read_chestxray14_csv(tmp_path / "Data_Entry_2017_v2020.csv.gz", "images")
    assert time.perf_counter() - started < 10
    assert calls == [str(images)]


def nih_csv(path: Path, rows: Sequence[str]) -> Path:
    header = (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    )
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_chestxray14_header_quirk_and_values(tmp_path: Path) -> None:
    csv_path = nih_csv(
        tmp_path / "labels.csv",
        [
            "a_000.png,Mass | Nodule,0,7,058Y,M,AP,2500,2048,0.171,0.171",
            "a_001.png,No Finding,1,7,006M,F,PA,2500,2048,0.171,0.171",
            "b_000.png,Hernia,0,8,,M,LL,2500,2048,0.171,0.171",
        ],
    )
    table = read_chestxray14_csv(csv_path, tmp_path, check_images=False)
    assert table["sample_id"].tolist() == ["a_000.png", "a_001.png", "b_000.png"]
    assert table["frontal"].tolist() == [True, True, False]
    np.testing.assert_allclose(table["age"].to_numpy(), [58.0, 0.5, np.nan])
    assert table.loc[0, ["Mass", "Nodule"]].tolist() == [1.0, 1.0] and table.loc[0].iloc[6:].sum() == 2.0
    assert table.loc[1, list(CHESTXRAY14_CLASSES)].sum() == 0.0


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        (
            "x.png,Cardiomegaly|Pneumonitis,0,1,50,M,PA,1,1,1,1",
            "Finding Labels",
            "unknown finding 'Pneumonitis'; expected 'No Finding' or findings joined by '|'",
        ),
        ("x.png,No Finding|Mass,0,1,50,M,PA,1,1,1,1", "Finding Labels", "combines 'No Finding' with findings"),
        ("x.png,,0,1,50,M,PA,1,1,1,1", "Finding Labels", "is empty"),
        ("x.png,Mass,0,1,50,M,LATERAL,1,1,1,1", "View Position", "expected one of 'PA', 'AP', 'LL', 'RL'"),
        ("x.png,Mass,0,1,50,X,PA,1,1,1,1", "Patient Gender", "expected one of 'M', 'F', empty"),
        ("x.png,Mass,0,1,fifty,M,PA,1,1,1,1", "Patient Age", "is not an age"),
        ("../x.png,Mass,0,1,50,M,PA,1,1,1,1", "Image Index", "is not a bare file name"),
        ("x.png,Mass,0,,50,M,PA,1,1,1,1", "Patient ID", "is empty; expected a patient number"),
        ("y.png,Mass,0,1,50,M,PA,1,1,1,1", "Image Index", r"listed twice \(rows 2 and 3\)"),
    ],
)
def test_chestxray14_errors(tmp_path: Path, row: str, column: str, message: str) -> None:
    csv_path = nih_csv(tmp_path / "labels.csv", ["y.png,Mass,0,1,50,M,PA,1,1,1,1", row])
    with pytest.raises(DatasetError, match=message) as caught:
        read_chestxray14_csv(csv_path, tmp_path, check_images=False)
    assert (caught.value.row, caught.value.column) == (3, column)


def test_chestxray14_missing_column_and_outside_image_dir(tmp_path: Path) -> None:
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("Image Index,Finding Labels\nx.png,Mass\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['Patient ID'"):
        read_chestxray14_csv(csv_path, "images")
    nih_csv(csv_path, ["x.png,Mass,0,1,50,M,PA,1,1,1,1"])
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        read_chestxray14_csv(csv_path, tmp_path.parent / "elsewhere")


@needs_shared
def test_load_chestxray14_with_official_lists(tmp_path: Path) -> None:
    root = tmp_path / "chestxray14-512"
    root.mkdir()
    shutil.copy(NIH_SAMPLE / "Data_Entry_2017_v2020.csv", root)
    (root / "images").symlink_to(NIH_SAMPLE / "images")
    spec = get_dataset("chestxray14-512")
    train, test = load_dataset(spec, tmp_path)
    assert test is None and len(train) == 403

    names = sorted(path.name for path in (NIH_SAMPLE / "images").iterdir())
    (root / "test_list.txt").write_text("\n".join([*names[:50], "99999999_000.png"]) + "\n")
    train, test = load_dataset(spec, tmp_path)
    assert test is not None and len(test) == 50 and len(train) == 353
    assert set(test["sample_id"]) == {f"images/{name}" for name in names[:50]}
    assert list(test.index) == list(range(50))

    (root / "train_val_list.txt").write_text("\n".join(names[50:400]) + "\n")
    train, test = load_dataset(spec, tmp_path)
    assert len(train) == 350 and len(test) == 50  # 3 images in neither list are left out

    (root / "train_val_list.txt").write_text("\n".join(names[40:]) + "\n")
    with pytest.raises(DatasetError, match=r"is in both official lists \(10 such images\)"):
        load_dataset(spec, tmp_path)


# -- one-hot, generic CSV, class folders ---------------------------------------------------------------------


def test_read_onehot_csv(tmp_path: Path) -> None:
    images = tmp_path / "images"
    touch_images(images, ["ISIC_0000000.jpg", "ISIC_0000001.jpg", "ISIC_0000002.jpg"])
    csv_path = write_csv(
        tmp_path / "gt.csv",
        ["image", "MEL", "NV", "BCC"],
        [
            ["ISIC_0000000", "1.0", "0.0", "0.0"],
            ["ISIC_0000001", "0", "1", "0"],
            ["ISIC_0000002.jpg", "0.0", "0.0", "1.0"],
        ],
    )
    table = read_onehot_csv(csv_path, "images", extension="jpg")
    assert list(table.columns) == [*LEADING, "MEL", "NV", "BCC"]
    assert table["sample_id"].tolist() == [f"images/ISIC_000000{i}.jpg" for i in range(3)]
    assert table["patient_id"].tolist() == table["sample_id"].tolist() and table["frontal"].all()
    np.testing.assert_array_equal(table[["MEL", "NV", "BCC"]].to_numpy(), np.eye(3))
    # Without an extension, suffix-less names are matched to the image with that stem.
    assert table["sample_id"].tolist() == read_onehot_csv(csv_path, images)["sample_id"].tolist()
    picked = read_onehot_csv(csv_path, images, extension=".jpg", classes=("NV", "MEL"))
    assert list(picked.columns[-2:]) == ["NV", "MEL"]


@pytest.mark.parametrize(
    ("cell", "message"), [("-1", "expected 1 or 0"), ("", "expected 1 or 0"), ("0.5", "'0.5' is not a label")]
)
def test_onehot_rejects_non_binary(tmp_path: Path, cell: str, message: str) -> None:
    csv_path = write_csv(tmp_path / "gt.csv", ["image", "MEL", "NV"], [["a", "1", "0"], ["b", "0", cell]])
    with pytest.raises(DatasetError, match=message) as caught:
        read_onehot_csv(csv_path, tmp_path, extension="jpg", check_images=False)
    assert (caught.value.row, caught.value.column) == (3, "NV")


def test_read_generic_csv(tmp_path: Path) -> None:
    touch_images(tmp_path, ["scans/p1/a.png", "scans/p2/b.png"])
    csv_path = write_csv(
        tmp_path / "labels.csv",
        ["file", "subject", "x", "y"],
        [
            ["scans/p1/a.png", "p1", "1", "-1"],
            ["scans/p2/b.png", "p2", "", "0.0"],
        ],
    )
    table = read_generic_csv(csv_path, tmp_path, "file", patient_column="subject")
    assert list(table.columns) == [*LEADING, "x", "y"]
    assert table["patient_id"].tolist() == ["p1", "p2"]
    np.testing.assert_array_equal(table[["x", "y"]].to_numpy(), [[1.0, -1.0], [np.nan, 0.0]])
    ordered = read_generic_csv(csv_path, tmp_path, "file", label_columns=["y"], patient_pattern=r"scans/(p\d)/")
    assert list(ordered.columns) == [*LEADING, "y"] and ordered["patient_id"].tolist() == ["p1", "p2"]
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['z'\]"):
        read_generic_csv(csv_path, tmp_path, "file", label_columns=["z"])
    with pytest.raises(DatasetError, match="does not match patient_pattern") as caught:
        read_generic_csv(csv_path, tmp_path, "file", ["x"], patient_pattern=r"p1/")
    assert (caught.value.row, caught.value.column) == (3, "file")


def test_generic_csv_rejects_bad_values(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "labels.csv", ["file", "x"], [["a.png", "1"], ["b.png", "positive"]])
    with pytest.raises(DatasetError, match="'positive' is not a label; expected 1, 0, -1 or an empty cell") as caught:
        read_generic_csv(csv_path, tmp_path, "file", check_images=False)
    assert (caught.value.file, caught.value.row, caught.value.column) == (csv_path, 3, "x")


@needs_shared
def test_read_class_folders_on_real_images() -> None:
    table = read_class_folders(NIH_64 / "train")
    assert list(table.columns) == [*LEADING, "0_normal", "1_abnormal"]
    assert len(table) == 600 and table["sample_id"].is_unique
    labels = table[["0_normal", "1_abnormal"]].to_numpy()
    assert set(np.unique(labels)) == {0.0, 1.0} and (labels.sum(axis=1) == 1).all()
    assert table["sample_id"].str.match(r"^[01]_(normal|abnormal)/\d{8}_\d{3}\.png$").all()
    assert all(Path(path).is_file() for path in table["path"])
    normal = table["sample_id"].str.startswith("0_normal/")
    assert (table.loc[normal, "0_normal"] == 1.0).all() and (table.loc[~normal, "1_abnormal"] == 1.0).all()

    by_patient = read_class_folders(NIH_64 / "train", dataset_root=NIH_64, patient_pattern=r"(\d{8})_\d{3}\.png$")
    assert by_patient["sample_id"].str.startswith("train/").all()
    assert by_patient["patient_id"].str.fullmatch(r"\d{8}").all() and by_patient["patient_id"].nunique() < 600


def test_class_folders_options_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    touch_images(tmp_path / "train", ["cat/a.png", "cat/sub/b.JPG", "dog/c.jpeg", "dog/notes.txt", "dog/.hidden.png"])
    (tmp_path / "train" / ".cache").mkdir()
    table = read_class_folders(tmp_path / "train", classes=("dog", "cat", "bird"), dataset_root=tmp_path)
    assert table["sample_id"].tolist() == ["train/dog/c.jpeg", "train/cat/a.png", "train/cat/sub/b.JPG"]
    assert list(table.columns[-3:]) == ["dog", "cat", "bird"] and (table["bird"] == 0).all()
    assert "skipped 1 file(s) without an image suffix" in caplog.text
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['dog'\] are not classes"):
        read_class_folders(tmp_path / "train", classes=("cat",))
    with pytest.raises(DatasetError, match="folder does not exist"):
        read_class_folders(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="has no class subfolders"):
        read_class_folders(tmp_path / "flat")


# -- load_dataset --------------------------------------------------------------------------------------------


def test_load_chexpert_layout(tmp_path: Path) -> None:
    root = tmp_path / "chexpert"
    chexpert_dataset(root, [chexpert_row(P1, "1.0"), chexpert_row(P3, "0.0")])
    valid = "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg"
    chexpert_dataset(root, [chexpert_row(valid, *["0.0"] * 14)], name="valid.csv")
    train, test = load_dataset(get_dataset("chexpert"), tmp_path)
    assert train["sample_id"].tolist() == [P1, P3]
    assert test is not None and test["sample_id"].tolist() == [valid]

    chexpert_dataset(root, [chexpert_row(P1, *["0.0"] * 14)], name="valid.csv")
    with pytest.raises(DatasetError, match="in both the training and the test labels"):
        load_dataset(get_dataset("chexpert"), tmp_path)
    with pytest.raises(DatasetError, match="dataset folder for 'chexpert-dev' does not exist"):
        load_dataset(get_dataset("chexpert-dev"), tmp_path)


def test_load_other_formats(tmp_path: Path) -> None:
    touch_images(tmp_path / "skin" / "img", ["a.jpg", "b.jpg"])
    write_csv(tmp_path / "skin" / "gt.csv", ["image", "NV", "MEL"], [["a", "0", "1"], ["b", "1", "0"]])
    onehot = DatasetSpec(
        name="skin",
        format="onehot",
        root="skin",
        train="gt.csv",
        image_dir="img",
        classes=("MEL", "NV"),
        image_extension="jpg",
    )
    train, test = load_dataset(onehot, tmp_path)
    assert test is None and list(train.columns[-2:]) == ["MEL", "NV"]
    assert train["sample_id"].tolist() == ["img/a.jpg", "img/b.jpg"] and train["MEL"].tolist() == [1.0, 0.0]

    touch_images(tmp_path / "gen", ["x/1.png", "x/2.png"])
    write_csv(tmp_path / "gen" / "train.csv", ["p", "k"], [["x/1.png", "1"]])
    write_csv(tmp_path / "gen" / "test.csv", ["p", "k"], [["x/2.png", "-1"]])
    generic = DatasetSpec(
        name="gen",
        format="csv",
        root=str(tmp_path / "gen"),
        train="train.csv",
        test="test.csv",
        path_column="p",
        classes=("k",),
    )
    train, test = load_dataset(generic, "/nonexistent")
    assert train["k"].tolist() == [1.0] and test is not None and test["k"].tolist() == [-1.0]

    touch_images(tmp_path / "folders", ["train/a/1.png", "train/b/2.png", "test/b/3.png"])
    folder = DatasetSpec(
        name="folders", format="folder", root="folders", train="train", test="test", classes=("a", "b")
    )
    train, test = load_dataset(folder, tmp_path)
    assert train["sample_id"].tolist() == ["train/a/1.png", "train/b/2.png"]
    assert test is not None and test["sample_id"].tolist() == ["test/b/3.png"] and test["b"].tolist() == [1.0]


def test_gzipped_label_file(tmp_path: Path) -> None:
    plain = nih_csv(tmp_path / "plain.csv", ["x.png,Edema,0,3,40,F,AP,1,1,1,1"])
    with gzip.open(tmp_path / "labels.csv.gz", "wb") as handle:
        handle.write(plain.read_bytes())
    table = read_chestxray14_csv(tmp_path / "labels.csv.gz", tmp_path, check_images=False)
    assert table.loc[0, "Edema"] == 1.0 and table.loc[0, "patient_id"] == "3"

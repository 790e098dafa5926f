"""DICOM datasets: a label CSV over a folder of real DICOM files (made from pydicom's MR_small and the CR chest
PA RG1 with pydicom), patient ids and views from the headers, and one experiment end to end on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, load_dataset, register_dataset
from medbench.data.readers.dicom_csv import read_dicom_csv
from medbench.errors import DatasetError
from medbench.settings import Settings

CLASSES = ("Bright", "Striped")


def _write_series(folder: Path, count: int, seed: int = 0) -> list[tuple[str, str, str, dict[str, int]]]:
    """`count` DICOM files derived from MR_small: own SOP Instance UID, patient (two images each), view, and
    pixels whose brightness and stripes are the two labels. Returns (file, uid, patient, labels) per file."""
    rng = np.random.default_rng(seed)
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    base = source.pixel_array.astype(np.int32)
    written = []
    (folder / "series").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        labels = {"Bright": int(rng.integers(0, 2)), "Striped": int(rng.integers(0, 2))}
        pixels = base // 2 + labels["Bright"] * 600 + rng.integers(0, 40, base.shape)
        if labels["Striped"]:
            pixels[:, ::4] += 500
        dataset = source.copy()
        dataset.PixelData = np.clip(pixels, 0, 4095).astype(source.pixel_array.dtype).tobytes()
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.PatientID = f"P{index // 2:03d}"
        dataset.ViewPosition = "LL" if index % 5 == 4 else "PA"
        dataset.WindowCenter, dataset.WindowWidth = 1000, 2000
        name = f"series/{index:03d}.dcm"
        dataset.save_as(folder / name)
        written.append((name, str(dataset.SOPInstanceUID), str(dataset.PatientID), labels))
    return written


def _labels_csv(path: Path, written: list, key: str) -> None:
    lines = [f"{key},{','.join(CLASSES)}"]
    for name, uid, _, labels in written:
        lines.append(",".join([uid if key == "SOPInstanceUID" else name, *(str(labels[c]) for c in CLASSES)]))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("key", ["file", "SOPInstanceUID"])
def test_rows_keyed_by_file_or_uid_take_patient_and_view_from_the_headers(tmp_path: Path, key: str) -> None:
    written = _write_series(tmp_path / "images", 10)
    (tmp_path / "images" / "notes.txt").write_text("not a DICOM file: ignored")
    _labels_csv(tmp_path / "labels.csv", written[::-1], key)
    table = read_dicom_csv(tmp_path / "labels.csv", "images", key, CLASSES, dataset_root=tmp_path)
    assert list(table["sample_id"]) == [f"images/{name}" for name, *_ in written[::-1]]
    assert list(table["patient_id"]) == [patient for _, _, patient, _ in written[::-1]]
    assert list(table["frontal"]) == [index % 5 != 4 for index in range(10)][::-1]
    for name in CLASSES:
        assert list(table[name]) == [float(labels[name]) for *_, labels in written[::-1]]
    assert all(Path(path).is_file() for path in table["path"])


def test_a_row_naming_no_dicom_file_is_refused_with_the_row(tmp_path: Path) -> None:
    written = _write_series(tmp_path / "images", 4)
    _labels_csv(tmp_path / "labels.csv", written, "SOPInstanceUID")
    text = (tmp_path / "labels.csv").read_text().replace(written[2][1], "1.2.3.4.5")
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DatasetError) as error:
        read_dicom_csv(tmp_path / "labels.csv", "images", "SOPInstanceUID", CLASSES, dataset_root=tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'labels.csv'}, row 4, column 'SOPInstanceUID': value '1.2.3.4.5' names no")
    assert "DICOM SOP Instance UID under" in message


def test_two_files_with_one_uid_and_a_missing_patient_id_are_refused(tmp_path: Path) -> None:
    written = _write_series(tmp_path / "images", 4)
    copy = tmp_path / "images" / "series" / "copy.dcm"
    copy.write_bytes((tmp_path / "images" / written[0][0]).read_bytes())
    _labels_csv(tmp_path / "labels.csv", written, "SOPInstanceUID")
    with pytest.raises(
        DatasetError, match=r"copy.dcm: has the SOP Instance UID .* of .*000.dcm; expected each UID once"
    ):
        read_dicom_csv(tmp_path / "labels.csv", "images", "SOPInstanceUID", CLASSES, dataset_root=tmp_path)
    copy.unlink()
    dataset = pydicom.dcmread(tmp_path / "images" / written[1][0])
    dataset.PatientID = ""
    dataset.save_as(tmp_path / "images" / written[1][0])
    with pytest.raises(
        DatasetError, match=r"row 3, column 'SOPInstanceUID': value 'images/series/001.dcm' has no PatientID"
    ):
        read_dicom_csv(tmp_path / "labels.csv", "images", "SOPInstanceUID", CLASSES, dataset_root=tmp_path)


@pytest.fixture
def dicom_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A registered DICOM dataset of 48 files (24 patients) with a file-keyed label CSV, in a fresh project."""
    root = tmp_path / "data" / "dicom-test"
    written = _write_series(root / "images", 48, seed=1)
    _labels_csv(root / "labels.csv", written, "file")
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    register_dataset(
        DatasetSpec(
            name="dicom-test",
            format="dicom",
            root="dicom-test",
            train="labels.csv",
            classes=CLASSES,
            image_dir="images",
            path_column="file",
        )
    )
    return Settings(tmp_path, tmp_path / "data", tmp_path / "models", tmp_path / "logs", tmp_path / "weights")


@pytest.mark.slow
def test_a_dicom_experiment_trains_evaluates_logs_reevaluates_and_predicts(dicom_dataset: Settings) -> None:
    from medbench.benchmark.options import ExperimentOptions
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment
    from medbench.prediction import predict_images, resolve_run
    from medbench.reevaluation import reevaluate_runs
    from medbench.runs.predictions import read_predictions

    settings = dicom_dataset
    train, test = load_dataset(datasets.get_dataset("dicom-test"), settings.data_dir)
    assert len(train) == 48 and test is None and train["patient_id"].nunique() == 24
    name = "dicom-test_BCE_E2_B8_C0_N2_D32_DS602020_1LR3_LF5_Adam"
    entry = Experiment(ExperimentSpec(name, options=ExperimentOptions(tensorboard=False)), settings).run()
    run_dir = settings.models_dir / entry["name"] / entry["id"]
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["epoch-001.keras", "epoch-002.keras"]
    assert entry["val"]["macro"]["auroc"] is not None
    log = json.loads((settings.logs_dir / "unvalidated-experiment-log.json").read_text())
    assert [item["id"] for item in log] == [entry["id"]]

    again = reevaluate_runs(settings, [entry["id"]], epochs=True, progress=False)
    assert not again.skipped
    (reevaluated,) = again.entries
    assert reevaluated["val_again"]["macro"]["auroc"] == pytest.approx(entry["val"]["macro"]["auroc"], abs=1e-6)

    ids, _, stored, classes = read_predictions(run_dir / "predictions" / "test.csv")
    paths = [str(settings.data_dir / "dicom-test" / sample) for sample in ids[:4]]
    frame = predict_images(resolve_run(entry["id"], settings), paths, settings, batch_size=2)
    assert list(frame.columns) == ["image", *classes]
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored[:4], atol=1e-5)

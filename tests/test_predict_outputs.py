"""`medbench predict` with TIML's inputs and outputs: a test dataframe naming images in a folder, and
`--generate-numpy` (one ``.npy`` of every prediction, one ``<image name>-0000000000.npy`` per image)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.cli import main
from medbench.experiment import Experiment
from medbench.prediction import NUMPY_SUFFIX, predict_images
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings

BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


@pytest.fixture(scope="module")
def run_and_table(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> tuple[SavedRun, Path, Path]:
    """A one-epoch run, and an ISIC-style table (image_name + ground truth) naming 12 images in a flat folder."""
    root = tmp_path_factory.mktemp("predict-outputs")
    settings = Settings(root, demo_data_dir, root / "models", root / "logs", root / "weights")
    experiment = Experiment(ExperimentSpec(BENCHMARK, "2D.SmallCNN", ExperimentOptions(tensorboard=False)), settings)
    experiment.run()
    run = SavedRun.load(experiment.run_dir)
    valid = pd.read_csv(demo_data_dir / "demo" / "CheXpert-v1.0-small" / "valid.csv").head(12)
    images = root / "images"
    images.mkdir()
    rows = []
    for index, row in valid.iterrows():
        name = f"ISIC_{index:07d}"
        shutil.copy(demo_data_dir / "demo" / row["Path"], images / f"{name}.jpg")
        rows.append({"image_name": name, **{label: row[label] for label in run.classes}})
    table = root / "test_dataframe.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return run, table, images


@pytest.mark.slow
def test_a_test_dataframe_with_generate_numpy_writes_timl_outputs(
    run_and_table: tuple[SavedRun, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, table, images = run_and_table
    out = tmp_path / "predictions.csv"
    argv = ["predict", str(run.run_dir.path), "--test-dataframe", str(table), "--img-dir", str(images)]
    assert main([*argv, "--out", str(out), "--generate-numpy"]) == 0
    written = pd.read_csv(out)
    names = pd.read_csv(table)["image_name"].tolist()
    assert written["image_name"].tolist() == names and list(written.columns[1:]) == list(run.classes)

    expected = predict_images(run, sorted(images.iterdir()), Settings.from_env())
    np.testing.assert_allclose(written[list(run.classes)].to_numpy(), expected[list(run.classes)].to_numpy(), atol=1e-6)
    stacked = np.load(tmp_path / "predictions.npy")
    assert stacked.shape == (len(names), len(run.classes)) and stacked.dtype == np.float32
    np.testing.assert_allclose(stacked, written[list(run.classes)].to_numpy(), atol=1e-6)
    per_image = sorted(path.name for path in (tmp_path / "predictions").iterdir())
    assert per_image == sorted(f"{name}{NUMPY_SUFFIX}" for name in names)
    np.testing.assert_array_equal(np.load(tmp_path / "predictions" / f"{names[3]}{NUMPY_SUFFIX}"), stacked[3])

    # the predictions join the table's ground truth by image name (TIML's inspect)
    assert main(["evaluate", "--truth", str(table), "--predictions", str(out), "--out", str(tmp_path / "eval")]) == 0
    assert "12 images" in capsys.readouterr().out


def test_a_name_without_a_file_is_an_error_naming_its_row(
    run_and_table: tuple[SavedRun, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, table, images = run_and_table
    broken = tmp_path / "broken.csv"
    frame = pd.read_csv(table)
    frame.loc[4, "image_name"] = "ISIC_missing"
    frame.to_csv(broken, index=False)
    argv = ["predict", str(run.run_dir.path), "--test-dataframe", str(broken), "--img-dir", str(images)]
    assert main([*argv, "--out", str(tmp_path / "p.csv")]) == 2
    error = capsys.readouterr().err
    assert "row 6: 'ISIC_missing'" in error and str(broken) in error and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["x.png", "--test-dataframe", "t.csv", "--img-dir", "."],
        ["--test-dataframe", "t.csv"],
        ["x.png", "--generate-numpy"],
    ],
    ids=["both", "no-img-dir", "numpy-without-out"],
)
def test_contradictory_inputs_are_refused_before_anything_runs(extra: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["predict", "RUN", *extra])
    assert stop.value.code == 2

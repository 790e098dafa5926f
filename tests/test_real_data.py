"""Real NIH ChestX-ray14 images: loader on the official file format and a training smoke run.

Images: NIH Clinical Center, ChestX-ray14 (Wang et al., CVPR 2017), https://nihcc.app.box.com/v/ChestXray-NIHCC.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data
from sklearn.metrics import roc_auc_score

from medbench.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import DatasetSpec, get_dataset, load_dataset, register_dataset
from medbench.experiment import Experiment
from medbench.runs.predictions import read_predictions
from medbench.settings import Settings

pytestmark = needs_shared_data

SAMPLE = SHARED_DATA / "nih-cxr14-sample"


@pytest.fixture(scope="module")
def nih_sample() -> str:
    """Register the 403-image NIH sample as dataset 'nih-sample' (three-part patient split)."""
    template = get_dataset("chestxray14-512")
    register_dataset(
        DatasetSpec(
            name="nih-sample",
            format="chestxray14",
            root=str(SAMPLE),
            train="Data_Entry_2017_v2020.csv",
            image_dir="images",
            classes=template.classes,
            label_sets=template.label_sets,
        ),
        replace=True,
    )
    return "nih-sample"


def test_loader_reads_the_official_file(nih_sample: str, tmp_path) -> None:
    train, test = load_dataset(get_dataset(nih_sample), tmp_path)
    assert test is None and len(train) == 403
    assert train["frontal"].all()  # PA and AP are both frontal views
    assert (train.loc[:, list(get_dataset(nih_sample).classes)].sum() > 0).all()  # all 14 findings occur


@pytest.mark.slow
def test_smoke_run_on_real_images(nih_sample: str, tmp_path) -> None:
    settings = Settings(
        root=tmp_path, data_dir=tmp_path, models_dir=tmp_path / "m", logs_dir=tmp_path / "l", weights_dir=tmp_path
    )
    benchmark = Benchmark(
        dataset=nih_sample, epochs=1, batch_size=32, n_classes=14, image_size=64, learning_rate=1e-3, split=(70, 15, 15)
    )
    entry = Experiment(ExperimentSpec(benchmark, "2D.SmallCNN", ExperimentOptions(tensorboard=False)), settings).run()
    ids, targets, predictions, classes = read_predictions(
        tmp_path / entry["storage"]["run_dir"] / "predictions" / "test.csv"
    )
    assert len(ids) == len(set(ids)) > 40
    for index, name in enumerate(classes):
        labels = targets[:, index]
        logged = entry["test"]["per_class"][name]["auroc"]
        if 0 < labels.sum() < len(labels):
            assert logged == pytest.approx(roc_auc_score(labels, predictions[:, index]), abs=1e-9)
        else:
            assert logged is None
    assert np.isfinite(predictions).all()

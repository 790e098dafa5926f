"""Task types: binary, multi-class (one class per image) and multi-label, chosen from the dataset; their
losses, class weights and metrics against scikit-learn, and a multi-class experiment end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)
from sklearn.utils.class_weight import compute_class_weight

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.vocabulary import LOSSES, losses_for
from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, register_dataset
from medbench.data.tasks import one_class_per_image, task_for
from medbench.errors import ConfigError, DatasetError
from medbench.losses.class_weights import compute_multiclass_weights
from medbench.settings import Settings

SHAPES = ("Circle", "Square", "Stripes")


def _spec(**changes: object) -> DatasetSpec:
    fields = {"name": "skin", "format": "onehot", "root": "skin", "train": "gt.csv", "image_dir": "img"}
    return DatasetSpec(**{**fields, "classes": ("MEL", "NV", "BCC"), **changes})


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())


# which task a dataset's label set makes


def test_the_task_follows_the_format_unless_the_spec_declares_one() -> None:
    assert _spec().declared_task == "multiclass" and _spec().task_for(3) == "multiclass"
    assert _spec(task="multilabel").task_for(3) == "multilabel"
    assert datasets.get_dataset("chexpert").task_for(5) == "multilabel"
    folder = DatasetSpec(name="f", format="folder", root="f", train="train", classes=("a", "b"))
    assert folder.task_for(2) == "multiclass"
    one = DatasetSpec(name="g", format="csv", root="g", train="t.csv", path_column="p", classes=("k",))
    assert one.task_for(1) == "binary"
    with pytest.raises(DatasetError, match="task 'single'; expected one of multilabel, multiclass or None"):
        _spec(task="single")
    with pytest.raises(DatasetError, match="is multi-class .* at least 2 classes, got 1"):
        task_for("multiclass", 1, "skin")


def test_a_multiclass_row_with_two_or_no_classes_is_refused_naming_the_sample() -> None:
    table = pd.DataFrame(
        {"sample_id": ["a.jpg", "b.jpg", "c.jpg"], "MEL": [1.0, 0.0, 0.0], "NV": [0.0, 1.0, 0.0], "BCC": [0, 0, 1.0]}
    )
    assert one_class_per_image(table, ("MEL", "NV", "BCC"), ("MEL", "NV"), "skin")["sample_id"].tolist() == [
        "a.jpg",
        "b.jpg",
    ]
    table.loc[1, "MEL"] = 1.0
    with pytest.raises(DatasetError, match=r"sample 'b.jpg' marks \['MEL', 'NV'\] \(2 of 3\).*task='multilabel'"):
        one_class_per_image(table, ("MEL", "NV", "BCC"), ("MEL", "NV"), "skin")
    table.loc[1, ["MEL", "NV"]] = 0.0
    with pytest.raises(DatasetError, match=r"sample 'b.jpg' marks no class \(0 of 3\)"):
        one_class_per_image(table, ("MEL", "NV", "BCC"), ("MEL", "NV", "BCC"), "skin")


def test_a_loss_must_fit_the_task_and_every_loss_token_round_trips(registry: None) -> None:
    register_dataset(_spec())
    assert losses_for("multiclass") == ("CCE", "WCCE", "FL") and losses_for("binary") == ("BCE", "WBCE", "CWBCE", "FL")
    for loss in LOSSES:
        benchmark = Benchmark("skin", loss=loss, n_classes=3, image_size=32)
        assert Benchmark.from_name(benchmark.name) == benchmark
    assert ExperimentSpec("skin_CCE_E1_B4_C0_N3_D32_DS602020_1LR3_LF5_Adam").check().task == "multiclass"
    with pytest.raises(
        ConfigError, match="loss BCE does not fit dataset 'skin', which is multi-class .* CCE, WCCE, FL"
    ):
        ExperimentSpec("skin_BCE_E1_B4_C0_N3_D32_DS602020_1LR3_LF5_Adam").check()
    with pytest.raises(ConfigError, match="loss WCCE does not fit dataset 'demo', which is multi-label"):
        ExperimentSpec("demo_WCCE_E1_B4_C0_N5_D32_1LR3_LF5_Adam").check()


# losses and class weights


def test_multiclass_weights_are_scikit_learns_balanced_weights() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 0])
    onehot = np.eye(3)[truth]
    onehot = np.vstack([onehot, np.full((1, 3), np.nan)])
    weights = compute_multiclass_weights(onehot, ("a", "b", "c"))
    np.testing.assert_allclose(weights.positive, compute_class_weight("balanced", classes=np.arange(3), y=truth))
    assert weights.n_pos.tolist() == [6, 3, 1]


def test_categorical_losses_equal_scikit_learn_and_ignore_unlabelled_rows() -> None:
    from medbench.losses.benchmark_loss import make_loss

    rng = np.random.default_rng(0)
    truth = np.array([0, 2, 1, 1, 0, 2, 2, 1])
    onehot = np.eye(3)[truth].astype("float32")
    logits = rng.normal(size=(8, 3))
    probabilities = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")
    cce = make_loss("CCE", task="multiclass")
    assert float(cce(onehot, probabilities)) == pytest.approx(log_loss(truth, probabilities), rel=1e-5)

    masked = np.vstack([onehot, np.full((2, 3), np.nan, "float32")])
    extra = np.vstack([probabilities, np.full((2, 3), 1 / 3, "float32")])
    assert float(cce(masked, extra)) == pytest.approx(log_loss(truth, probabilities), rel=1e-5)

    weights = compute_multiclass_weights(onehot, ("a", "b", "c"))
    per_sample = -np.log(probabilities[np.arange(8), truth]) * weights.positive[truth]
    wcce = make_loss("WCCE", weights, task="multiclass")
    assert float(wcce(onehot, probabilities)) == pytest.approx(per_sample.mean(), rel=1e-5)
    with pytest.raises(ConfigError, match="loss WCCE needs class weights.*compute_multiclass_weights"):
        make_loss("WCCE", None, task="multiclass")
    with pytest.raises(ConfigError, match="loss BCE does not fit a multiclass task; expected one of CCE, WCCE, FL"):
        make_loss("BCE", task="multiclass")
    assert make_loss("FL", task="multiclass").name == "categorical_focal_loss"
    assert make_loss("FL", task="binary").name == "binary_focal_loss"


# a multi-class experiment end to end


def _shape_image(kind: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    image = rng.integers(0, 60, (size, size), dtype=np.uint8)
    x, y = (int(v) for v in rng.integers(14, size - 14, 2))
    if kind == "Circle":
        cv2.circle(image, (x, y), 9, 230, -1)
    elif kind == "Square":
        cv2.rectangle(image, (x - 9, y - 9), (x + 9, y + 9), 230, -1)
    else:
        image[:, ::6] = 230
    return image


@pytest.fixture
def shapes_dataset(tmp_path: Path, registry: None) -> Settings:
    """An ISIC-layout one-hot dataset of 90 images (45 patients), one of three shapes per image."""
    root = tmp_path / "data" / "shapes"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(3)
    rows = []
    for index in range(90):
        kind = SHAPES[index % 3]
        name = f"p{index // 2:03d}_{index % 2}"
        cv2.imwrite(str(root / "img" / f"{name}.png"), _shape_image(kind, rng))
        rows.append([name, *("1" if kind == shape else "0" for shape in SHAPES)])
    pd.DataFrame(rows, columns=["image", *SHAPES]).to_csv(root / "gt.csv", index=False)
    register_dataset(
        DatasetSpec(
            name="shapes",
            format="onehot",
            root="shapes",
            train="gt.csv",
            image_dir="img",
            image_extension="png",
            patient_pattern=r"(p\d+)_",
            classes=SHAPES,
        )
    )
    return Settings(tmp_path, tmp_path / "data", tmp_path / "models", tmp_path / "logs", tmp_path / "weights")


@pytest.mark.slow
def test_a_multiclass_experiment_trains_a_softmax_and_reports_scikit_learns_metrics(shapes_dataset: Settings) -> None:
    from medbench.architectures.standardization import load_run_model
    from medbench.benchmark.options import ExperimentOptions
    from medbench.experiment import Experiment
    from medbench.prediction import predict_images, resolve_run
    from medbench.reevaluation import reevaluate_runs
    from medbench.runs.predictions import read_predictions

    settings = shapes_dataset
    name = "shapes_WCCE_E8_B8_C0_N3_D32_DS602020_1LR3_LF5_Adam"
    entry = Experiment(ExperimentSpec(name, options=ExperimentOptions(tensorboard=False)), settings).run()
    run_dir = settings.models_dir / entry["name"] / entry["id"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"] == "multiclass" and entry["task"] == "multiclass"
    assert set(config["class_weights"]["per_class"]) == set(SHAPES)
    model = load_run_model(run_dir / "model.keras", "unit", 1)
    assert model.get_layer("predictions").activation.__name__ == "softmax"

    for part in ("val", "test"):
        ids, targets, predictions, classes = read_predictions(run_dir / "predictions" / f"{part}.csv")
        assert classes == SHAPES
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
        truth, predicted = targets.argmax(axis=1), predictions.argmax(axis=1)
        report = entry[part]
        assert report["task"] == "multiclass" and report["n_samples"] == len(ids)
        assert report["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted), abs=1e-12)
        assert report["confusion"] == confusion_matrix(truth, predicted, labels=[0, 1, 2]).tolist()
        for index, shape in enumerate(SHAPES):
            expected = roc_auc_score(truth == index, predictions[:, index])
            assert report["per_class"][shape]["auroc"] == pytest.approx(expected, abs=1e-12)
        macro = roc_auc_score(truth, predictions, multi_class="ovr", average="macro")
        assert report["macro"]["auroc"] == pytest.approx(macro, abs=1e-9)
    assert entry["val"]["macro"]["auroc"] > 0.8 and entry["test"]["accuracy"] > 0.6

    again = reevaluate_runs(settings, [entry["id"]], progress=False)
    assert not again.skipped
    (reevaluated,) = again.entries
    for part in ("val", "test"):
        assert reevaluated[f"{part}_again"]["confusion"] == entry[part]["confusion"]
        assert reevaluated[f"{part}_again"]["macro"]["auroc"] == pytest.approx(entry[part]["macro"]["auroc"], abs=1e-9)

    ids, _, stored, classes = read_predictions(run_dir / "predictions" / "test.csv")
    paths = [str(settings.data_dir / "shapes" / sample) for sample in ids[:5]]
    frame = predict_images(resolve_run(entry["id"], settings), paths, settings, batch_size=2)
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored[:5], atol=1e-5)

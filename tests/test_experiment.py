"""Experiments end to end on the demo data: files, logs, best epoch, exact metrics, fresh optimizers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ImageError
from medbench.experiment import Experiment
from medbench.experiment_data import prepare_data
from medbench.runs.predictions import read_predictions
from medbench.settings import Settings
from medbench.tracking.logs import FAILED_LOG, UNVALIDATED_LOG, ExperimentLog
from medbench.training.model import make_optimizer

pytestmark = pytest.mark.slow

BENCHMARK = Benchmark.from_name("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")
FAST = ExperimentOptions(tensorboard=False)


@pytest.fixture
def finished(settings: Settings) -> tuple[Experiment, dict]:
    experiment = Experiment(ExperimentSpec(BENCHMARK, "2D.SmallCNN", ExperimentOptions()), settings)
    return experiment, experiment.run()


def test_a_run_leaves_every_file(finished: tuple[Experiment, dict]) -> None:
    experiment, entry = finished
    run_dir = experiment.run_dir
    assert run_dir.parent.name == "SmallCNN_" + BENCHMARK.name
    for name in (
        "config.json",
        "model.keras",
        "history.json",
        "result.json",
        "predictions/val.csv",
        "predictions/test.csv",
    ):
        assert (run_dir / name).is_file(), name
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-001.keras", "epoch-002.keras"]
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents*"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["benchmark"]["name"] == BENCHMARK.name and config["seed"] == BENCHMARK.seed
    assert config["id"] == entry["id"] and "tensorflow" in config["versions"]
    logged = ExperimentLog(experiment.settings.logs_dir / UNVALIDATED_LOG).read()
    assert [e["id"] for e in logged] == [entry["id"]]
    assert logged[0]["benchmark"]["loss"] == "BCE" and logged[0]["architecture"] == "2D.SmallCNN"


def test_logged_metrics_equal_sklearn_on_the_stored_predictions(finished: tuple[Experiment, dict]) -> None:
    experiment, entry = finished
    for part in ("val", "test"):
        ids, targets, predictions, classes = read_predictions(experiment.run_dir / "predictions" / f"{part}.csv")
        assert list(classes) == entry["classes"]
        aurocs = []
        for index, name in enumerate(classes):
            known = ~np.isnan(targets[:, index])
            labels = targets[known, index]
            logged = entry[part]["per_class"][name]["auroc"]
            if 0 < labels.sum() < len(labels):
                expected = roc_auc_score(labels, predictions[known, index])
                assert logged == pytest.approx(expected, abs=1e-9)
                aurocs.append(expected)
            else:
                assert logged is None
        assert entry[part]["macro"]["auroc"] == pytest.approx(np.mean(aurocs), abs=1e-9)


def test_predictions_are_keyed_by_sample_id_in_split_order(finished: tuple[Experiment, dict]) -> None:
    experiment, _ = finished
    data = prepare_data(experiment.spec, experiment.settings.data_dir)
    ids, targets, _, _ = read_predictions(experiment.run_dir / "predictions" / "val.csv")
    assert ids == list(data.val.sample_ids)
    np.testing.assert_array_equal(targets, data.val.targets)


def test_best_model_is_the_epoch_with_the_best_validation_auroc(finished: tuple[Experiment, dict]) -> None:
    experiment, entry = finished
    history = json.loads((experiment.run_dir / "history.json").read_text())
    scores = [row["val_mean_auroc"] for row in history]
    assert entry["best_epoch"] == int(np.argmax(scores)) + 1
    best = (experiment.run_dir / "checkpoints" / f"epoch-{entry['best_epoch']:03d}.keras").read_bytes()
    assert (experiment.run_dir / "model.keras").read_bytes() == best
    assert entry["val"]["macro"]["auroc"] == pytest.approx(max(scores), abs=1e-9)


def test_reruns_get_their_own_run_folder(settings: Settings) -> None:
    first = Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), settings)
    second = Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), settings)
    first.run()
    second.run()
    assert first.run_id != second.run_id and first.run_dir.parent == second.run_dir.parent
    assert len([path for path in first.run_dir.parent.iterdir() if path.is_dir()]) == 2
    assert len(ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()) == 2


def test_each_run_starts_from_its_own_learning_rate(settings: Settings) -> None:
    # The original shared optimizer instances: a decayed learning rate leaked into the next run.
    decaying = ExperimentOptions(lr_schedule="epoch", tensorboard=False)
    Experiment(
        ExperimentSpec(BENCHMARK.with_(epochs=2, learning_rate=1e-2, lr_factor=0.1), options=decaying), settings
    ).run()
    second = Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1, learning_rate=3e-3), options=FAST), settings)
    second.run()
    history = json.loads((second.run_dir / "history.json").read_text())
    assert history[0]["learning_rate"] == pytest.approx(3e-3)
    assert make_optimizer("Adam", 1e-3) is not make_optimizer("Adam", 1e-3)


def test_weighted_losses_train(settings: Settings) -> None:
    for loss in ("WBCE", "CWBCE"):
        entry = Experiment(
            ExperimentSpec(BENCHMARK.with_(epochs=1, loss=loss, l1_normed=True), options=FAST), settings
        ).run()
        assert entry["status"] == "completed"
        config = json.loads((settings.root / entry["storage"]["run_dir"] / "config.json").read_text())
        assert config["class_weights"] is not None


def test_a_corrupt_image_is_named_and_nothing_logged_is_lost(settings: Settings, tmp_path: Path) -> None:
    Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), settings).run()
    log = ExperimentLog(settings.logs_dir / UNVALIDATED_LOG)
    before = log.path.read_bytes()

    broken_data = tmp_path / "broken-data"
    import shutil

    shutil.copytree(settings.data_dir / "demo", broken_data / "demo")
    data = prepare_data(ExperimentSpec(BENCHMARK, options=FAST), broken_data)
    victim = Path(data.train.paths[3].replace(str(settings.data_dir), str(broken_data)))
    victim.write_bytes(victim.read_bytes()[:200])
    broken = Settings(**{**settings.__dict__, "data_dir": broken_data})
    with pytest.raises(ImageError) as error:
        Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), broken).run()
    assert victim.name in str(error.value) and str(victim.parent.name) in str(error.value)
    assert log.path.read_bytes() == before
    assert not (settings.logs_dir / FAILED_LOG).exists()


def _copy_demo(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    import shutil

    data_dir = tmp_path / "copied-data"
    shutil.copytree(settings.data_dir / "demo", data_dir / "demo")
    return Settings(
        **{**settings.__dict__, "data_dir": data_dir}
    ), data_dir / "demo" / "CheXpert-v1.0-small" / "train.csv"


@pytest.mark.parametrize(
    ("corrupt", "must_mention"),
    [
        (lambda rows: [rows[0].replace(",Edema,", ",Oedema,")] + rows[1:], ["train.csv", "Edema"]),
        (
            lambda rows: rows[:3] + [rows[3].rsplit(",", 1)[0] + ",2.0"] + rows[4:],
            ["train.csv", "row 4", "Support Devices", "2.0"],
        ),
        (lambda rows: rows[:2] + [rows[2].rsplit(",", 1)[0] + ",yes"] + rows[3:], ["train.csv", "row 3", "'yes'"]),
        (
            lambda rows: rows[:5] + [rows[5].replace("view1_frontal", "view9_frontal")] + rows[6:],
            ["train.csv", "view9_frontal"],
        ),
    ],
    ids=["missing-column", "label-2.0", "non-numeric", "missing-image"],
)
def test_malformed_csv_is_named_and_earlier_results_survive(
    settings: Settings, tmp_path: Path, corrupt, must_mention
) -> None:
    from medbench.errors import DatasetError

    finished = Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), settings).run()
    log_before = (settings.logs_dir / UNVALIDATED_LOG).read_bytes()
    checkpoint = settings.root / finished["storage"]["run_dir"] / "checkpoints" / "epoch-001.keras"
    checkpoint_before = checkpoint.read_bytes()

    broken, csv_path = _copy_demo(settings, tmp_path)
    rows = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(corrupt(rows)) + "\n")
    with pytest.raises(DatasetError) as error:
        Experiment(ExperimentSpec(BENCHMARK.with_(epochs=1), options=FAST), broken).run()
    for text in must_mention:
        assert text in str(error.value)
    assert (settings.logs_dir / UNVALIDATED_LOG).read_bytes() == log_before
    assert checkpoint.read_bytes() == checkpoint_before


def test_same_seed_same_history(settings: Settings) -> None:
    runs = [Experiment(ExperimentSpec(BENCHMARK.with_(epochs=2), options=FAST), settings) for _ in range(2)]
    for run in runs:
        run.run()
    first, second = (json.loads((run.run_dir / "history.json").read_text()) for run in runs)
    for a, b in zip(first, second):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["val_mean_auroc"] == pytest.approx(b["val_mean_auroc"], abs=1e-6)


def test_predict_matches_the_stored_predictions(finished: tuple[Experiment, dict]) -> None:
    from medbench.prediction import predict_images, resolve_run

    experiment, entry = finished
    data = prepare_data(experiment.spec, experiment.settings.data_dir)
    ids, _, stored, classes = read_predictions(experiment.run_dir / "predictions" / "test.csv")
    frame = predict_images(
        resolve_run(entry["id"], experiment.settings), data.test.paths[:5], experiment.settings, batch_size=2
    )
    assert list(frame.columns) == ["image", *classes]
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored[:5], atol=1e-5)

    broken = experiment.settings.root / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(ImageError, match=r"(?s)1 image\(s\) cannot be read.*broken\.png: is not an image"):
        predict_images(resolve_run(entry["id"], experiment.settings), [data.test.paths[0], broken], experiment.settings)


def test_uncertainty_policy_shapes_training_targets_only(settings: Settings) -> None:
    ones = prepare_data(
        ExperimentSpec(BENCHMARK.with_(uncertainty="ones", split=(50, 30, 20)), options=FAST), settings.data_dir
    )
    zeros = prepare_data(
        ExperimentSpec(BENCHMARK.with_(uncertainty="zeros", split=(50, 30, 20)), options=FAST), settings.data_dir
    )
    assert not np.array_equal(ones.train.targets, zeros.train.targets)
    for part in ("val", "test"):
        a, b = getattr(ones, part).targets, getattr(zeros, part).targets
        np.testing.assert_array_equal(a, b)
        assert np.isnan(a).any()  # the uncertain labels of the split are masked for evaluation

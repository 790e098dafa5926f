"""Ensembles of real runs: aggregation, TTA, weighted averaging and stacking fitted on validation only, the
ensemble folder and its log entry, re-evaluation, members that do not fit together, bagging, storage."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_process import medbench_env
from sklearn.metrics import roc_auc_score

from medbench.benchmark.options import ExperimentOptions, fold_of
from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import get_dataset, load_dataset
from medbench.data.splits import leave_fold_out
from medbench.ensemble.aggregate import aggregate, global_argmax, majority_vote, median, softmax
from medbench.ensemble.options import EnsembleOptions, TTAOptions
from medbench.ensemble.stacking import fit_stacking, predict_stacking
from medbench.ensemble.weights import fit_weights, weighted_mean
from medbench.errors import ConfigError
from medbench.runs.predictions import read_predictions, write_predictions
from medbench.runs.run_dir import RunDir
from medbench.runs.saved_run import SavedRun, scan_runs
from medbench.settings import Settings
from medbench.tracking.logs import REEVALUATION_LOG, UNVALIDATED_LOG, ExperimentLog

logger = logging.getLogger(__name__)

BENCHMARK = "demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
OTHER_SPLIT = "demo_BCE_E1_B16_C0_N5_D32_DS7030_1LR3_LF5_Adam"
BAGGED = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
WEIGHTED_LOSS = "demo_WBCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
QUIET = ExperimentOptions(tensorboard=False)


# ----------------------------------------------------------------------------------------- pure functions


def _aucmedi_reference(stack: np.ndarray, method: str) -> np.ndarray:
    """AUCMEDI's aggregate functions written per image, as AUCMEDI does (the reference for the vectorised ones)."""
    rows = []
    for sample in range(stack.shape[1]):
        preds = stack[:, sample, :]
        if method == "vote":
            votes = np.argmax(preds, axis=1)
            row = np.zeros(preds.shape[1])
            row[np.argmax(np.bincount(votes, minlength=preds.shape[1]))] = 1
        elif method == "softmax":
            summed = np.sum(preds, axis=0)
            row = np.exp(summed) / np.sum(np.exp(summed))
        else:  # global argmax
            row = preds[np.unravel_index(np.argmax(preds), preds.shape)[0]]
        rows.append(row)
    return np.asarray(rows)


def test_aggregate_functions_on_hand_made_arrays() -> None:
    stack = np.array(
        [
            [[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]],
            [[0.1, 0.7, 0.2], [0.3, 0.4, 0.3]],
            [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]],
        ]
    )
    np.testing.assert_allclose(aggregate(stack, "mean"), [[0.3, 0.5, 0.2], [1.4 / 3, 0.65 / 3, 0.95 / 3]])
    np.testing.assert_allclose(median(stack), [[0.2, 0.5, 0.2], [0.3, 0.2, 0.3]])
    # votes: sample 0 → classes 1, 1, 0; sample 1 → 0, 1, 2 (a tie: the first class wins, as np.bincount's argmax)
    np.testing.assert_array_equal(aggregate(stack, "vote", task="multiclass"), [[0, 1, 0], [1, 0, 0]])
    summed = np.array([0.9, 1.5, 0.6])
    np.testing.assert_allclose(softmax(stack)[0], np.exp(summed) / np.exp(summed).sum())
    # the cycle holding the largest value: 0.7 (cycle 1) for sample 0, 0.9 (cycle 0) for sample 1
    np.testing.assert_array_equal(global_argmax(stack), [[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])

    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.ones(4), size=(7, 50))  # 7 cycles, 50 images, 4 classes
    for method in ("vote", "softmax", "argmax"):
        np.testing.assert_allclose(aggregate(random, method, task="multiclass"), _aucmedi_reference(random, method))

    sigmoid = np.array([[[0.6, 0.4, 0.1]], [[0.7, 0.6, 0.2]]])  # two cycles of one multi-label image
    np.testing.assert_array_equal(majority_vote(sigmoid, one_class_per_image=False), [[1.0, 0.5, 0.0]])
    np.testing.assert_array_equal(aggregate(sigmoid, "vote", task="multilabel"), [[1.0, 0.5, 0.0]])
    with pytest.raises(ConfigError, match="'softmax' makes one class per image"):
        aggregate(sigmoid, "softmax", task="multilabel")
    with pytest.raises(ConfigError, match="aggregate 'max': expected one of mean, median, vote, softmax, argmax"):
        aggregate(stack, "max")
    with pytest.raises(ConfigError, match="tta n_cycles 0"):
        TTAOptions(n_cycles=0)
    with pytest.raises(ConfigError, match="meta-learner 'svm'"):
        EnsembleOptions(method="stacking", meta_learner="svm")


def test_weights_and_stacking_learn_from_the_labels_they_are_given() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(80, 3)).astype(float)
    targets[:5, 1] = np.nan  # masked cells are left out
    good = np.clip(np.nan_to_num(targets, nan=0.5) * 0.6 + 0.2 + rng.normal(0, 0.05, targets.shape), 0, 1)
    noise = rng.random(targets.shape)
    stack = np.stack([noise, good, noise[::-1]])
    weights = fit_weights(stack, targets, "multilabel")
    assert weights.sum() == pytest.approx(1.0) and weights[1] > 0.8
    assert np.array_equal(fit_weights(stack, targets, "multilabel"), weights)  # deterministic
    assert weighted_mean(stack, weights).shape == targets.shape

    constant = targets.copy()
    constant[:, 2] = 0.0  # one value only: that class falls back to the members' mean
    model = fit_stacking("logreg", stack, constant, "multilabel")
    assert model["fallback"] == [2]
    predicted = predict_stacking(model, stack)
    np.testing.assert_array_equal(predicted[:, 2], stack.mean(axis=0)[:, 2])
    assert roc_auc_score(targets[5:, 1], predicted[5:, 1]) > 0.9

    classes = rng.integers(0, 3, size=60)
    onehot = np.eye(3)[classes]
    softmaxed = np.stack([rng.dirichlet(np.ones(3), size=60), 0.7 * onehot + 0.1])
    for name in ("logreg", "forest", "boosting", "mlp"):
        probabilities = predict_stacking(fit_stacking(name, softmaxed, onehot, "multiclass"), softmaxed)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert (probabilities.argmax(axis=1) == classes).mean() > 0.9, name


def test_bagging_folds_are_patient_disjoint_and_checked() -> None:
    assert fold_of("2/5") == (2, 5)
    for bad in ("5/5", "1/1", "a/3", "3"):
        with pytest.raises(ConfigError, match="bagging_fold"):
            ExperimentOptions(bagging_fold=bad)
    import pandas as pd

    table = pd.DataFrame({"patient_id": [f"p{i // 3}" for i in range(60)], "sample_id": [str(i) for i in range(60)]})
    kept = [set(leave_fold_out(table, fold, 4, seed=7)["patient_id"]) for fold in range(4)]
    left_out = [set(table["patient_id"]) - patients for patients in kept]
    assert all(len(out) == 5 for out in left_out) and set().union(*left_out) == set(table["patient_id"])
    assert all(a.isdisjoint(b) for i, a in enumerate(left_out) for b in left_out[i + 1 :])


# ----------------------------------------------------------------------------------------- real runs


def _settings(root: Path, data_dir: Path) -> Settings:
    return Settings(
        root=root, data_dir=data_dir, models_dir=root / "models", logs_dir=root / "logs", weights_dir=root / "weights"
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> tuple[Settings, dict[str, str]]:
    """Four real runs on the demo data: a SmallCNN and a Vanilla CNN of two epochs, a SmallCNN of one epoch
    with the WBCE loss (another benchmark, the same split), and a SmallCNN on another split."""
    from medbench.experiment import Experiment

    settings = _settings(tmp_path_factory.mktemp("ensemble"), demo_data_dir)
    specs = {
        "small": ExperimentSpec(BENCHMARK, "2D.SmallCNN", QUIET),
        "vanilla": ExperimentSpec(BENCHMARK, "2D.Vanilla", QUIET),
        "short": ExperimentSpec(WEIGHTED_LOSS, "2D.SmallCNN", QUIET),
        "other_split": ExperimentSpec(OTHER_SPLIT, "2D.SmallCNN", QUIET),
    }
    ids = {key: Experiment(spec, settings).run()["id"] for key, spec in specs.items()}
    return settings, ids


def _copy(trained: tuple[Settings, dict[str, str]], root: Path) -> Settings:
    """The trained runs in a private project (logs included), so a test may change their files."""
    settings, _ = trained
    copy = replace(settings, root=root, models_dir=root / "models", logs_dir=root / "logs")
    shutil.copytree(settings.models_dir, copy.models_dir)
    return copy


def _members(ids: dict[str, str]) -> list[str]:
    """Three members of two architectures and two benchmarks on one split."""
    return [ids["small"], ids["vanilla"], ids["short"]]


def _folder(settings: Settings, entry: dict[str, Any]) -> RunDir:
    return RunDir(settings.models_dir / entry["name"] / entry["id"])


def _flip(settings: Settings, run_ids: list[str], part: str) -> None:
    """Replace the `part` labels in every member's stored predictions by their opposite (masks kept)."""
    for run_id in run_ids:
        (path,) = settings.models_dir.glob(f"*/{run_id}/predictions/{part}.csv")
        ids, targets, predictions, classes = read_predictions(path)
        write_predictions(path, classes, ids, 1.0 - targets, predictions)


@pytest.mark.slow
def test_the_mean_ensemble_is_recorded_like_a_run(trained: tuple[Settings, dict[str, str]], tmp_path: Path) -> None:
    from medbench.ensemble.build import build_ensemble
    from medbench.leaderboard import board, format_leaderboard
    from medbench.tracking.logs import repair_logs

    settings = _copy(trained, tmp_path)
    members = _members(trained[1])
    entry = build_ensemble(members, EnsembleOptions(), settings)

    folder = _folder(settings, entry)
    assert entry["name"] == f"Ensemble_mean_{BENCHMARK}" and folder.path.parent.name == entry["name"]
    assert sorted(path.relative_to(folder.path).as_posix() for path in folder.path.rglob("*") if path.is_file()) == [
        "config.json",
        "predictions/test.csv",
        "predictions/val.csv",
        "result.json",
    ]
    config = folder.read_config()
    assert config["kind"] == "ensemble" and config["method"] == "mean" and config["fitted_on"] == "val"
    assert [member["id"] for member in config["members"]] == members
    assert [member["architecture"] for member in config["members"]] == ["2D.SmallCNN", "2D.Vanilla", "2D.SmallCNN"]
    assert config["weights"] == pytest.approx([1 / 3] * 3) and config["classes"] == entry["classes"]
    assert folder.read_result() == entry
    assert [logged["id"] for logged in ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()][-1] == entry["id"]

    # the metric fields of a run's entry, and mean AUROC = scikit-learn's on the averaged member predictions
    run_entry = SavedRun.load(next(settings.models_dir.glob(f"*/{members[0]}"))).run_dir.read_result()
    for part in ("val", "test"):
        assert entry[part].keys() == run_entry[part].keys()
        assert entry[part]["per_class"].keys() == run_entry[part]["per_class"].keys()
        paths = [next(settings.models_dir.glob(f"*/{run_id}/predictions/{part}.csv")) for run_id in members]
        stored = [read_predictions(path) for path in paths]
        ids, targets, _, classes = stored[0]
        average = np.mean([member[2] for member in stored], axis=0)
        aurocs = []
        for column in range(len(classes)):
            labelled = ~np.isnan(targets[:, column])
            if len(np.unique(targets[labelled, column])) == 2:
                aurocs.append(roc_auc_score(targets[labelled, column], average[labelled, column]))
        assert abs(entry[part]["macro"]["auroc"] - np.mean(aurocs)) < 1e-9
        saved_ids, saved_targets, saved, _ = folder.read_predictions(part)
        assert saved_ids == ids and np.array_equal(saved_targets, targets, equal_nan=True)
        np.testing.assert_allclose(saved, average, atol=1e-8)
        results = [json.loads(next(settings.models_dir.glob(f"*/{m}/result.json")).read_text()) for m in members]
        singles = [round(result[part]["macro"]["auroc"], 4) for result in results]
        logger.info("%s mean AUROC: members %s, mean ensemble %.4f", part, singles, entry[part]["macro"]["auroc"])

    # the rest of medbench copes with the folder: not damaged, on the leaderboard, repaired into the logs
    scan = scan_runs(settings.models_dir)
    assert scan.damaged == [] and entry["id"] in {run.run_id for run in scan.runs}
    ranked = board(settings.logs_dir, settings.models_dir)
    assert ranked.skipped == [] and entry["id"] in set(ranked.frame["run"])
    row = next(line for line in format_leaderboard(ranked.frame).splitlines() if entry["id"] in line)
    assert f"Ensemble_mean_{BENCHMARK}" in row and " - " in row
    (settings.logs_dir / UNVALIDATED_LOG).unlink()
    skipped: list[str] = []
    assert entry["id"] in repair_logs(settings.models_dir, settings.logs_dir, skipped=skipped) and skipped == []
    with pytest.raises(ConfigError, match="is an ensemble of runs"):
        _ = SavedRun.load(folder).spec

    # and it has a report page, from its predictions (no training curves or overlays: it has no history or model)
    from medbench.report import write_reports

    (page,) = write_reports(settings, [entry["id"]], tmp_path / "reports")
    text = page.read_text(encoding="utf-8")
    assert entry["id"] in text and "data:image/png;base64," in text
    assert f"{entry['test']['macro']['auroc']:.4f}" in text


@pytest.mark.slow
def test_tta_of_one_plain_cycle_is_the_plain_prediction(trained: tuple[Settings, dict[str, str]]) -> None:
    from medbench.ensemble.members import stored_predictions
    from medbench.ensemble.tta import model_predictions

    settings, ids = trained
    run = SavedRun.load(next(settings.models_dir.glob(f"*/{ids['small']}")))
    plain = model_predictions(run, settings, TTAOptions(n_cycles=1, augmentations=()))
    for part in ("val", "test"):
        stored = stored_predictions(run, part)
        assert plain[part].ids == stored.ids
        assert np.array_equal(plain[part].predictions, stored.predictions)  # bit for bit
    augmented = model_predictions(run, settings, TTAOptions(n_cycles=2, augmentations=("affine", "color")))
    assert not np.array_equal(augmented["val"].predictions, plain["val"].predictions)
    again = model_predictions(run, settings, TTAOptions(n_cycles=2, augmentations=("affine", "color")))
    assert np.array_equal(again["val"].predictions, augmented["val"].predictions)  # seeded


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [EnsembleOptions("weighted")]
    + [EnsembleOptions("stacking", name) for name in ("logreg", "forest", "boosting", "mlp")],
    ids=lambda options: options.label,
)
def test_weights_and_meta_learners_see_validation_labels_only(
    trained: tuple[Settings, dict[str, str]], tmp_path: Path, options: EnsembleOptions
) -> None:
    from medbench.ensemble.build import build_ensemble

    def fitted(settings: Settings) -> tuple[Any, np.ndarray, np.ndarray]:
        entry = build_ensemble(members, options, settings)
        folder = _folder(settings, entry)
        config = folder.read_config()
        state = config["weights"] if options.method == "weighted" else config["meta_learner_fallback_classes"]
        return state, folder.read_predictions("val")[2], folder.read_predictions("test")[2]

    members = _members(trained[1])
    original = fitted(_copy(trained, tmp_path / "original"))
    test_flipped = _copy(trained, tmp_path / "test-flipped")
    _flip(test_flipped, members, "test")
    other = fitted(test_flipped)
    assert other[0] == original[0]
    assert np.array_equal(other[1], original[1]) and np.array_equal(other[2], original[2])

    val_flipped = _copy(trained, tmp_path / "val-flipped")
    _flip(val_flipped, members, "val")
    changed = fitted(val_flipped)
    assert not np.array_equal(changed[2], original[2])
    if options.method == "weighted":
        assert not np.allclose(changed[0], original[0])


@pytest.mark.slow
def test_reevaluate_reproduces_ensembles_from_the_members_models(
    trained: tuple[Settings, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from medbench.cli import main

    settings = _copy(trained, tmp_path)
    for key, value in medbench_env(settings).items():
        monkeypatch.setenv(key, value)
    members = _members(trained[1])
    built = []
    for argv in (
        [*members, "--method", "stacking", "--meta-learner", "forest"],
        [*members[:2], "--method", "weighted", "--tta", "2", "--aggregate", "median"],
    ):
        assert main(["ensemble", *argv]) == 0
        built.append(capsys.readouterr().out.split()[0])
    entries = {entry["id"]: entry for entry in ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()}
    stacking, tta = (entries[run_id] for run_id in built)
    assert stacking["name"] == f"Ensemble_stacking-forest_{BENCHMARK}"
    folder = _folder(settings, stacking)
    assert folder.meta_learner_path.is_file() and folder.read_config()["meta_learner_file"] == "meta_learner.joblib"
    assert _folder(settings, tta).read_config()["tta"] == {
        "n_cycles": 2,
        "aggregate": "median",
        "augmentations": None,
        "seed": 0,
    }

    assert main(["reevaluate", "--run", built[0], "--run", built[1]]) == 0
    printed = capsys.readouterr().out
    assert all(run_id in printed for run_id in built)
    again = {entry["id"]: entry for entry in ExperimentLog(settings.logs_dir / REEVALUATION_LOG).read()}
    for entry, used in ((stacking, members), (tta, members[:2])):
        assert again[entry["id"]]["val_again"] == entry["val"] and again[entry["id"]]["test_again"] == entry["test"]
        assert again[entry["id"]]["kind"] == "ensemble" and again[entry["id"]]["members"] == used

    # re-evaluating everything (ensembles after their members) leaves nothing out
    assert main(["reevaluate"]) == 0
    assert len(ExperimentLog(settings.logs_dir / REEVALUATION_LOG).read()) == 4 + 2

    from medbench.reevaluation import reevaluate_runs

    report = reevaluate_runs(settings, [built[0]], progress=False)  # no ensemble re-evaluator given
    assert report.entries == [] and "is an ensemble" in report.skipped[0]


@pytest.mark.slow
def test_members_that_do_not_share_the_split_are_refused(
    trained: tuple[Settings, dict[str, str]], capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from medbench.cli import build_parser, main
    from medbench.ensemble.arguments import ensemble_options
    from medbench.ensemble.build import build_ensemble

    settings, ids = trained
    with pytest.raises(ConfigError) as refused:
        build_ensemble([ids["small"], ids["other_split"]], settings=settings)
    message = str(refused.value)
    assert ids["small"] in message and ids["other_split"] in message
    assert "split [80, 20] vs [70, 30]" in message and "do not share the dataset, classes and split" in message
    with pytest.raises(ConfigError, match="at least 2 run ids"):
        build_ensemble([ids["small"], ids["small"]], settings=settings)
    with pytest.raises(ConfigError, match="no saved run with id"):
        build_ensemble([ids["small"], "20990101T000000Z-ffffff"], settings=settings)

    copy = _copy(trained, tmp_path)
    ensemble = build_ensemble([ids["small"], ids["short"]], settings=copy)
    with pytest.raises(ConfigError, match="is itself an ensemble"):
        build_ensemble([ids["small"], ensemble["id"]], settings=copy)

    for key, value in medbench_env(copy).items():
        monkeypatch.setenv(key, value)
    assert main(["ensemble", ids["small"], ids["other_split"]]) == 2
    assert "do not share the dataset, classes and split" in capsys.readouterr().err
    args = build_parser().parse_args(["ensemble", "--bagging", "3", BAGGED, "--option", "tensorboard=false"])
    assert (args.bagging, args.runs, args.option, ensemble_options(args)) == (
        3,
        [BAGGED],
        [("tensorboard", False)],
        EnsembleOptions(),
    )
    with pytest.raises(ConfigError, match="'softmax' makes one class per image"):
        build_ensemble([ids["small"]], EnsembleOptions(tta=TTAOptions(aggregate="softmax")), settings=copy)
    for argv, message in (
        (["ensemble", ids["small"], "--method", "median"], "invalid choice: 'median'"),
        (["ensemble", "--bagging", "3", BAGGED, ids["small"]], "--bagging K takes one BENCHMARK name"),
        (["ensemble", ids["small"], ids["short"], "--aggregate", "vote"], "--aggregate and --augment go with --tta"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_bagging_trains_members_on_disjoint_patient_folds(demo_data_dir: Path, tmp_path: Path) -> None:
    from medbench.ensemble.bagging import train_bagging
    from medbench.ensemble.reevaluate import reevaluate_ensemble
    from medbench.experiment_data import prepare_data

    settings = _settings(tmp_path, demo_data_dir)
    entry = train_bagging(BAGGED, 3, settings, architecture="2D.SmallCNN", run_options=QUIET)
    assert entry["name"] == f"Ensemble_bagging3-mean_{BAGGED}" and len(entry["members"]) == 3
    config = _folder(settings, entry).read_config()
    assert config["bagging"] == {"k": 3, "benchmark": BAGGED, "architecture": "2D.SmallCNN"}

    train_table, _ = load_dataset(get_dataset("demo"), demo_data_dir)
    patient = dict(zip(train_table["sample_id"], train_table["patient_id"]))
    whole = prepare_data(ExperimentSpec(BAGGED, "2D.SmallCNN", QUIET), demo_data_dir)
    everyone = {patient[sample] for sample in whole.train.sample_ids}
    left_out = []
    for fold, run_id in enumerate(entry["members"]):
        run = SavedRun.load(next(settings.models_dir.glob(f"*/{run_id}")))
        assert run.config["options"]["bagging_fold"] == f"{fold}/3"
        data = prepare_data(run.spec, demo_data_dir)
        assert data.val.sample_ids == whole.val.sample_ids and data.test.sample_ids == whole.test.sample_ids
        assert run.config["sizes"]["train"] == len(data.train) < len(whole.train)
        left_out.append(everyone - {patient[sample] for sample in data.train.sample_ids})
    assert set().union(*left_out) == everyone and sum(len(out) for out in left_out) == len(everyone)
    logger.info("bagging: %d training patients, left out per member %s", len(everyone), [len(o) for o in left_out])

    again = reevaluate_ensemble(SavedRun.load(_folder(settings, entry)), settings)
    assert again["val_again"] == entry["val"] and again["test_again"] == entry["test"]
    reused = train_bagging(BAGGED, 3, settings, architecture="2D.SmallCNN", run_options=QUIET)
    assert reused["members"] == entry["members"] and reused["id"] != entry["id"]  # completed members are reused


@pytest.mark.slow
def test_an_ensemble_syncs_and_pulls_like_a_run(trained: tuple[Settings, dict[str, str]], tmp_path: Path) -> None:
    from gcs_emulator import running_emulator

    from medbench.ensemble.build import build_ensemble
    from medbench.tracking.storage import enqueue_run, pull, sync

    copy = _copy(trained, tmp_path / "project")
    entry = build_ensemble(_members(trained[1]), EnsembleOptions("stacking", "logreg"), copy)
    folder = _folder(copy, entry)
    with running_emulator("medbench-ensembles"):
        bucket = replace(copy, gcs_bucket="medbench-ensembles", gcs_prefix="team")
        enqueue_run(folder.path, entry, bucket)
        assert sync(bucket, deadline_s=20).uploaded == [entry["id"]]
        fresh = replace(bucket, models_dir=tmp_path / "elsewhere" / "models")
        pulled = pull(entry["id"], fresh)
    assert pulled == fresh.models_dir / entry["name"] / entry["id"]
    for name in ("config.json", "meta_learner.joblib", "predictions/val.csv", "predictions/test.csv"):
        assert (pulled / name).read_bytes() == (folder / name).read_bytes(), name
    assert json.loads((pulled / "result.json").read_text())["storage"]["remote"].startswith("gs://medbench-ensembles/")

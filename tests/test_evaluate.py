"""`medbench evaluate` and its metrics: AUROC and AUPRC equal scikit-learn's on random rows with ties, the
bootstrap resamples patients and is fast, thresholds come from validation only, and the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score

from medbench.errors import DatasetError
from medbench.evaluation.evaluate import evaluate_files
from medbench.metrics.bootstrap import bootstrap_auroc
from medbench.metrics.calibration import reliability
from medbench.metrics.curves import average_precision

CLASSES = ("Atelectasis", "Cardiomegaly", "Edema", "Effusion")


def _write(tmp_path: Path, n: int = 3000, seed: int = 0, masked: float = 0.05) -> tuple[Path, Path, pd.DataFrame]:
    """Truth and predictions CSVs of `n` images with tied scores (rounded to 2 decimals) and masked labels."""
    rng = np.random.default_rng(seed)
    ids = [f"img{index:05d}.png" for index in range(n)]
    truth = pd.DataFrame({"image": ids, "patient": [f"P{index // 4}" for index in range(n)]})
    scores = pd.DataFrame({"image_name": ids[::-1]})
    for j, name in enumerate(CLASSES):
        labels = rng.random(n) < 0.2 + 0.1 * j
        noisy = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1)
        column = np.where(labels, "1", "0").astype(object)
        column[rng.random(n) < masked] = ""
        truth[name] = column
        scores[name] = np.round(noisy, 2)[::-1]
    truth_path, scores_path = tmp_path / f"truth{seed}.csv", tmp_path / f"scores{seed}.csv"
    truth.to_csv(truth_path, index=False)
    scores.to_csv(scores_path, index=False)
    return truth_path, scores_path, truth


def test_the_summary_reproduces_scikit_learn_per_class(tmp_path: Path) -> None:
    truth_path, scores_path, truth = _write(tmp_path)
    summary = evaluate_files(truth_path, scores_path, tmp_path / "out", n_resamples=200)
    scores = pd.read_csv(scores_path).set_index("image_name").loc[truth["image"]]
    for name in CLASSES:
        known = truth[name] != ""
        labels = truth.loc[known, name].astype(int).to_numpy()
        predicted = scores.loc[known.to_numpy(), name].to_numpy()
        row = summary["per_class"][name]
        assert row["auroc"] == pytest.approx(roc_auc_score(labels, predicted), abs=1e-9)
        assert row["auprc"] == pytest.approx(average_precision_score(labels, predicted), abs=1e-9)
        assert row["f1"] == pytest.approx(f1_score(labels, predicted >= 0.5), abs=1e-12)
        assert row["n_pos"] == labels.sum() and row["n_neg"] == (labels == 0).sum()
        assert row["auroc_ci"]["low"] < row["auroc"] < row["auroc_ci"]["high"]
    assert summary["macro"]["auroc"] == pytest.approx(np.mean([summary["per_class"][c]["auroc"] for c in CLASSES]))
    assert summary["thresholds"]["Edema"] == {"value": 0.5, "source": "fixed"}


def test_average_precision_and_calibration_match_their_definitions() -> None:
    rng = np.random.default_rng(4)
    labels = (rng.random(400) < 0.3).astype(float)
    scores = np.round(rng.random(400), 1)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    calibration = reliability(labels, scores, n_bins=5)
    bins = np.minimum((scores * 5).astype(int), 4)
    expected = sum(
        np.mean(bins == b) * abs(labels[bins == b].mean() - scores[bins == b].mean())
        for b in range(5)
        if (bins == b).any()
    )
    assert calibration.ece == pytest.approx(expected, abs=1e-12) and sum(calibration.counts) == 400


def test_the_bootstrap_resamples_patients() -> None:
    """On the issue's problem size (its speed is measured in benchmarks/bootstrap.py)."""
    rng = np.random.default_rng(1)
    n, c = 22_000, 14
    targets = (rng.random((n, c)) < 0.3).astype(float)
    targets[rng.random((n, c)) < 0.05] = np.nan
    scores = np.clip(targets * 0.2 + rng.random((n, c)), 0, 1.2) / 1.2
    patients = [f"P{index // 3}" for index in range(n)]
    per_class, macro = bootstrap_auroc(targets, scores, [f"c{j}" for j in range(c)], patient_ids=patients)
    assert macro.n_resamples == 1000 and macro.low < macro.high
    one = per_class["c0"]
    assert one.low < roc_auc_score(targets[~np.isnan(targets[:, 0]), 0], scores[~np.isnan(targets[:, 0]), 0]) < one.high

    # 30 patients with 10 copies of one image each: resampling images treats the copies as independent
    labels, values = np.repeat(rng.random(30) < 0.5, 10).astype(float), np.repeat(rng.random(30), 10)
    copies = [f"P{index // 10}" for index in range(300)]
    by_patient, _ = bootstrap_auroc(labels[:, None], values[:, None], ["a"], patient_ids=copies, seed=3)
    by_image, _ = bootstrap_auroc(labels[:, None], values[:, None], ["a"], seed=3)
    assert (by_patient["a"].high - by_patient["a"].low) > 2 * (by_image["a"].high - by_image["a"].low)


def test_thresholds_are_chosen_on_validation_and_test_labels_cannot_move_them(tmp_path: Path) -> None:
    val_truth, val_scores, _ = _write(tmp_path, n=800, seed=1)
    test_truth, test_scores, _ = _write(tmp_path, n=800, seed=2)
    first = evaluate_files(
        test_truth, test_scores, tmp_path / "a", val_truth=val_truth, val_predictions=val_scores, n_resamples=0
    )
    flipped = pd.read_csv(test_truth, dtype=str, keep_default_na=False)
    for name in CLASSES:
        flipped[name] = flipped[name].map({"1": "0", "0": "1", "": ""})
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    second = evaluate_files(
        tmp_path / "flipped.csv",
        test_scores,
        tmp_path / "b",
        val_truth=val_truth,
        val_predictions=val_scores,
        n_resamples=0,
    )
    assert first["thresholds"] == second["thresholds"]
    assert all(entry["source"] == "validation (youden)" for entry in first["thresholds"].values())


def test_missing_or_extra_images_and_bad_cells_are_named(tmp_path: Path) -> None:
    truth_path, scores_path, _ = _write(tmp_path, n=30)
    scores = pd.read_csv(scores_path)
    scores.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DatasetError, match=r"images without a prediction in short.csv: 'img00000.png'"):
        evaluate_files(truth_path, tmp_path / "short.csv", tmp_path / "out")
    extra = pd.concat([scores, scores.iloc[:1].assign(image_name="stranger.png")])
    extra.to_csv(tmp_path / "extra.csv", index=False)
    with pytest.raises(DatasetError, match=r"extra.csv: images not in truth0.csv: 'stranger.png'"):
        evaluate_files(truth_path, tmp_path / "extra.csv", tmp_path / "out")
    scores.assign(Edema=scores["Edema"].astype(object).where(scores.index != 3, "high")).to_csv(
        tmp_path / "bad.csv", index=False
    )
    with pytest.raises(DatasetError, match=r"bad.csv, row 5, column 'Edema': value 'high'; expected a probability"):
        evaluate_files(truth_path, tmp_path / "bad.csv", tmp_path / "out")
    scores.rename(columns={"Edema": "Oedema"}).to_csv(tmp_path / "renamed.csv", index=False)
    with pytest.raises(DatasetError, match=r"no column for the predicted classes \['Oedema'\]"):
        evaluate_files(truth_path, tmp_path / "renamed.csv", tmp_path / "out")


def test_the_cli_writes_every_file_and_a_multiclass_confusion_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    truth_class = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[truth_class]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ids = [f"ISIC_{index}" for index in range(300)]
    names = ["MEL", "NV", "BCC"]
    truth = pd.DataFrame({"image": ids, **{name: (truth_class == j).astype(int) for j, name in enumerate(names)}})
    predictions = pd.DataFrame({"image": ids, **{name: probabilities[:, j] for j, name in enumerate(names)}})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    predictions.to_csv(tmp_path / "predictions.csv", index=False, float_format="%.12f")
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "medbench.cli", "evaluate", "--truth", str(tmp_path / "truth.csv"),
         "--predictions", str(tmp_path / "predictions.csv"), "--out", str(out), "--bootstrap", "100"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "300 images, 3 classes: mean AUROC" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "multiclass"
    expected = confusion_matrix(truth_class, probabilities.argmax(axis=1)).tolist()
    assert summary["multiclass"]["confusion"] == expected
    table = pd.read_csv(out / "summary.csv")
    assert table["class"].tolist() == [*names, "macro", "micro"]
    per_image = pd.read_csv(out / "per_image_results.csv")
    assert len(per_image) == 300 and (per_image["predicted"] == [names[i] for i in probabilities.argmax(1)]).all()
    for png in ("roc.png", "precision_recall.png", "reliability.png", "confusion.png"):
        with Image.open(out / png) as image:
            image.verify()

"""Multi-class metrics against scikit-learn on the same numbers, and the targets they refuse."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, roc_auc_score

from medbench.errors import MetricInputError
from medbench.metrics.multiclass import MulticlassReport, evaluate_multiclass

CLASSES = ("MEL", "NV", "BCC", "AKIEC")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _data(seed: int, n: int, *, quantize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and softmax probabilities that lean towards the true class (ties when quantized)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), n)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), truth] += rng.uniform(0, 2, n)
    probabilities = _softmax(logits)
    if quantize:
        probabilities = np.round(probabilities, 1)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    return truth, probabilities


def _one_hot(truth: np.ndarray) -> np.ndarray:
    return np.eye(len(CLASSES))[truth]


@pytest.mark.parametrize(("seed", "n", "quantize"), [(0, 40, False), (1, 400, False), (2, 300, True), (3, 7, True)])
def test_every_metric_equals_scikit_learn(seed: int, n: int, quantize: bool) -> None:
    truth, probabilities = _data(seed, n, quantize=quantize)
    report = evaluate_multiclass(_one_hot(truth), probabilities, CLASSES)
    predicted = probabilities.argmax(axis=1)
    assert report.n_samples == n
    assert report.accuracy == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a predicted class never occurs in truth
        assert report.balanced_accuracy == pytest.approx(balanced_accuracy_score(truth, predicted), abs=1e-12)
    assert np.array_equal(np.array(report.confusion), confusion_matrix(truth, predicted, labels=range(len(CLASSES))))
    for index, name in enumerate(CLASSES):
        if 0 < (truth == index).sum() < n:
            expected = roc_auc_score(truth == index, probabilities[:, index])
            assert report.auroc[name] == pytest.approx(expected, abs=1e-12)
        else:
            assert report.auroc[name] is None and name in report.auroc_reasons
    if len(set(truth)) == len(CLASSES):
        macro = roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", labels=range(len(CLASSES)))
        assert report.macro_auroc == pytest.approx(macro, abs=1e-12)


def test_unlabelled_rows_are_dropped_before_counting() -> None:
    truth, probabilities = _data(4, 60)
    targets = _one_hot(truth)
    targets[::3] = np.nan
    report = evaluate_multiclass(targets, probabilities, CLASSES)
    kept = np.ones(60, dtype=bool)
    kept[::3] = False
    assert report.n_samples == int(kept.sum())
    assert report.accuracy == pytest.approx(accuracy_score(truth[kept], probabilities[kept].argmax(axis=1)))
    expected = roc_auc_score(truth[kept] == 1, probabilities[kept, 1])
    assert report.auroc["NV"] == pytest.approx(expected, abs=1e-12)


def test_a_class_that_never_occurs_has_no_auroc_and_no_recall() -> None:
    truth, probabilities = _data(5, 80)
    truth[truth == 3] = 0
    report = evaluate_multiclass(_one_hot(truth), probabilities, CLASSES)
    assert report.auroc["AKIEC"] is None
    assert "no positive labels" in report.auroc_reasons["AKIEC"]
    assert report.n_auroc_classes == 3
    present = [report.auroc[name] for name in CLASSES[:3]]
    assert report.macro_auroc == pytest.approx(np.mean(present))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(truth, probabilities.argmax(axis=1))
    assert report.balanced_accuracy == pytest.approx(expected, abs=1e-12)


def test_the_report_round_trips_through_json() -> None:
    truth, probabilities = _data(6, 50)
    truth[truth == 2] = 1
    report = evaluate_multiclass(_one_hot(truth), probabilities, CLASSES)
    again = MulticlassReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, p: (np.vstack([t[:2], [[1.0, 1.0, 0.0, 0.0]]]), p[:3]), r"y_true\[2\] \(sample 2\) marks 2 classes"),
        (lambda t, p: (np.vstack([t[:2], [[0.0, 0.0, 0.0, 0.0]]]), p[:3]), r"y_true\[2\] \(sample 2\) marks 0 classes"),
        (lambda t, p: (np.vstack([t[:2], [[np.nan, 1.0, 0.0, 0.0]]]), p[:3]), r"y_true\[2\] .* is partly masked"),
        (lambda t, p: (np.vstack([t[:2], [[0.5, 0.5, 0.0, 0.0]]]), p[:3]), r"y_true\[2\] \(sample 2\) marks 2 classes"),
        (lambda t, p: (t, np.full_like(p, 0.9)), r"y_pred\[0\] \(sample 0\) sums to 3.6; .*apply the softmax"),
        (lambda t, p: (t, p * 2 - 0.5), r"expected a probability in \[0, 1\]"),
        (lambda t, p: (t, p[:, :3]), r"y_pred has shape \(10, 3\); expected \(10, 4\)"),
        (lambda t, p: (np.full_like(t, np.nan), p), "no labelled rows"),
    ],
    ids=["two-classes", "no-class", "partly-masked", "soft-label", "sigmoid", "not-probability", "columns", "empty"],
)
def test_targets_and_predictions_that_are_not_one_class_per_image_are_refused(change, message: str) -> None:
    truth, probabilities = _data(7, 10)
    targets, scores = change(_one_hot(truth), probabilities)
    with pytest.raises(MetricInputError, match=message):
        evaluate_multiclass(targets, scores, CLASSES)

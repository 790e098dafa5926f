"""Operating thresholds: ROC points equal scikit-learn's, thresholds chosen on one set and applied to another."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from medbench.errors import MetricInputError, UndefinedMetricError
from medbench.metrics.classification import evaluate_predictions
from medbench.metrics.thresholds import choose_threshold, choose_thresholds, operating_point, roc_points


def masked_sample(seed: int, n: int = 200, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.float64)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0.0, 1.0)
    if ties:
        scores = np.round(scores, 1)
    labels[rng.random(n) < 0.2] = np.nan
    return labels, scores


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, False), (3, True)])
def test_roc_points_equal_sklearn_on_unmasked_entries(seed: int, ties: bool) -> None:
    labels, scores = masked_sample(seed, ties=ties)
    keep = ~np.isnan(labels)
    fpr, tpr, thresholds = roc_curve(labels[keep], scores[keep], drop_intermediate=False)
    roc = roc_points(labels, scores)
    np.testing.assert_allclose(roc.fpr, fpr[1:])
    np.testing.assert_allclose(roc.tpr, tpr[1:])
    np.testing.assert_array_equal(roc.thresholds, thresholds[1:])
    assert (roc.n_pos, roc.n_neg) == (int(labels[keep].sum()), int((labels[keep] == 0).sum()))


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_youden_threshold_is_sklearns_best_point_and_reproduces_it(seed: int) -> None:
    labels, scores = masked_sample(seed, ties=seed == 1)
    keep = ~np.isnan(labels)
    fpr, tpr, thresholds = roc_curve(labels[keep], scores[keep], drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    point = choose_threshold(labels, scores, "youden")
    assert point.threshold == thresholds[best]
    assert point.sensitivity == pytest.approx(tpr[best]) and point.specificity == pytest.approx(1 - fpr[best])
    assert point.n_pos + point.n_neg == int(keep.sum())


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95, 1.0])
def test_target_sensitivity_takes_the_highest_threshold_that_reaches_it(target: float) -> None:
    labels, scores = masked_sample(4)
    point = choose_threshold(labels, scores, "sensitivity", target_sensitivity=target)
    assert point.sensitivity is not None and point.sensitivity >= target
    higher = np.unique(scores[~np.isnan(labels)])
    higher = higher[higher > point.threshold]
    if higher.size:
        assert operating_point(labels, scores, float(higher.min())).sensitivity < target


def test_threshold_from_validation_applied_to_test_matches_evaluate_predictions() -> None:
    val_labels, val_scores = masked_sample(10)
    test_labels, test_scores = masked_sample(11)
    threshold = choose_threshold(val_labels, val_scores).threshold
    on_test = operating_point(test_labels, test_scores, threshold)
    report = evaluate_predictions(test_labels[:, None], test_scores[:, None], ["A"], threshold=threshold)
    assert on_test.sensitivity == pytest.approx(report["A"].recall)
    assert (on_test.n_pos, on_test.n_neg) == (report["A"].n_pos, report["A"].n_neg)
    assert (on_test.tp + on_test.tn) / (on_test.n_pos + on_test.n_neg) == pytest.approx(report["A"].accuracy)


def test_masked_entries_are_ignored_not_counted_as_negatives() -> None:
    labels = np.array([1.0, 0.0, np.nan, np.nan, 1.0, 0.0])
    scores = np.array([0.9, 0.2, 0.95, 0.01, 0.6, 0.7])
    point = operating_point(labels, scores, 0.6)
    assert (point.tp, point.fp, point.tn, point.fn) == (2, 1, 1, 0)


def test_classes_without_both_labels_are_reported_with_a_reason() -> None:
    targets = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, np.nan], [0.0, 0.0]])
    scores = np.array([[0.8, 0.1], [0.3, 0.2], [0.7, 0.9], [0.4, 0.3]])
    chosen = choose_thresholds(targets, scores, ["A", "B"])
    assert chosen["A"].threshold == 0.7 and chosen["A"].sensitivity == 1.0 and chosen["A"].specificity == 1.0
    assert isinstance(chosen["B"], str) and "n_pos=0" in chosen["B"]
    with pytest.raises(UndefinedMetricError):
        roc_points(targets[:, 1], scores[:, 1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: choose_threshold([1.0, 0.0], [0.2, 0.1], "f1"), "youden, sensitivity"),
        (lambda: choose_threshold([1.0, 0.0], [0.2, 0.1], "sensitivity", target_sensitivity=0.0), "(0, 1]"),
        (lambda: roc_points([1.0, -1.0], [0.2, 0.1]), "y_true[1] is -1.0"),
        (lambda: roc_points([1.0, 0.0], [0.2]), "equal length"),
        (lambda: choose_thresholds(np.zeros((3, 2)), np.zeros((3, 2)), ["A"]), "(n_samples, 1)"),
    ],
)
def test_bad_inputs_are_named(call, message: str) -> None:
    with pytest.raises(MetricInputError) as error:
        call()
    assert message in str(error.value)

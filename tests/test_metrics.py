"""NaN-masked metrics: exact agreement with scikit-learn on the unmasked entries, undefined
metrics reported as None (never 0 or NaN), and the streaming Keras metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import accuracy_score, fbeta_score, precision_score, recall_score, roc_auc_score

from medbench.errors import MetricInputError, UndefinedMetricError
from medbench.metrics.classification import (
    METRIC_NAMES,
    ClassMetrics,
    MetricsReport,
    auroc,
    evaluate_predictions,
)

NAN = float("nan")
TOL = 1e-9


# --------------------------------------------------------------------------------------------
# scikit-learn reference
# --------------------------------------------------------------------------------------------


def _reference(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> dict[str, float | None]:
    """sklearn's metrics on the unmasked entries, None where the metric is undefined."""
    keep = ~np.isnan(y)
    y, p, t = y[keep], p[keep], t[keep]
    pred = (p >= t).astype(int)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    out: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
    if n_pos + n_neg == 0:
        return out
    if n_pos and n_neg:
        out["auroc"] = roc_auc_score(y, p)
    if pred.any():
        out["precision"] = precision_score(y, pred, zero_division=np.nan)
    if n_pos:
        out["recall"] = recall_score(y, pred)
        out["f2"] = fbeta_score(y, pred, beta=2)
    out["accuracy"] = accuracy_score(y, pred)
    return out


def _assert_matches(metrics: ClassMetrics, expected: dict[str, float | None]) -> None:
    for name in METRIC_NAMES:
        ours = getattr(metrics, name)
        if expected[name] is None:
            assert ours is None, f"{metrics.name}.{name} should be undefined, got {ours}"
            assert name in metrics.undefined_reasons
        else:
            assert ours is not None, f"{metrics.name}.{name}: {metrics.undefined_reasons.get(name)}"
            assert ours == pytest.approx(expected[name], abs=TOL, rel=0), f"{metrics.name}.{name}"
            assert name not in metrics.undefined_reasons


@st.composite
def masked_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random targets with random NaN masks, scores with or without ties, scalar or per-class thresholds."""
    n = draw(st.integers(1, 40))
    c = draw(st.integers(1, 4))
    y = draw(arrays(np.float64, (n, c), elements=st.sampled_from([0.0, 1.0, NAN])))
    p = draw(arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    decimals = draw(st.sampled_from([None, 1, 2]))
    if decimals is not None:
        p = np.round(p, decimals)
    if draw(st.booleans()):
        t = np.full(c, draw(st.sampled_from([0.5, 0.3, 0.0, 1.0])))
    else:
        t = draw(arrays(np.float64, (c,), elements=st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])))
    return y, p, t


@settings(max_examples=150, deadline=None)
@given(masked_problems())
def test_matches_sklearn_on_unmasked_entries(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, p, t = problem
    classes = [f"c{j}" for j in range(y.shape[1])]
    report = evaluate_predictions(y, p, classes, threshold=t)

    references = []
    for j, metrics in enumerate(report.per_class):
        expected = _reference(y[:, j], p[:, j], np.full(len(y), t[j]))
        references.append(expected)
        _assert_matches(metrics, expected)
        assert metrics.n_pos == int((y[:, j] == 1).sum())
        assert metrics.n_neg == int((y[:, j] == 0).sum())
        assert metrics.n_masked == int(np.isnan(y[:, j]).sum())
        assert metrics.threshold == t[j]

    _assert_matches(report.micro, _reference(y.ravel(), p.ravel(), np.broadcast_to(t, y.shape).ravel()))
    assert report.micro.n_masked == int(np.isnan(y).sum())

    for name in METRIC_NAMES:
        defined = [r[name] for r in references if r[name] is not None]
        assert report.macro.n_classes[name] == len(defined)
        if defined:
            assert getattr(report.macro, name) == pytest.approx(np.mean(defined), abs=TOL, rel=0)
        else:
            assert getattr(report.macro, name) is None
    assert report.mean_auroc == report.macro.auroc
    assert report.n_samples == len(y)
    json.dumps(report.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------------------------
# auroc
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_auroc_exact_with_ties_on_large_sample(decimals: int | None) -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(5000) < 0.1).astype(float)
    p = np.clip(0.3 * y + rng.random(5000) * 0.7, 0, 1)
    if decimals is not None:
        p = np.round(p, decimals)
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=TOL, rel=0)


def test_auroc_tiny_classes_and_all_tied_scores() -> None:
    assert auroc([1.0, 0.0], [0.9, 0.1]) == 1.0
    assert auroc([1.0, 0.0], [0.1, 0.9]) == 0.0
    assert auroc([1.0, 0.0], [0.4, 0.4]) == 0.5
    assert auroc([1.0, 0.0, 0.0, 1.0, 0.0], [0.5] * 5) == 0.5
    assert auroc([0.0, 1.0, NAN], [0.2, 0.3, 0.0]) == 1.0


def test_auroc_accepts_any_finite_scores_and_is_rank_invariant() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.3).astype(float)
    logits = rng.normal(size=200) + y
    assert auroc(y, logits) == pytest.approx(auroc(y, 1 / (1 + np.exp(-logits))), abs=TOL)


def test_auroc_undefined_raises_with_counts() -> None:
    with pytest.raises(UndefinedMetricError, match=r"no positive labels \(n_pos=0, n_neg=3\)"):
        auroc([0.0, 0.0, 0.0, NAN], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(UndefinedMetricError, match=r"no negative labels \(n_pos=2, n_neg=0\)"):
        auroc([1.0, 1.0], [0.1, 0.2])


def test_auroc_rejects_bad_input() -> None:
    with pytest.raises(MetricInputError, match="equal lengths"):
        auroc([1.0, 0.0], [0.1])
    with pytest.raises(MetricInputError, match=r"y_true\[1\] is -1.0"):
        auroc([1.0, -1.0], [0.1, 0.2])
    with pytest.raises(MetricInputError, match="finite"):
        auroc([1.0, 0.0], [NAN, 0.2])
    with pytest.raises(MetricInputError, match="1-D"):
        auroc([[1.0, 0.0]], [[0.1, 0.2]])


# --------------------------------------------------------------------------------------------
# The original project's bugs
# --------------------------------------------------------------------------------------------


def test_masked_entries_are_not_negatives() -> None:
    """The original read NaN targets as 0; with confident scores on masked entries that changes the AUROC."""
    y = np.array([1.0, 0.0, 1.0, 0.0, NAN, NAN, NAN, 1.0, 0.0, NAN])
    p = np.array([0.9, 0.2, 0.6, 0.4, 0.95, 0.8, 0.7, 0.5, 0.55, 0.99])
    keep = ~np.isnan(y)

    original = roc_auc_score(np.nan_to_num(y, nan=0.0), p)
    correct = roc_auc_score(y[keep], p[keep])
    assert abs(original - correct) > 0.1

    assert auroc(y, p) == pytest.approx(correct, abs=TOL)
    assert auroc(y, p) != pytest.approx(original, abs=1e-3)
    report = evaluate_predictions(y[:, None], p[:, None], ["Edema"])
    assert report["Edema"].auroc == pytest.approx(correct, abs=TOL)
    assert report["Edema"].n_masked == 4
    assert report["Edema"].precision == pytest.approx(precision_score(y[keep], p[keep] >= 0.5), abs=TOL)


def test_class_with_one_label_value_is_undefined_not_zero() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(40, 3)).astype(float)
    y[:, 1] = 0.0
    y[:3, 1] = NAN
    p = rng.random((40, 3))
    report = evaluate_predictions(y, p, ["Atelectasis", "Hernia", "Edema"])

    hernia = report["Hernia"]
    assert (hernia.n_pos, hernia.n_neg, hernia.n_masked) == (0, 37, 3)
    assert hernia.auroc is None and hernia.recall is None and hernia.f2 is None
    assert hernia.undefined_reasons["auroc"] == "no positive labels (n_pos=0, n_neg=37)"
    assert "no positive labels (n_pos=0, n_neg=37)" in hernia.undefined_reason
    assert hernia.accuracy is not None

    others = [report["Atelectasis"].auroc, report["Edema"].auroc]
    assert report.macro.n_classes["auroc"] == 2
    assert report.mean_auroc == pytest.approx(np.mean(others), abs=TOL)

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["per_class"]["Hernia"]["auroc"] is None
    assert data["per_class"]["Hernia"]["n_pos"] == 0
    assert data["per_class"]["Hernia"]["n_neg"] == 37
    assert data["macro"]["n_classes"]["auroc"] == 2


def test_class_without_negatives_and_fully_masked_class() -> None:
    y = np.array([[1.0, NAN], [1.0, NAN], [NAN, NAN]])
    p = np.array([[0.2, 0.5], [0.7, 0.1], [0.3, 0.9]])
    report = evaluate_predictions(y, p, ["Pneumonia", "Fracture"])
    pneumonia, fracture = report.per_class
    assert pneumonia.auroc is None
    assert pneumonia.undefined_reasons["auroc"] == "no negative labels (n_pos=2, n_neg=0)"
    assert pneumonia.recall == 0.5
    assert pneumonia.precision == 1.0
    for name in METRIC_NAMES:
        assert getattr(fracture, name) is None
        assert fracture.undefined_reasons[name].startswith("no unmasked labels")
    assert report.macro.n_classes["accuracy"] == 1


def test_precision_undefined_without_predicted_positives() -> None:
    y = np.array([[1.0], [0.0], [1.0]])
    p = np.array([[0.1], [0.2], [0.3]])
    metrics = evaluate_predictions(y, p, ["Edema"])["Edema"]
    assert metrics.precision is None
    assert "no predicted positives at threshold 0.5" in metrics.undefined_reasons["precision"]
    assert metrics.recall == 0.0
    assert metrics.f2 == 0.0


def test_threshold_is_inclusive() -> None:
    y = np.array([[1.0], [0.0]])
    p = np.array([[0.5], [0.4]])
    metrics = evaluate_predictions(y, p, ["Edema"], threshold=0.5)["Edema"]
    assert metrics.recall == 1.0 and metrics.precision == 1.0


def test_per_class_thresholds() -> None:
    y = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    p = np.array([[0.6, 0.3], [0.4, 0.1], [0.35, 0.25]])
    report = evaluate_predictions(y, p, ["A", "B"], threshold=[0.3, 0.2])
    assert report["A"].threshold == 0.3 and report["B"].threshold == 0.2
    assert report.micro.threshold is None
    assert report["A"].accuracy == pytest.approx(2 / 3)
    assert report["B"].recall == 1.0
    assert report.micro.accuracy == pytest.approx(4 / 6)


# --------------------------------------------------------------------------------------------
# Report round trip and validation
# --------------------------------------------------------------------------------------------


def test_report_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(30, 3)).astype(float)
    y[rng.random((30, 3)) < 0.3] = NAN
    y[:, 2] = np.where(np.isnan(y[:, 2]), NAN, 1.0)
    report = evaluate_predictions(y, rng.random((30, 3)), ["A", "B", "C"], threshold=[0.4, 0.5, 0.6])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(data) == {"per_class", "macro", "micro", "n_samples"}
    assert list(data["per_class"]) == ["A", "B", "C"]
    assert set(data["macro"]) == {*METRIC_NAMES, "n_classes"}
    restored = MetricsReport.from_dict(data)
    assert restored == report
    assert restored.classes == ("A", "B", "C")
    assert restored["C"].undefined_reason == report["C"].undefined_reason


def test_from_dict_rejects_nan_and_missing_keys() -> None:
    y = np.array([[1.0], [0.0]])
    data = evaluate_predictions(y, np.array([[0.7], [0.2]]), ["A"]).to_dict()
    data["per_class"]["A"]["auroc"] = NAN
    with pytest.raises(MetricInputError, match="NaN"):
        MetricsReport.from_dict(data)
    with pytest.raises(MetricInputError, match="missing keys"):
        MetricsReport.from_dict({"per_class": {}})


def test_report_lookup() -> None:
    report = evaluate_predictions(np.array([[1.0], [0.0]]), np.array([[0.7], [0.2]]), ["A"])
    assert report["A"].value("auroc") == 1.0
    with pytest.raises(KeyError, match="no class 'B'"):
        report["B"]
    with pytest.raises(MetricInputError, match="unknown metric"):
        report["A"].value("f1")


@pytest.mark.parametrize(
    ("y", "p", "classes", "threshold", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"], 0.5, "equal shapes"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["a"], 0.5, "2 columns but 1 class names"),
        (np.zeros(3), np.zeros(3), ["a"], 0.5, r"reshape\(-1, 1\)"),
        (np.zeros((0, 1)), np.zeros((0, 1)), ["a"], 0.5, "no rows"),
        (np.array([[1.0, -1.0]]), np.zeros((1, 2)), ["a", "b"], 0.5, r"class 'b'.*uncertainty policy"),
        (np.zeros((1, 2)), np.array([[0.5, 1.5]]), ["a", "b"], 0.5, r"y_pred\[0, 1\].*probability"),
        (np.zeros((1, 2)), np.array([[NAN, 0.5]]), ["a", "b"], 0.5, r"y_pred\[0, 0\]"),
        (np.zeros((1, 2)), np.zeros((1, 2)), ["a", "a"], 0.5, "more than once"),
        (np.zeros((1, 2)), np.zeros((1, 2)), ["a", "b"], [0.5], r"one per class \(2,\)"),
        (np.zeros((1, 2)), np.zeros((1, 2)), ["a", "b"], [0.5, 2.0], "class 'b'"),
        (np.zeros((1, 1)), np.zeros((1, 1)), "a", 0.5, "sequence of class names"),
    ],
)
def test_evaluate_rejects_bad_input(y, p, classes, threshold, match) -> None:  # noqa: ANN001
    with pytest.raises(MetricInputError, match=match):
        evaluate_predictions(y, p, classes, threshold=threshold)


# --------------------------------------------------------------------------------------------
# Streaming Keras metrics
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_metrics():  # noqa: ANN201
    from medbench.metrics import keras_metrics as module

    return module


def _batch(seed: int, n: int = 400, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.float32)
    p = np.clip(0.35 * y + 0.65 * rng.random((n, c)), 0, 1).astype(np.float32)
    y[rng.random((n, c)) < 0.35] = NAN
    y[:, -1] = np.where(np.isnan(y[:, -1]), NAN, 0.0)
    return y, p


def test_masked_auc_matches_exact_macro_auroc(keras_metrics) -> None:  # noqa: ANN001
    y, p = _batch(0)
    report = evaluate_predictions(y, p, ["a", "b", "c", "d"])
    metric = keras_metrics.MaskedAUC(num_thresholds=1000)
    metric.update_state(y, p)
    assert float(metric.result()) == pytest.approx(report.mean_auroc, abs=1e-2)
    per_class = np.asarray(metric.per_class_result())
    for j, name in enumerate("abc"):
        assert per_class[j] == pytest.approx(report[name].auroc, abs=1e-2)
    assert np.isnan(per_class[3])

    import keras

    plain = keras.metrics.AUC(num_thresholds=1000, multi_label=True)
    plain.update_state(np.nan_to_num(y), p)
    assert abs(float(plain.result()) - report.mean_auroc) > 0.05


def test_masked_auc_streams_and_honours_sample_weight(keras_metrics) -> None:  # noqa: ANN001
    y, p = _batch(1)
    whole = keras_metrics.MaskedAUC(num_thresholds=500)
    whole.update_state(y, p)
    streamed = keras_metrics.MaskedAUC(num_thresholds=500)
    streamed.update_state(y[:150], p[:150])
    streamed.update_state(y[150:], p[150:])
    assert float(streamed.result()) == pytest.approx(float(whole.result()), abs=1e-6)

    weights = (np.arange(len(y)) % 2).astype(np.float32)
    weighted = keras_metrics.MaskedAUC(num_thresholds=500)
    weighted.update_state(y, p, sample_weight=weights)
    dropped = keras_metrics.MaskedAUC(num_thresholds=500)
    dropped.update_state(y[weights == 1], p[weights == 1])
    assert float(weighted.result()) == pytest.approx(float(dropped.result()), abs=1e-6)

    whole.reset_state()
    whole.update_state(np.full((4, 4), NAN, np.float32), p[:4])
    assert math.isnan(float(whole.result()))


def test_masked_binary_accuracy_matches_micro_accuracy(keras_metrics) -> None:  # noqa: ANN001
    y, p = _batch(2)
    p[:10, 0] = 0.5
    for threshold in (0.5, 0.3):
        report = evaluate_predictions(y, p, ["a", "b", "c", "d"], threshold=threshold)
        metric = keras_metrics.MaskedBinaryAccuracy(threshold=threshold)
        metric.update_state(y[:100], p[:100])
        metric.update_state(y[100:], p[100:])
        assert float(metric.result()) == pytest.approx(report.micro.accuracy, abs=1e-6)
    metric.reset_state()
    assert math.isnan(float(metric.result()))


def test_keras_metrics_serialize(keras_metrics) -> None:  # noqa: ANN001
    import keras

    y, p = _batch(3, n=50)
    for metric in (
        keras_metrics.MaskedAUC(num_thresholds=300, name="auc"),
        keras_metrics.MaskedBinaryAccuracy(threshold=0.3),
    ):
        config = keras.saving.serialize_keras_object(metric)
        assert config["registered_name"].startswith("medbench>")
        clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
        assert type(clone) is type(metric)
        assert clone.get_config() == metric.get_config()
        metric.update_state(y, p)
        clone.update_state(y, p)
        assert float(clone.result()) == pytest.approx(float(metric.result()), abs=1e-7)

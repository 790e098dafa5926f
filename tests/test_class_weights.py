"""Class weights from training labels: balanced formula, NaN ignored, L1 normalisation, missing classes."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medbench.errors import ConfigError, LabelPolicyError
from medbench.losses.class_weights import (
    L1_NORM_SCALE,
    ClassWeights,
    compute_class_weights,
    positive_weight_ratio,
)

NAN = float("nan")
CLASSES = ["Atelectasis", "Edema", "Hernia"]


def _labels() -> np.ndarray:
    """Atelectasis: 2 pos / 6 neg, Edema: 3 pos / 3 neg, Hernia: 1 pos / 4 neg (NaN elsewhere)."""
    return np.array(
        [
            [1.0, 1.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, NAN],
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, NAN, NAN],
            [0.0, NAN, NAN],
        ]
    )


def test_balanced_weights_ignore_masked_entries() -> None:
    weights = compute_class_weights(_labels(), CLASSES)
    np.testing.assert_array_equal(weights.n_pos, [2, 3, 1])
    np.testing.assert_array_equal(weights.n_neg, [6, 3, 4])
    np.testing.assert_allclose(weights.positive, [8 / 4, 6 / 6, 5 / 2])
    np.testing.assert_allclose(weights.negative, [8 / 12, 6 / 6, 5 / 8])
    np.testing.assert_allclose(weights.positive_ratio, [3.0, 1.0, 4.0])
    assert weights.classes == tuple(CLASSES)
    assert not weights.l1_normed and weights.fallback_classes == ()


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 50), st.integers(1, 5)), elements=st.sampled_from([0.0, 1.0, NAN])))
def test_balanced_weights_equalise_positive_and_negative_mass(labels: np.ndarray) -> None:
    classes = [f"c{j}" for j in range(labels.shape[1])]
    n_pos = (labels == 1).sum(axis=0)
    n_neg = (labels == 0).sum(axis=0)
    complete = (n_pos > 0) & (n_neg > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights = compute_class_weights(labels, classes, on_missing="fallback")
        ratio = positive_weight_ratio(labels, classes, on_missing="fallback")
    half = (n_pos + n_neg) / 2
    np.testing.assert_allclose((weights.positive * n_pos)[complete], half[complete])
    np.testing.assert_allclose((weights.negative * n_neg)[complete], half[complete])
    np.testing.assert_allclose(ratio[complete], (n_neg / np.maximum(n_pos, 1))[complete])
    np.testing.assert_array_equal(weights.positive[~complete], 1.0)
    np.testing.assert_array_equal(weights.negative[~complete], 1.0)
    np.testing.assert_array_equal(ratio[~complete], 1.0)
    assert weights.fallback_classes == tuple(np.array(classes)[~complete])
    np.testing.assert_allclose(weights.positive / weights.negative, ratio)


def test_l1_normed_scales_each_vector_to_ten() -> None:
    plain = compute_class_weights(_labels(), CLASSES)
    normed = compute_class_weights(_labels(), CLASSES, l1_normed=True)
    assert normed.l1_normed
    assert normed.positive.sum() == pytest.approx(L1_NORM_SCALE)
    assert normed.negative.sum() == pytest.approx(L1_NORM_SCALE)
    np.testing.assert_allclose(normed.positive, plain.positive / plain.positive.sum() * 10)
    np.testing.assert_allclose(normed.negative, plain.negative / plain.negative.sum() * 10)
    np.testing.assert_allclose(normed.positive_ratio, plain.positive_ratio)


@pytest.mark.parametrize("function", [compute_class_weights, positive_weight_ratio])
def test_class_without_positives_is_an_error_naming_it(function) -> None:  # noqa: ANN001
    labels = _labels()
    labels[:, 2] = np.where(np.isnan(labels[:, 2]), NAN, 0.0)
    with pytest.raises(LabelPolicyError, match=r"'Hernia' \(n_pos=0, n_neg=5\).*on_missing='fallback'"):
        function(labels, CLASSES)


def test_class_without_any_label_is_an_error() -> None:
    labels = _labels()
    labels[:, 1] = NAN
    labels[:, 0] = 1.0
    with pytest.raises(LabelPolicyError) as info:
        compute_class_weights(labels, CLASSES)
    assert "'Atelectasis' (n_pos=8, n_neg=0)" in str(info.value)
    assert "'Edema' (n_pos=0, n_neg=0)" in str(info.value)


def test_fallback_uses_weight_one_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    labels = _labels()
    labels[:, 2] = np.where(np.isnan(labels[:, 2]), NAN, 1.0)
    with caplog.at_level(logging.WARNING, logger="medbench.losses.class_weights"), warnings.catch_warnings():
        warnings.simplefilter("error")
        weights = compute_class_weights(labels, CLASSES, on_missing="fallback")
    assert weights.positive[2] == 1.0 and weights.negative[2] == 1.0
    assert weights.positive_ratio[2] == 1.0
    assert weights.fallback_classes == ("Hernia",)
    assert "'Hernia' (n_pos=5, n_neg=0)" in caplog.text
    np.testing.assert_allclose(weights.positive[:2], [2.0, 1.0])

    normed = compute_class_weights(labels, CLASSES, on_missing="fallback", l1_normed=True)
    assert normed.positive.sum() == pytest.approx(10.0)
    assert normed.positive[2] == pytest.approx(10.0 / (2.0 + 1.0 + 1.0))


def test_zero_rows_never_divide_by_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights = compute_class_weights(np.zeros((0, 3)), CLASSES, on_missing="fallback")
    np.testing.assert_array_equal(weights.positive, [1.0, 1.0, 1.0])
    with pytest.raises(LabelPolicyError):
        compute_class_weights(np.zeros((0, 3)), CLASSES)


@pytest.mark.parametrize(
    ("labels", "classes", "kwargs", "error", "match"),
    [
        (np.array([[1.0, -1.0, 0.0]]), CLASSES, {}, LabelPolicyError, r"sample 0.*'Edema' is -1.0.*uncertainty"),
        (np.zeros((3, 2)), CLASSES, {}, LabelPolicyError, r"shape \(3, 2\); expected \(n_samples, 3\)"),
        (np.zeros((3, 3)), CLASSES, {"on_missing": "ignore"}, ConfigError, "on_missing='ignore'"),
        (np.zeros((3, 1)), "Edema", {}, ConfigError, "sequence of class names"),
    ],
)
def test_rejects_bad_input(labels, classes, kwargs, error, match) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        compute_class_weights(labels, classes, **kwargs)


def test_label_table_columns_are_selected_by_name() -> None:
    labels = _labels()
    table = pd.DataFrame(
        {
            "sample_id": [f"images/{i}.png" for i in range(len(labels))],
            "path": [f"/data/images/{i}.png" for i in range(len(labels))],
            "frontal": True,
            **{name: labels[:, j] for j, name in enumerate(CLASSES)},
        }
    )
    from_table = compute_class_weights(table, ["Hernia", "Atelectasis"])
    from_array = compute_class_weights(labels[:, [2, 0]], ["Hernia", "Atelectasis"])
    assert from_table == from_array
    np.testing.assert_allclose(positive_weight_ratio(table[CLASSES]), [3.0, 1.0, 4.0])
    with pytest.raises(LabelPolicyError, match=r"no columns \['Fibrosis'\]"):
        compute_class_weights(table, ["Fibrosis"])


def test_positive_weight_ratio_names_unnamed_columns() -> None:
    with pytest.raises(LabelPolicyError, match="'column 1'"):
        positive_weight_ratio(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_class_weights_round_trip_and_are_read_only() -> None:
    weights = compute_class_weights(_labels(), CLASSES, l1_normed=True)
    data = json.loads(json.dumps(weights.to_dict()))
    assert list(data["per_class"]) == CLASSES
    edema = {"positive": weights.positive[1], "negative": weights.negative[1], "n_pos": 3, "n_neg": 3}
    assert data["per_class"]["Edema"] == edema
    assert ClassWeights.from_dict(data) == weights
    with pytest.raises(ValueError):
        weights.positive[0] = 5.0
    with pytest.raises(ConfigError, match="layout"):
        ClassWeights.from_dict({"l1_normed": True})
    with pytest.raises(ConfigError, match=r"expected one value per class \(3,\)"):
        ClassWeights(tuple(CLASSES), np.ones(2), np.ones(3), np.ones(3), np.ones(3))

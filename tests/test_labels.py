"""Label policy: uncertainty encodings, blanks, upsampling that never compounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medbench.data.label_policy import (
    UNCERTAINTY_PRESETS,
    default_upsample_factors,
    encode_labels,
    label_counts,
    uncertain_targets,
    upsample_indices,
)
from medbench.errors import LabelPolicyError

nan = np.nan
CLASSES = ("A", "B", "C")
RAW = np.array([[1.0, -1.0, nan], [0.0, -1.0, -1.0], [nan, 1.0, 0.0]])


def test_uzeros_uones_uignore() -> None:
    np.testing.assert_array_equal(encode_labels(RAW, CLASSES, "zeros"), [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(encode_labels(RAW, CLASSES, "ones"), [[1, 1, 0], [0, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(encode_labels(RAW, CLASSES, "ignore"), [[1, nan, 0], [0, nan, nan], [0, 1, 0]])


def test_blanks_can_be_masked_instead_of_zero() -> None:
    np.testing.assert_array_equal(
        encode_labels(RAW, CLASSES, "zeros", unmentioned="mask"), [[1, 0, nan], [0, 0, 0], [nan, 1, 0]]
    )


def test_presets_map_each_class_to_its_list() -> None:
    preset = UNCERTAINTY_PRESETS["U32"]
    classes = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
    raw = np.full((1, 5), -1.0)
    targets = encode_labels(raw, classes, "U32")[0]
    for name, value in zip(classes, targets):
        assert value == (1.0 if name in preset.uones else 0.0)


def test_preset_on_the_wrong_label_set_is_an_error() -> None:
    with pytest.raises(LabelPolicyError, match="U75"):
        uncertain_targets("U75", ("Atelectasis", "Edema"))


def test_unknown_label_value_is_named() -> None:
    with pytest.raises(LabelPolicyError, match=r"2\.0.*class 'B'.*expected 1\.0, 0\.0, -1\.0"):
        encode_labels(np.array([[1.0, 2.0, 0.0]]), CLASSES)


@given(arrays(np.float64, (7, 3), elements=st.sampled_from([1.0, 0.0, -1.0, nan])))
def test_certain_labels_never_change(raw: np.ndarray) -> None:
    for policy in ("zeros", "ones", "ignore"):
        targets = encode_labels(raw, CLASSES, policy, unmentioned="mask")
        certain = np.isin(raw, (0.0, 1.0))
        np.testing.assert_array_equal(targets[certain], raw[certain])
        assert np.isnan(targets[np.isnan(raw)]).all()


def test_upsampling_takes_the_largest_factor_and_does_not_compound() -> None:
    targets = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [nan, 1, 1]], dtype=np.float32)
    indices = upsample_indices(targets, CLASSES, {"A": 3, "B": 2, "C": 4})
    counts = np.bincount(indices, minlength=4)
    # row 0 is positive for A (3) and B (2): 3 copies, not 6 (product) or 5 (sum) as in the original
    np.testing.assert_array_equal(counts, [3, 3, 1, 4])
    assert list(indices) == sorted(indices)


def test_upsampling_rejects_bad_factors() -> None:
    with pytest.raises(LabelPolicyError, match="unknown classes"):
        upsample_indices(np.zeros((1, 3)), CLASSES, {"Z": 2})
    with pytest.raises(LabelPolicyError, match=">= 1"):
        upsample_indices(np.zeros((1, 3)), CLASSES, {"A": 0})


def test_default_factors_lift_rare_classes() -> None:
    targets = np.zeros((100, 3), dtype=np.float32)
    targets[:40, 0] = 1
    targets[:20, 1] = 1
    targets[:5, 2] = 1
    factors = default_upsample_factors(targets, CLASSES)
    assert factors["A"] == 1 and factors["C"] == 4 and factors["B"] == 1
    positives, negatives, masked = label_counts(targets)
    assert list(positives) == [40, 20, 5] and list(masked) == [0, 0, 0]

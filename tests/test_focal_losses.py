"""Focal losses: AUCMEDI's formulas written out in NumPy, Keras' focal cross-entropies, masks and saving."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from medbench.errors import ConfigError
from medbench.losses.focal import BinaryFocalLoss, CategoricalFocalLoss, MultilabelFocalLoss

EPS = 1e-7


def _data(seed: int = 0, n: int = 16, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (n, c)).astype("float32"), rng.uniform(0.02, 0.98, (n, c)).astype("float32")


def _one_hot(seed: int = 0, n: int = 16, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.eye(c, dtype="float32")[rng.integers(0, c, n)], probabilities.astype("float32")


def _binary_reference(y: np.ndarray, p: np.ndarray, alpha: float, gamma: float) -> float:
    p = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    return float(np.mean(np.sum(-alpha_t * (1 - p_t) ** gamma * np.log(p_t), axis=1)))


def _categorical_reference(y: np.ndarray, p: np.ndarray, alpha: np.ndarray, gamma: float) -> float:
    p = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    return float(np.mean(np.sum(alpha * (1 - p) ** gamma * -y * np.log(p), axis=-1)))


def _multilabel_reference(y: np.ndarray, p: np.ndarray, weights: np.ndarray, gamma: float, sparsity: float) -> float:
    p = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    negative = (1 - y) * p**gamma * -np.log(1 - p)
    positive = y * sparsity * (1 - p) ** gamma * -np.log(p)
    return float(np.mean(np.mean((negative + positive) * weights, axis=1)))


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.75, 0.0), (0.5, 3.5)])
def test_binary_focal_loss_is_aucmedis_and_c_times_keras(alpha: float, gamma: float) -> None:
    y, p = _data()
    ours = float(BinaryFocalLoss(alpha, gamma=gamma)(y, p))
    assert ours == pytest.approx(_binary_reference(y, p, alpha, gamma), rel=1e-5)
    keras_loss = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=alpha, gamma=gamma)
    assert ours == pytest.approx(float(keras_loss(y, p)) * y.shape[1], rel=1e-4), "Keras averages over classes"


def test_categorical_focal_loss_is_aucmedis_and_keras_for_one_alpha() -> None:
    y, p = _one_hot()
    alpha = np.array([0.5, 1.0, 2.0, 0.25], dtype="float32")
    ours = float(CategoricalFocalLoss(alpha, gamma=2.0)(y, p))
    assert ours == pytest.approx(_categorical_reference(y, p, alpha, 2.0), rel=1e-5)
    shared = float(CategoricalFocalLoss([0.25] * 4, gamma=2.0)(y, p))
    keras_loss = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0)
    assert shared == pytest.approx(float(keras_loss(y, p)), rel=1e-4)
    assert float(CategoricalFocalLoss(gamma=0.0)(y, p)) == pytest.approx(
        float(keras.losses.CategoricalCrossentropy()(y, p)), rel=1e-4
    ), "gamma 0 and no alpha is the cross-entropy"


def test_multilabel_focal_loss_focuses_negatives_too() -> None:
    y, p = _data(1)
    weights = np.array([1.0, 2.0, 0.5, 1.5], dtype="float32")
    ours = float(MultilabelFocalLoss(weights, gamma=2.0, sparsity=1.5)(y, p))
    assert ours == pytest.approx(_multilabel_reference(y, p, weights, 2.0, 1.5), rel=1e-5)
    confident_negative = np.zeros((1, 4), "float32"), np.full((1, 4), 0.01, "float32")
    easy = float(MultilabelFocalLoss([1.0] * 4)(*confident_negative))
    assert easy == pytest.approx(0.01**2 * -np.log(0.99), rel=1e-4), "p^g -log(1 - p): an easy negative is cheap"
    assert easy < 1e-3 * -np.log(0.99), "AUCMEDI's version would charge it (1 + p^g) -log(1 - p), about 0.01"


def test_masked_entries_and_unlabelled_samples_take_no_part() -> None:
    y, p = _data(2)
    masked = y.copy()
    masked[0, 1] = masked[3, 2] = np.nan
    masked[5] = np.nan
    keep = np.ones(len(y), dtype=bool)
    keep[5] = False
    for loss, reference in (
        (BinaryFocalLoss(0.25), lambda yy, pp: _binary_reference(yy, pp, 0.25, 2.0)),
        (MultilabelFocalLoss([1.0, 2.0, 0.5, 1.5]), None),
    ):
        value = float(loss(masked, p))
        assert np.isfinite(value)
        if reference is not None:
            zeroed = np.where(np.isnan(masked), 0.0, masked)
            p_masked = np.where(np.isnan(masked), EPS, p)  # a zero target with p = eps adds (almost) nothing
            assert value == pytest.approx(reference(zeroed[keep], p_masked[keep]), rel=1e-4)
    one_hot, probabilities = _one_hot(3)
    unlabelled = one_hot.copy()
    unlabelled[::2] = np.nan
    expected = float(CategoricalFocalLoss(gamma=2.0)(one_hot[1::2], probabilities[1::2]))
    assert float(CategoricalFocalLoss(gamma=2.0)(unlabelled, probabilities)) == pytest.approx(expected, rel=1e-6)


def test_a_model_compiled_with_a_focal_loss_trains_saves_and_reloads(tmp_path: Path) -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss=CategoricalFocalLoss([1.0, 2.0, 1.0, 0.5], gamma=1.5))
    y, _ = _one_hot(4, n=32)
    x = np.random.default_rng(4).normal(size=(32, 3)).astype("float32")
    history = model.fit(x, y, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = tmp_path / "focal.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert isinstance(again.loss, CategoricalFocalLoss) and again.loss.gamma == 1.5
    assert again.loss.alpha.tolist() == [1.0, 2.0, 1.0, 0.5]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BinaryFocalLoss(1.5), "alpha=1.5; expected a weight in"),
        (lambda: BinaryFocalLoss(gamma=-1), "gamma=-1; expected a focusing parameter"),
        (lambda: CategoricalFocalLoss([1.0, -2.0]), "expected non-negative numbers"),
        (lambda: MultilabelFocalLoss([1.0], sparsity=0), "sparsity=0; expected a positive weight"),
    ],
)
def test_bad_parameters_are_refused_by_name(make, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_one_weight_per_class_is_checked_against_the_predictions() -> None:
    y, p = _one_hot()
    with pytest.raises(ConfigError, match="has 3 class weights but the predictions have 4 classes"):
        CategoricalFocalLoss([1.0, 1.0, 1.0])(y, p)

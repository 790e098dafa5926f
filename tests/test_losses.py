"""Masked BCE / WBCE / CWBCE: numpy reference, finite gradients with NaN targets, Keras integration."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from medbench.benchmark.vocabulary import LOSSES
from medbench.errors import ConfigError
from medbench.losses.benchmark_loss import make_loss
from medbench.losses.class_weights import compute_class_weights
from medbench.losses.masked_crossentropy import (
    ClassWeightedBinaryCrossentropy,
    MaskedBinaryCrossentropy,
    WeightedBinaryCrossentropy,
    class_weighted_binary_crossentropy,
    masked_binary_crossentropy,
    weighted_binary_crossentropy,
)
from medbench.metrics.keras_metrics import MaskedAUC, MaskedBinaryAccuracy

NAN = np.float32("nan")
EPS = 1e-7


def _reference(
    y: np.ndarray,
    p: np.ndarray,
    pos: np.ndarray | None = None,
    neg: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean over unmasked entries of -(pos y log p + neg (1-y) log(1-p)), in float64 after float32 clipping."""
    eps = np.float32(EPS)
    q = np.clip(p.astype(np.float32), eps, np.float32(1) - eps).astype(np.float64)
    y = y.astype(np.float64)
    mask = ~np.isnan(y)
    t = np.where(mask, y, 0.0)
    pos = np.ones(y.shape[1]) if pos is None else pos
    neg = np.ones(y.shape[1]) if neg is None else neg
    entries = -(pos * t * np.log(q) + neg * (1 - t) * np.log(1 - q))
    weights = mask * (1.0 if sample_weight is None else sample_weight[:, None])
    return float((entries * weights).sum() / mask.sum()) if mask.any() else 0.0


def _problem(seed: int, n: int = 64, c: int = 5, masked: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.float32)
    y[rng.random((n, c)) < masked] = NAN
    p = rng.random((n, c)).astype(np.float32)
    p[0, 0], p[1, 1] = 0.0, 1.0
    return y, p


def _losses(c: int, seed: int = 0):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    pos, neg = rng.uniform(0.2, 5.0, c), rng.uniform(0.2, 5.0, c)
    return [
        (masked_binary_crossentropy(), None, None),
        (weighted_binary_crossentropy(pos), pos, None),
        (class_weighted_binary_crossentropy(pos, neg), pos, neg),
    ]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("masked", [0.0, 0.3, 0.9])
def test_losses_match_numpy_reference(seed: int, masked: float) -> None:
    y, p = _problem(seed, masked=masked)
    for loss, pos, neg in _losses(y.shape[1], seed):
        value = float(loss(y, p))
        assert np.isfinite(value)
        assert value == pytest.approx(_reference(y, p, pos, neg), rel=1e-5, abs=1e-6), loss.name


def test_sample_weight_and_reductions() -> None:
    y, p = _problem(5)
    pos = np.linspace(0.5, 3.0, y.shape[1])
    sample_weight = np.random.default_rng(5).uniform(0, 2, len(y))
    loss = WeightedBinaryCrossentropy(pos)
    assert float(loss(y, p, sample_weight=sample_weight)) == pytest.approx(
        _reference(y, p, pos, sample_weight=sample_weight), rel=1e-5
    )

    mask = ~np.isnan(y)
    per_entry = np.asarray(WeightedBinaryCrossentropy(pos, reduction=None)(y, p))
    assert per_entry.shape == y.shape
    assert np.all(per_entry[~mask] == 0.0)
    assert per_entry.sum() / mask.sum() == pytest.approx(_reference(y, p, pos), rel=1e-5)
    assert float(WeightedBinaryCrossentropy(pos, reduction="sum")(y, p)) == pytest.approx(per_entry.sum(), rel=1e-5)

    weighted_mean = WeightedBinaryCrossentropy(pos, reduction="mean_with_sample_weight")
    expected = (per_entry * sample_weight[:, None]).sum() / (mask * sample_weight[:, None]).sum()
    assert float(weighted_mean(y, p, sample_weight=sample_weight)) == pytest.approx(expected, rel=1e-5)


def test_fully_masked_batch_has_zero_loss_and_gradient() -> None:
    y = np.full((8, 3), NAN, np.float32)
    logits = tf.Variable(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))
    for loss, _, _ in _losses(3):
        with tf.GradientTape() as tape:
            value = loss(y, tf.sigmoid(logits))
        gradient = tape.gradient(value, logits).numpy()
        assert float(value) == 0.0
        assert np.all(gradient == 0.0)


def test_gradients_are_finite_and_zero_on_masked_entries() -> None:
    y, _ = _problem(1, masked=0.5)
    rng = np.random.default_rng(1)
    logits = tf.Variable(rng.normal(scale=30.0, size=y.shape).astype(np.float32))
    mask = ~np.isnan(y)
    for loss, _, _ in _losses(y.shape[1]):
        with tf.GradientTape() as tape:
            value = loss(y, tf.sigmoid(logits))
        gradient = tape.gradient(value, logits).numpy()
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(gradient)), loss.name
        assert np.all(gradient[~mask] == 0.0)
        assert np.any(gradient[mask] != 0.0)


def test_wbce_weights_per_class_unlike_keras_class_weight() -> None:
    """Keras' class_weight weights each SAMPLE by its first positive class; WBCE weights each entry's positive term."""
    from keras.src.trainers.data_adapters.data_adapter_utils import class_weight_to_sample_weights

    y = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [0, 0, 1]], np.float32)
    p = np.array([[0.7, 0.2, 0.6], [0.3, 0.4, 0.8], [0.1, 0.6, 0.2], [0.5, 0.5, 0.5]], np.float32)
    pos = np.array([2.0, 5.0, 9.0])

    keras_sample_weight = class_weight_to_sample_weights(y, dict(enumerate(pos)))
    np.testing.assert_array_equal(keras_sample_weight, [2.0, 5.0, 2.0, 9.0])
    keras_style = float(keras.losses.BinaryCrossentropy()(y, p, sample_weight=keras_sample_weight))

    ours = float(weighted_binary_crossentropy(pos)(y, p))
    assert ours == pytest.approx(_reference(y, p, pos), rel=1e-5)
    assert abs(ours - keras_style) > 0.1


def test_clipping_keeps_certain_wrong_predictions_finite() -> None:
    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.0, 1.0]], np.float32)
    value = float(masked_binary_crossentropy()(y, p))
    assert np.isfinite(value)
    assert value == pytest.approx(_reference(y, p), rel=1e-5)
    assert value > 15.0


def test_make_loss() -> None:
    labels = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 0], [0, 0, 0], [NAN, 0, 1]], np.float64)
    weights = compute_class_weights(labels, ["a", "b", "c"])
    assert isinstance(make_loss("BCE", None), MaskedBinaryCrossentropy)
    assert isinstance(make_loss("bce", weights), MaskedBinaryCrossentropy)

    wbce = make_loss("WBCE", weights)
    assert isinstance(wbce, WeightedBinaryCrossentropy)
    np.testing.assert_allclose(wbce.pos_weight, [3.0, 4.0, 2 / 3])

    cwbce = make_loss("CWBCE", weights)
    assert isinstance(cwbce, ClassWeightedBinaryCrossentropy)
    np.testing.assert_allclose(cwbce.pos_weights, weights.positive)
    np.testing.assert_allclose(cwbce.neg_weights, weights.negative)

    with pytest.raises(ConfigError, match="unknown loss 'FOCAL'; expected one of BCE, WBCE, CWBCE"):
        make_loss("FOCAL", weights)
    for name in ("WBCE", "CWBCE"):
        with pytest.raises(ConfigError, match=f"loss {name} needs class weights"):
            make_loss(name, None)
    assert LOSSES == ("BCE", "WBCE", "CWBCE", "CCE", "WCCE", "FL")


def test_invalid_weights_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"pos_weight\[1\] is nan"):
        WeightedBinaryCrossentropy([1.0, np.nan])
    with pytest.raises(ConfigError, match=r"neg_weights\[0\] is -1.0"):
        ClassWeightedBinaryCrossentropy([1.0], [-1.0])
    with pytest.raises(ConfigError, match="one of each per class"):
        ClassWeightedBinaryCrossentropy([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="2 class weights but the predictions have 3 classes"):
        WeightedBinaryCrossentropy([1.0, 2.0])(np.zeros((2, 3)), np.full((2, 3), 0.5))
    with pytest.raises(ConfigError, match="epsilon"):
        MaskedBinaryCrossentropy(epsilon=0.0)


@pytest.mark.parametrize("loss", _losses(3)[:3], ids=["BCE", "WBCE", "CWBCE"])
def test_losses_serialize(loss) -> None:  # noqa: ANN001
    loss = loss[0]
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"].startswith("medbench>")
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()
    y, p = _problem(2, c=3)
    assert float(clone(y, p)) == pytest.approx(float(loss(y, p)), rel=1e-6)


def test_model_trains_with_nan_targets_and_reloads(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = (x[:, :3] > 0).astype(np.float32)
    y[rng.random(y.shape) < 0.3] = NAN
    weights = compute_class_weights(y, ["a", "b", "c"])

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="sigmoid")])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=make_loss("CWBCE", weights),
        metrics=[MaskedAUC(num_thresholds=200, name="auc"), MaskedBinaryAccuracy(name="acc")],
    )
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0).history
    assert all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert history["auc"][-1] > 0.8

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.loss, ClassWeightedBinaryCrossentropy)
    np.testing.assert_allclose(restored.loss.pos_weights, weights.positive)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    evaluated = restored.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isfinite(evaluated["loss"]) and np.isfinite(evaluated["auc"])

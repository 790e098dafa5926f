"""Standardization inside the model: uint8 in, backbone floats out; older saved models still predict the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.info import STANDARDIZE_MODES
from medbench.architectures.standardization import (
    Standardization,
    has_standardization,
    load_run_model,
    standardize,
    with_standardization,
)
from medbench.runs import SavedRun
from medbench.settings import Settings

LEGACY = next((Path(__file__).parent / "data" / "legacy-run").glob("*/*"))


@pytest.mark.parametrize("mode", list(STANDARDIZE_MODES))
def test_the_layer_equals_standardize_of_the_replicated_image(mode: str) -> None:
    gray = np.random.default_rng(1).integers(0, 256, (3, 12, 10, 1), dtype=np.uint8)
    got = Standardization(mode)(gray).numpy()
    expected = standardize(np.repeat(gray, 3, axis=-1).astype(np.float32), mode).numpy()
    assert got.dtype == np.float32 and got.shape == (3, 12, 10, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    rgb = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(Standardization(mode)(rgb).numpy(), standardize(rgb, mode).numpy(), rtol=1e-6)


def test_a_model_takes_uint8_and_keeps_its_standardization_when_saved(tmp_path: Path) -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 3, input_shape=(32, 32, 1))
    assert model.inputs[0].dtype == "uint8" and model.input_shape == (None, 32, 32, 1)
    assert has_standardization(model) and model.get_layer("standardize").mode == "unit"
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert has_standardization(loaded)
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), rtol=1e-6, atol=1e-7)
    assert load_run_model(tmp_path / "model.keras", "torch", 1).get_layer("standardize").mode == "unit"


def test_the_standardization_stays_float32_under_mixed_precision() -> None:
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(32, 32, 1))
        assert model.get_layer("standardize").compute_dtype == "float32"
        assert model.get_layer("backbone").compute_dtype == "bfloat16"
    finally:
        keras.config.set_dtype_policy(previous)


def test_an_old_float_input_model_is_wrapped_to_take_uint8(tmp_path: Path) -> None:
    inputs = keras.Input((16, 16, 3))
    old = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    old.save(tmp_path / "old.keras")
    wrapped = load_run_model(tmp_path / "old.keras", "torch", 1)
    assert wrapped.inputs[0].dtype == "uint8" and wrapped.input_shape == (None, 16, 16, 1)
    gray = np.random.default_rng(4).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    expected = old.predict_on_batch(standardize(np.repeat(gray, 3, axis=-1), "torch").numpy())
    np.testing.assert_allclose(wrapped.predict_on_batch(gray), expected, rtol=1e-6, atol=1e-6)
    assert has_standardization(with_standardization(old, "unit", 3))


def test_a_run_saved_before_the_change_predicts_its_stored_predictions(settings: Settings, tmp_path: Path) -> None:
    """A real run of the previous version: its model takes standardized floats and has no layer of its own."""
    from medbench.prediction import predict_images

    legacy = keras.models.load_model(LEGACY / "model.keras", compile=False)
    assert not has_standardization(legacy) and legacy.inputs[0].dtype == "float32"
    run_dir = tmp_path / "models" / LEGACY.parent.name / LEGACY.name
    shutil.copytree(LEGACY, run_dir)
    run = SavedRun.load(run_dir)
    ids, _, stored, classes = run.run_dir.read_predictions("test")
    paths = [settings.data_dir / "demo" / sample_id for sample_id in ids]
    frame = predict_images(run, paths, settings, batch_size=7)
    assert list(frame.columns) == ["image", *classes]
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_reevaluating_a_run_saved_before_the_change_reproduces_its_metrics(settings: Settings) -> None:
    from medbench.reevaluation import reevaluate_run

    run_dir = settings.models_dir / LEGACY.parent.name / LEGACY.name
    shutil.copytree(LEGACY, run_dir)
    run = SavedRun.load(run_dir)
    again = reevaluate_run(run, settings)
    result = run.run_dir.read_result()
    for part in ("val", "test"):
        for name, metrics in result[part]["per_class"].items():
            if metrics["auroc"] is not None:
                assert again[f"{part}_again"]["per_class"][name]["auroc"] == pytest.approx(metrics["auroc"], abs=1e-9)


def test_the_layer_runs_on_what_tf_data_hands_it() -> None:
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1), np.uint8)).batch(2)
    layer = Standardization("tf")
    assert [tuple(layer(batch).shape) for batch in dataset] == [(2, 8, 8, 3), (2, 8, 8, 3)]

"""medbench.BinaryClassifier: pyBIA's binary CNN classifier, its normalisation and its registry architectures.

The training tests use stacks made from the real NIH 64 px sample in ../shared/data (skipped where it is
absent): an easy task (radiographs against their inverted copies) that a few epochs must learn, and the
real normal/abnormal split for shapes, validation and save/load.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import medbench
from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.custom_cnn import ConvLayer, CustomCNN, _pool
from medbench.architectures.registry import get_architecture
from medbench.binary_classifier import BinaryClassifierConfig, normalize_stack
from medbench.binary_classifier.classifier import CONFIG_FILE, MODEL_FILE, BinaryClassifier
from medbench.binary_classifier.model import make_binary_loss, recalibrate_batch_norm
from medbench.data.images import read_image
from medbench.errors import ConfigError

NIH_64 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nih-cxr14-64px"
needs_nih = pytest.mark.skipif(
    not NIH_64.is_dir(), reason="../shared/data/nih-cxr14-64px (real NIH chest X-rays) is not beside the repository"
)
NEW_KEYS = ("2D.AlexNet", "2D.ResNet18", "2D.CustomCNN")
EPS = 1e-7


def _stack(split: str, folder: str, n: int) -> np.ndarray:
    files = sorted((NIH_64 / split / folder).glob("*.png"))[:n]
    return np.stack([read_image(path) for path in files])


@pytest.fixture(scope="module")
def nih() -> dict[str, np.ndarray]:
    """uint8 RGB stacks (n, 64, 64, 3): 60 abnormal and 60 normal training images, 20 + 20 validation images."""
    if not NIH_64.is_dir():
        pytest.skip("../shared/data/nih-cxr14-64px is not beside the repository")
    return {
        "train_abnormal": _stack("train", "1_abnormal", 60),
        "train_normal": _stack("train", "0_normal", 60),
        "valid_abnormal": _stack("valid", "1_abnormal", 20),
        "valid_normal": _stack("valid", "0_normal", 20),
    }


def _gray(stack: np.ndarray) -> np.ndarray:
    return stack[..., :1]


def _focal_reference(y: np.ndarray, p: np.ndarray, alpha: float, gamma: float) -> float:
    """The binary focal loss on probabilities, written out: mean over samples of -a_t (1 - p_t)^g log p_t."""
    p = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    return float(np.mean(np.sum(-alpha_t * (1 - p_t) ** gamma * np.log(p_t), axis=1)))


# normalisation


def test_normalisation_per_channel_against_hand_computed_values() -> None:
    stack = np.array([[[[-10.0, 10.0, 7.0], [50.0, 15.0, -5.0]], [[100.0, 25.0, 0.0], [250.0, 12.5, 4.0]]]])
    result = normalize_stack(stack, min_pixel=[0, 10, -5], max_pixel=[100, 20, 5])
    expected = np.array(
        [[[[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], [[1.0, 1.0, 0.5], [1.0, 0.25, 0.9]]]],
        dtype=np.float32,
    )
    assert result.dtype == np.float32 and result.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_normalisation_of_a_grayscale_stack_adds_the_channel_axis() -> None:
    stack = np.array([[[0, 51], [204, 255]]], dtype=np.uint8)
    result = normalize_stack(stack, 0, 255)
    assert result.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(result[0, :, :, 0], [[0.0, 0.2], [0.8, 1.0]], atol=1e-6)


finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def stacks_and_limits(draw: st.DrawFn) -> tuple[np.ndarray, list[float], list[float]]:
    channels = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), channels)
    stack = draw(hnp.arrays(np.float32, shape, elements=finite))
    lows = draw(st.lists(st.floats(-5e3, 5e3, width=32), min_size=channels, max_size=channels))
    spans = draw(st.lists(st.floats(0.5, 5e3, width=32), min_size=channels, max_size=channels))
    return stack, lows, [low + span for low, span in zip(lows, spans)]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(stacks_and_limits())
def test_normalisation_properties(case: tuple[np.ndarray, list[float], list[float]]) -> None:
    stack, lows, highs = case
    result = normalize_stack(stack, lows, highs)
    assert result.dtype == np.float32 and result.shape == stack.shape
    assert np.all((result >= 0.0) & (result <= 1.0)), "every pixel lands in [0, 1]"
    for channel, (low, high) in enumerate(zip(lows, highs)):
        alone = normalize_stack(stack[..., channel : channel + 1], low, high)
        np.testing.assert_array_equal(alone[..., 0], result[..., channel], "channels are normalised independently")
        values = stack[..., channel]
        assert np.all(result[..., channel][values <= np.float32(low)] == 0.0), "at or below min_pixel: 0"
        assert np.all(result[..., channel][values >= np.float32(high)] == 1.0), "at or above max_pixel: 1"
        order = np.argsort(values.ravel(), kind="stable")
        assert np.all(np.diff(result[..., channel].ravel()[order]) >= 0), "monotone in the pixel value"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(stacks_and_limits())
def test_one_limit_for_all_channels_equals_the_repeated_list(case: tuple[np.ndarray, list[float], list[float]]) -> None:
    stack, lows, highs = case
    channels = stack.shape[-1]
    np.testing.assert_array_equal(
        normalize_stack(stack, lows[0], highs[0]), normalize_stack(stack, [lows[0]] * channels, [highs[0]] * channels)
    )


@pytest.mark.parametrize(
    ("data", "limits", "words"),
    [
        (np.zeros((4, 8)), (0, 1), ["data", "(4, 8)", "expected a stack"]),
        (np.zeros((1, 4, 4, 4)), (0, 1), ["4 channels", "expected 1 to 3"]),
        (np.zeros((1, 4, 4, 3)), ([0, 0], 1), ["min_pixel", "2 values", "3 channel", "expected one number, or 3"]),
        (np.zeros((1, 4, 4, 2)), (0, [1, 2, 3]), ["max_pixel", "3 values", "expected one number, or 2"]),
        (np.zeros((1, 4, 4, 2)), ([0, 5], [1, 5]), ["min_pixel 5.0 >= max_pixel 5.0", "channel 1"]),
        (np.zeros((1, 4, 4, 1)), (0, float("nan")), ["max_pixel", "finite"]),
        (np.full((1, 4, 4, 1), np.nan), (0, 1), ["data holds 16 NaN pixels"]),
    ],
)
def test_bad_stacks_and_limits_are_refused_by_name(data: np.ndarray, limits: tuple, words: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        normalize_stack(data, *limits)
    for word in words:
        assert word in str(error.value)


# registry entries


@pytest.mark.parametrize("key", NEW_KEYS)
def test_new_registry_entries_build_small_images_of_any_channel_count(key: str) -> None:
    info = get_architecture(key)
    assert info.standardize == "unit" and info.weights_file is None and info.min_input_size <= 32
    for size, channels in ((64, 3), (32, 1), (64, 2)):
        backbone = info.builder((size, size, channels), name="backbone")
        assert len(backbone.output_shape) == 4 and all(side >= 1 for side in backbone.output_shape[1:3])
        if channels == 3:
            assert backbone.count_params() == info.parameters, "the listed parameter count"
    model = SimpleBaseArchitecture(key, 2, input_shape=(64, 64, 1))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    assert model(images, training=False).shape == (2, 2), "an Experiment's uint8 images with 'unit' standardization"


def test_alexnet_at_64_px_leaves_a_2x2_map() -> None:
    assert get_architecture("AlexNet").builder((64, 64, 3)).output_shape == (None, 2, 2, 256)
    assert get_architecture("ResNet18").builder((64, 64, 3)).output_shape == (None, 2, 2, 512)


def test_registry_lookup_finds_pybia_names() -> None:
    assert get_architecture("alexnet").key == "2D.AlexNet"
    assert get_architecture("resnet18").key == "2D.ResNet18", "the 2D ResNet-18 keeps the short name"
    assert get_architecture("3D.ResNet18").key == "3D.ResNet18"
    assert BinaryClassifierConfig(architecture="custom_cnn").architecture == "2D.CustomCNN"
    assert BinaryClassifierConfig(architecture="cnn").architecture == "2D.AlexNet"
    assert BinaryClassifierConfig(architecture="vgg16").architecture == "2D.VGG16"


def test_min_pooling_is_the_negated_max_pooling_and_survives_safe_mode_loading(tmp_path: Path) -> None:
    image = keras.Input((6, 6, 2))
    model = keras.Model(image, _pool(image, ConvLayer(4, pooling="min", pool_size=2, pool_stride=2), "b"))
    x = np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype("float32")
    expected = x.reshape(3, 3, 2, 3, 2, 2).min(axis=(2, 4))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    network = CustomCNN((32, 32, 1), conv_layers=[ConvLayer(4, 3, pooling="min"), ConvLayer(8, 3, pooling="average")])
    network.save(tmp_path / "cnn.keras")
    loaded = keras.models.load_model(tmp_path / "cnn.keras", safe_mode=True)
    probe = np.random.default_rng(2).random((2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(probe, verbose=0), network.predict(probe, verbose=0), atol=1e-6)


def test_custom_cnn_and_its_layers_refuse_bad_settings() -> None:
    with pytest.raises(ConfigError, match="expected 1 to 3 ConvLayer"):
        CustomCNN((32, 32, 1), conv_layers=[ConvLayer(4)] * 4)
    with pytest.raises(ConfigError, match="pooling='median'"):
        ConvLayer(4, pooling="median")
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        get_architecture("2D.ResNet18").builder((64, 64, 3), weights="imagenet")
    with pytest.raises(ConfigError, match="at least 32 px"):
        get_architecture("2D.AlexNet").builder((16, 16, 3))


# the model: a sigmoid of a Dense layer, nothing after it


@pytest.mark.parametrize("architecture", ["CustomCNN", "ResNet18", "AlexNet", "VGG16"])
def test_the_output_is_the_sigmoid_of_a_dense_layer_with_nothing_after_it(architecture: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    classifier = BinaryClassifier(images[:2], images[2:], architecture=architecture)
    model = classifier.build()
    last = model.layers[-1]
    assert isinstance(last, keras.layers.Activation) and last.activation is keras.activations.sigmoid
    logits = model.get_layer("logits")
    assert isinstance(logits, keras.layers.Dense) and logits.activation is keras.activations.linear
    assert last.input is logits.output, "the sigmoid takes the Dense layer's output directly"
    normalizations = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
    backbone_index = [layer.name for layer in model.layers].index("backbone")
    head = model.layers[backbone_index + 1 :]
    assert not any(isinstance(layer, normalizations) for layer in head), "no normalisation in the head"
    x = classifier.normalize(images)
    probabilities = model.predict(x, verbose=0)
    raw = keras.Model(model.input, logits.output).predict(x, verbose=0)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-raw)), atol=1e-6)
    assert model.output_shape == (None, 1)


# losses on probabilities


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.6, 1.0)])
def test_the_focal_loss_is_the_focal_formula_on_probabilities(alpha: float, gamma: float) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (32, 1)).astype("float32")
    p = rng.uniform(0.02, 0.98, (32, 1)).astype("float32")
    loss = make_binary_loss(BinaryClassifierConfig(loss="focal", focal_alpha=alpha, focal_gamma=gamma))
    reference = _focal_reference(y, p, alpha, gamma)
    assert float(loss(y, p)) == pytest.approx(reference, rel=1e-5)
    as_logits = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=alpha, gamma=gamma, from_logits=True
    )
    assert float(as_logits(y, p)) != pytest.approx(reference, rel=1e-2), "pyBIA's from_logits=True would fail this"


def test_the_crossentropies_are_on_probabilities() -> None:
    y = np.array([[1.0], [0.0], [1.0]], dtype="float32")
    p = np.array([[0.9], [0.2], [0.3]], dtype="float32")
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert float(make_binary_loss(BinaryClassifierConfig())(y, p)) == pytest.approx(bce, rel=1e-5)
    wbce = -np.mean(3.0 * y * np.log(p) + (1 - y) * np.log(1 - p))
    weighted = make_binary_loss(BinaryClassifierConfig(loss="weighted_binary_crossentropy", weight=3.0))
    assert float(weighted(y, p)) == pytest.approx(wbce, rel=1e-5)


# errors


def test_bad_input_is_refused_with_the_argument_and_what_was_expected(tmp_path: Path) -> None:
    rgb = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    cases = [
        (lambda: BinaryClassifier(np.zeros((64, 64)), rgb), ["positive_class", "(64, 64)", "expected a stack"]),
        (lambda: BinaryClassifier(rgb, rgb[..., :1]), ["negative_class has 1 channel", "positive_class has 3"]),
        (lambda: BinaryClassifier(rgb, rgb, val_negative=rgb[:, :32]), ["val_negative", "32x64", "one image size"]),
        (lambda: BinaryClassifier(rgb, rgb, min_pixel=[0, 0]), ["min_pixel has 2 values", "3 channel"]),
        (lambda: BinaryClassifier(rgb, rgb, min_pixel=10, max_pixel=10), ["min_pixel 10.0 >= max_pixel 10.0"]),
        (lambda: BinaryClassifier(rgb, rgb, epochs=0), ["epochs=0", "at least 1"]),
        (lambda: BinaryClassifier(rgb, rgb, loss="hinge"), ["loss='hinge'", "focal"]),
        (lambda: BinaryClassifier(rgb, rgb, clf="alexnet"), ["unknown BinaryClassifier option", "clf", "architecture"]),
        (lambda: BinaryClassifier(rgb, rgb, architecture="3D.ResNet18"), ["volume network", "2D"]),
        (lambda: BinaryClassifier(rgb, rgb, architecture="LeNet"), ["'LeNet'"]),
        (lambda: BinaryClassifier(rgb[:, :16, :16], rgb[:, :16, :16]).build(), ["16x16", "at least 32 px"]),
        (lambda: BinaryClassifier(rgb).create(), ["create() needs negative_class"]),
        (lambda: BinaryClassifier(rgb, rgb).predict(rgb), ["predict() before create()"]),
        (lambda: BinaryClassifier(rgb, rgb).save(tmp_path / "x"), ["save() before create()"]),
        (lambda: BinaryClassifier.load(tmp_path), [str(tmp_path), "config.json, model.keras missing"]),
    ]
    for call, words in cases:
        with pytest.raises(ConfigError) as error:
            call()
        for word in words:
            assert word in str(error.value), (word, str(error.value))


def test_load_refuses_a_config_that_is_not_a_saved_classifier(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_bytes(b"not a zip")
    (tmp_path / CONFIG_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="format"):
        BinaryClassifier.load(tmp_path)
    record = {"format": "medbench.BinaryClassifier", "version": 1, "image_size": [64, 64], "channels": 1}
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**record, "config": {}}))
    with pytest.raises(ConfigError, match="not a Keras model"):
        BinaryClassifier.load(tmp_path)


def test_batch_norm_recalibration_sets_the_statistics_to_the_data_average() -> None:
    image = keras.Input((4,))
    model = keras.Model(image, keras.layers.BatchNormalization(name="bn")(image))
    x = np.random.default_rng(4).normal(3.0, 2.0, (50, 4)).astype("float32")
    assert recalibrate_batch_norm(model, x, batch_size=50) == 1
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=0), rtol=1e-4)
    assert bn.momentum == 0.99, "the momentum is restored"


def test_the_package_root_exports_the_classifier() -> None:
    assert medbench.BinaryClassifier is BinaryClassifier
    assert medbench.BinaryClassifierConfig is BinaryClassifierConfig


# training on real NIH images


@needs_nih
@pytest.mark.slow
def test_an_easy_real_task_is_learnt_predicted_and_saved(nih: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Radiographs (positives) against their inverted copies (negatives): three epochs must separate them."""
    positives, negatives = _gray(nih["train_abnormal"]), 255 - _gray(nih["train_normal"])
    held_out = np.concatenate([_gray(nih["valid_abnormal"]), 255 - _gray(nih["valid_normal"])])
    truth = np.r_[np.ones(20), np.zeros(20)]
    classifier = BinaryClassifier(positives, negatives, architecture="CustomCNN", epochs=3, threshold=0.4).create()
    history = classifier.history
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0], "the training loss falls"
    train_labels = classifier.predict(np.concatenate([positives, negatives]))
    assert np.mean(train_labels == np.r_[np.ones(60), np.zeros(60)]) > 0.9
    proba = classifier.predict(held_out, return_proba=True)
    labels = classifier.predict(held_out)
    assert proba.shape == labels.shape == (40,) and proba.dtype == np.float32
    assert np.all((proba >= 0) & (proba <= 1))
    assert set(np.unique(labels)) <= {0, 1} and np.array_equal(labels, (proba >= 0.4).astype(int))
    assert np.mean(labels == truth) > 0.8, "held-out images are separated too"

    folder = classifier.save(tmp_path / "saved")
    record = json.loads((folder / CONFIG_FILE).read_text())
    assert record["image_size"] == [64, 64] and record["channels"] == 1
    assert record["config"]["architecture"] == "2D.CustomCNN" and record["config"]["threshold"] == 0.4
    assert record["config"]["min_pixel"] == [0.0] and record["config"]["max_pixel"] == [255.0]
    loaded = BinaryClassifier.load(folder)
    np.testing.assert_allclose(loaded.predict(held_out, return_proba=True), proba, atol=1e-6)
    assert np.array_equal(loaded.predict(held_out), labels)
    assert loaded.image_shape == (64, 64, 1) and loaded.history == history
    with pytest.raises(ConfigError, match=r"expected \(n, 64, 64, 1\)"):
        loaded.predict(nih["valid_normal"])


@needs_nih
@pytest.mark.slow
def test_the_focal_loss_trained_with_is_the_formula_on_the_models_probabilities(nih: dict[str, np.ndarray]) -> None:
    positives, negatives = _gray(nih["train_abnormal"][:40]), 255 - _gray(nih["train_normal"][:40])
    classifier = BinaryClassifier(positives, negatives, loss="focal", focal_alpha=0.3, focal_gamma=2.0, epochs=1)
    classifier.create()
    x = classifier.normalize(np.concatenate([positives, negatives]))
    y = np.r_[np.ones(40), np.zeros(40)].astype("float32")[:, None]
    p = classifier.predict(np.concatenate([positives, negatives]), return_proba=True)[:, None]
    evaluated = classifier.model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss"]
    assert evaluated == pytest.approx(_focal_reference(y, p, 0.3, 2.0), rel=1e-4)


@needs_nih
@pytest.mark.slow
def test_resnet18_on_rgb_normal_and_abnormal_with_validation(nih: dict[str, np.ndarray]) -> None:
    classifier = BinaryClassifier(
        nih["train_abnormal"],
        nih["train_normal"],
        nih["valid_abnormal"],
        nih["valid_normal"],
        architecture="ResNet18",
        min_pixel=0,
        max_pixel=[255, 255, 255],
        epochs=2,
    ).create()
    history = classifier.history
    assert {"loss", "val_loss", "binary_accuracy", "val_binary_accuracy"} <= set(history)
    assert all(len(values) == 2 and all(np.isfinite(values)) for values in history.values())
    assert history["loss"][1] < history["loss"][0]
    proba = classifier.predict(nih["valid_abnormal"], return_proba=True)
    assert proba.shape == (20,) and np.all((proba >= 0) & (proba <= 1))

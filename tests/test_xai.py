"""Explanations that are checked: every method on medbench's nested models, against the demo's boxes, with
the sanity checks of the literature (an independent Grad-CAM, completeness, model randomisation)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from cli_process import run_medbench
from conftest import SHARED_DATA
from scipy.stats import spearmanr

from medbench.architectures.base import SimpleBaseArchitecture
from medbench.architectures.registry import get_architecture
from medbench.architectures.standardization import load_run_model
from medbench.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.demo import DEMO_FOLDER, Painter, write_demo_dataset
from medbench.errors import ConfigError, DatasetError, RegistryError
from medbench.experiment import Experiment
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.xai import (
    BOX_FILE,
    METHOD_NAMES,
    METHODS,
    Box,
    ExplainOptions,
    IntegratedGradientsConfig,
    MethodConfig,
    ModelView,
    RiseConfig,
    box_file_text,
    box_mask,
    boxes_of,
    crm,
    explain_maps,
    gradcam,
    gradcam_plus_plus,
    guided_backprop,
    integrated_gradients,
    mass_share,
    pointing_hit,
    read_boxes,
    rise,
    saliency,
)
from medbench.xai.explain import _read_images, _sample_params, box_frame

logger = logging.getLogger(__name__)

BENCHMARK = Benchmark.from_name("demo_BCE_E8_B16_C0_N5_D128_DS8020_1LR3_LF5_Adam")
SIZE = 128
"""Demo images are written at the trained size: four 2x poolings leave an 8x8 map, fine enough for the boxes."""
COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, SavedRun]:
    """A SmallCNN trained 8 epochs on a 128 px demo dataset (200 + 60 patients), and its settings."""
    root = tmp_path_factory.mktemp("xai")
    write_demo_dataset(root / "data" / "demo", n_train_patients=200, n_valid_patients=60, seed=1, size=(SIZE, SIZE))
    settings = Settings(
        root=root,
        data_dir=root / "data",
        models_dir=root / "models",
        logs_dir=root / "logs",
        weights_dir=root / "weights",
    )
    experiment = Experiment(ExperimentSpec(BENCHMARK, "2D.SmallCNN", ExperimentOptions(tensorboard=False)), settings)
    experiment.run()
    return settings, SavedRun.load(experiment.run_dir)


@pytest.fixture(scope="module")
def findings(trained: tuple[Settings, SavedRun]) -> dict:
    """Validation images showing each competition finding, as the model sees them, with their box masks."""
    settings, run = trained
    folder = settings.data_dir / "demo" / DEMO_FOLDER
    valid = pd.read_csv(folder / "valid.csv")
    boxes = read_boxes(folder / "valid" / BOX_FILE)
    params = _sample_params(run)
    pairs = [
        (str(folder.parent / path), name) for name in COMPETITION for path in valid.loc[valid[name] == 1.0, "Path"]
    ]
    files = [path for path, _ in pairs]
    images = _read_images(files, params)
    masks = []
    for path, name in pairs:
        moved = [box.moved(*box_frame(path, params)) for box in boxes_of(boxes, path, name)]
        assert moved, f"no {name} box for {path}"
        masks.append(box_mask(moved, images.shape[1:3]))
    classes = np.array([[run.classes.index(name)] for _, name in pairs])
    model = load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels)
    return {
        "files": files,
        "names": [name for _, name in pairs],
        "images": images,
        "classes": classes,
        "masks": np.stack(masks),
        "model": model,
        "boxes": folder / "valid" / BOX_FILE,
    }


def _box_scores(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    hits = [pointing_hit(saliency[0], mask) for saliency, mask in zip(maps, masks)]
    return float(np.mean(hits)), float(np.mean([mass_share(saliency[0], mask) for saliency, mask in zip(maps, masks)]))


@pytest.mark.slow
def test_gradcam_points_at_the_painted_findings(findings: dict) -> None:
    maps = gradcam(findings["model"], findings["images"], findings["classes"])
    assert maps.shape == (len(findings["files"]), 1, SIZE, SIZE) and maps.dtype == np.float32
    hit_rate, share = _box_scores(maps, findings["masks"])
    per_class = {
        name: float(
            np.mean(
                [
                    pointing_hit(maps[i, 0], findings["masks"][i])
                    for i in np.flatnonzero(np.array(findings["names"]) == name)
                ]
            )
        )
        for name in COMPETITION
    }
    print(f"\ngradcam on {len(maps)} validation images: hit rate {hit_rate:.3f}, mass share {share:.3f}, {per_class}")
    assert hit_rate >= 0.8


@pytest.mark.slow
def test_every_method_is_measured_against_the_boxes(findings: dict) -> None:
    """Hit rate and mass share of every method on two images per finding (cheap settings; printed, not bounded)."""
    chosen = np.concatenate([np.flatnonzero(np.array(findings["names"]) == name)[:2] for name in COMPETITION])
    images, classes, masks = findings["images"][chosen], findings["classes"][chosen], findings["masks"][chosen]
    config = MethodConfig(integrated_gradients=IntegratedGradientsConfig(steps=16), rise=RiseConfig(masks=200))
    lines = []
    for method in METHOD_NAMES:
        maps = explain_maps(findings["model"], images, method, classes, config=config)
        assert maps.shape == (len(chosen), 1, SIZE, SIZE) and np.isfinite(maps).all(), method
        hit_rate, share = _box_scores(maps, masks)
        lines.append(f"{method:22s} hit rate {hit_rate:.2f}  mass share {share:.3f}")
    print("\n" + "\n".join(lines))


@pytest.mark.slow
def test_gradcam_changes_when_the_weights_are_randomised(findings: dict) -> None:
    """Adebayo et al.'s model-randomisation test: a re-initialised model's maps do not resemble the trained ones."""
    model = findings["model"]
    images, classes = findings["images"][::4], findings["classes"][::4]
    random_model = keras.models.clone_model(model)
    trained_maps = gradcam(model, images, classes)[:, 0]
    random_maps = gradcam(random_model, images, classes)[:, 0]
    correlations = [
        0.0 if a.std() == 0 or b.std() == 0 else spearmanr(a.ravel(), b.ravel()).statistic
        for a, b in zip(trained_maps, random_maps)
    ]
    print(f"\nSpearman rank correlation, trained vs re-initialised Grad-CAM: mean {np.mean(correlations):.3f}")
    assert np.mean(correlations) < 0.5


@pytest.mark.slow
def test_gradcam_equals_an_independent_computation(findings: dict) -> None:
    model = findings["model"]
    images, column = findings["images"][:6], 3
    standardized = model.get_layer("standardize")(tf.constant(images))
    features = model.get_layer("backbone")(standardized, training=False)
    kernel, bias = model.get_layer("logits").get_weights()
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), kernel) + bias
        score = tf.reduce_sum(logits[:, column])
    gradient = tape.gradient(score, features)
    weights = tf.reduce_mean(gradient, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", features, weights))
    expected = tf.image.resize(cam[..., tf.newaxis], (SIZE, SIZE), method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(tf.sigmoid(logits).numpy(), model.predict_on_batch(images), atol=1e-5)
    np.testing.assert_allclose(gradcam(model, images, column)[:, 0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_integrated_gradients_are_complete(findings: dict) -> None:
    view = ModelView(findings["model"])
    images, classes = findings["images"][:3], findings["classes"][:3]
    logits = view.predict(images)[0]
    black = view.predict(np.zeros_like(images[:1]))[0][0]
    attributions = integrated_gradients(view, images, classes, config=IntegratedGradientsConfig(steps=128))
    for total, row, score in zip(attributions.sum(axis=(1, 2, 3)), classes[:, 0], logits):
        difference = score[row] - black[row]
        assert abs(total - difference) <= 0.02 * abs(difference), (total, difference)


@pytest.mark.slow
def test_explain_command_writes_maps_pictures_a_sheet_and_the_box_check(
    trained: tuple[Settings, SavedRun], findings: dict, tmp_path: Path
) -> None:
    settings, run = trained
    edema = [path for path, name in zip(findings["files"], findings["names"]) if name == "Edema"][:2]
    out = tmp_path / "explained"
    args = ["explain", run.run_id, *edema, "--method", "gradcam,rise", "--method", "crm", "--class", "Edema"]
    result = run_medbench(
        [*args, "--class", "0", "--masks", "32", "--boxes", str(findings["boxes"]), "--out", str(out)],
        settings,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "hit rate" in result.stdout and "12 map(s) of 2 image(s)" in result.stdout
    folders = sorted(path.name for path in out.iterdir() if path.is_dir())
    assert folders == ["000_view1_frontal", "001_view1_frontal"] or len(folders) == 2
    for folder in folders:
        for method in ("gradcam", "rise", "crm"):
            for name in ("Edema", "Atelectasis"):
                saliency = np.load(out / folder / f"{method}_{name}.npy")
                assert saliency.shape == (SIZE, SIZE) and saliency.dtype == np.float32
                for picture in ("map", "heatmap", "overlay"):
                    assert (out / folder / f"{method}_{name}_{picture}.png").stat().st_size > 100
    assert (out / "contact_sheet.png").is_file()
    index = pd.read_csv(out / "explanations.csv")
    assert len(index) == 12 and set(index["method"]) == {"gradcam", "rise", "crm"}
    summary = pd.read_csv(out / "localization_summary.csv")
    assert {"Edema", "all"} <= set(summary["class"]) and (summary.loc[summary["class"] == "Edema", "n"] == 2).all()
    unknown = run_medbench(["explain", run.run_id, edema[0], "--method", "gradcam,nosuch", "--out", str(out)], settings)
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr and "integrated-gradients" in unknown.stderr


def test_an_unknown_method_layer_or_class_is_an_error_listing_the_valid_ones() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(32, 32, 1))
    with pytest.raises(ConfigError, match="expected one of gradcam, gradcampp, saliency.*crm"):
        ExplainOptions(methods=("gradcam", "nosuch"))
    with pytest.raises(ConfigError, match="not a feature-map layer.*block1_conv.*block4_pool"):
        ModelView(model, "nosuch")
    with pytest.raises(ConfigError, match="one of the names: Edema, Effusion"):
        gradcam(model, np.zeros((1, 32, 32, 1), np.uint8), "Atelectasis", class_names=["Edema", "Effusion"])
    with pytest.raises(ConfigError, match="takes no layer inside the backbone"):
        crm(model, np.zeros((1, 32, 32, 1), np.uint8), 0, layer="block3_relu")
    assert tuple(METHODS) == METHOD_NAMES


def test_a_named_inner_layer_gives_maps_at_image_size() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 3, input_shape=(64, 64, 1))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    inner = gradcam(model, images, [0, 2], layer="block2_relu")
    assert inner.shape == (2, 2, 64, 64) and (inner >= 0).all()
    view = ModelView(model)
    np.testing.assert_allclose(view.predict(images)[1], model.predict_on_batch(images), atol=1e-6)


def test_gradcam_plus_plus_follows_monais_formula() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 3, input_shape=(64, 64, 1))
    images = np.random.default_rng(5).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    features = model.get_layer("backbone")(model.get_layer("standardize")(tf.constant(images)), training=False)
    kernel, bias = model.get_layer("logits").get_weights()
    with tf.GradientTape() as tape:
        tape.watch(features)
        score = (tf.matmul(tf.reduce_mean(features, axis=(1, 2)), kernel) + bias)[:, 1]
        total = tf.reduce_sum(score)
    g = tape.gradient(total, features).numpy().astype(np.float64)
    a = features.numpy().astype(np.float64)
    denominator = 2 * g**2 + (a * g**3).sum(axis=(1, 2), keepdims=True)
    alpha = g**2 / (np.where(denominator != 0, denominator, 1.0) + 1e-7)
    weights = (alpha * np.maximum(np.exp(score.numpy())[:, None, None, None] * g, 0)).sum(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * a).sum(axis=-1), 0).astype(np.float32)
    expected = tf.image.resize(cam[..., np.newaxis], (64, 64), method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(gradcam_plus_plus(model, images, 1)[:, 0], expected, rtol=1e-4, atol=1e-6)


def test_guided_backprop_gates_the_relus_only_while_it_runs() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(32, 32, 1), fcl=True)
    images = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    before = model.predict_on_batch(images)
    guided, plain = guided_backprop(model, images, 0), saliency(model, images, 0)
    assert guided.shape == plain.shape == (2, 1, 32, 32) and (guided >= 0).all() and not np.allclose(guided, plain)
    assert model.get_layer("backbone").get_layer("block1_relu").activation is keras.activations.relu
    assert model.get_layer("head_dense").activation is keras.activations.relu
    np.testing.assert_array_equal(model.predict_on_batch(images), before)


def test_crm_equals_its_closed_form_on_a_pooling_dense_head() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 4, input_shape=(64, 64, 1))
    images = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 1), dtype=np.uint8)
    features = model.get_layer("backbone")(model.get_layer("standardize")(tf.constant(images)), training=False)
    kernel = model.get_layer("logits").get_weights()[0]
    relevance = tf.reduce_sum(tf.square(tf.einsum("bhwc,cn->bhwn", features, kernel)), axis=-1)
    relevance = relevance / tf.reduce_max(relevance, axis=(1, 2), keepdims=True)
    expected = tf.image.resize(relevance[..., tf.newaxis], (64, 64), method="bilinear")[..., 0].numpy()
    maps = crm(model, images, [0, 3])
    assert maps.shape == (3, 2, 64, 64)
    np.testing.assert_array_equal(maps[:, 0], maps[:, 1])
    np.testing.assert_allclose(maps[:, 0], expected, atol=1e-4)


def test_crm_with_the_dense_512_head_removes_each_position_and_runs() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 3, input_shape=(64, 64, 1), fcl=True)
    images = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    maps = crm(model, images)
    assert maps.shape == (2, 1, 64, 64) and (maps >= 0).all() and (maps <= 1.0 + 1e-6).all()
    assert (maps.max(axis=(2, 3)) > 0.9).all()  # normalised by its maximum at the 4x4 map, then resized


def test_rise_with_a_fixed_seed_is_deterministic() -> None:
    model = SimpleBaseArchitecture("2D.SmallCNN", 2, input_shape=(32, 32, 1))
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    first = rise(model, images, 1, config=RiseConfig(masks=48, seed=7), batch_size=16)
    again = rise(model, images, 1, config=RiseConfig(masks=48, seed=7), batch_size=20)
    other = rise(model, images, 1, config=RiseConfig(masks=48, seed=8))
    np.testing.assert_array_equal(first, again)
    assert first.shape == (2, 1, 32, 32) and not np.array_equal(first, other)


def test_gradcam_on_a_3d_model() -> None:
    try:
        get_architecture("3D.SmallCNN")
    except RegistryError:
        pytest.skip("3D.SmallCNN is not registered in this tree")
    model = SimpleBaseArchitecture("3D.SmallCNN", 2, input_shape=(16, 16, 16, 1))
    volumes = np.random.default_rng(4).integers(0, 256, (2, 16, 16, 16, 1), dtype=np.uint8)
    maps = gradcam(model, volumes, [0, 1], layer="block2_relu")
    assert maps.shape == (2, 2, 16, 16, 16) and np.isfinite(maps).all() and (maps >= 0).all()
    assert gradcam(model, volumes).shape == (2, 1, 16, 16, 16)
    with pytest.raises(ConfigError, match="perturbs 2D images"):
        rise(model, volumes, 0, config=RiseConfig(masks=4))


def test_the_demo_writes_nih_format_boxes_around_each_painted_finding(tmp_path: Path) -> None:
    root = write_demo_dataset(tmp_path, n_train_patients=6, n_valid_patients=3, seed=2, size=(96, 117))
    folder = root / DEMO_FOLDER
    lines = (folder / "valid" / BOX_FILE).read_text().splitlines()
    assert lines[0] == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    boxes = read_boxes(folder / "train" / BOX_FILE) + read_boxes(folder / "valid" / BOX_FILE)
    table = pd.concat([pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "valid.csv")])
    painter = Painter(96, 117)
    for box in boxes[:60]:
        row = table.loc[table["Path"] == box.image].iloc[0]
        assert row[box.label] in (1.0, -1.0) or "train" in box.image
        split, patient, study, view = re.search(r"/(train|valid)/patient(\d+)/study(\d)/view(\d)_", box.image).groups()
        rng = np.random.default_rng((2, 1 if split == "train" else 2, int(patient), int(study), int(view)))
        pattern = np.abs(painter.patterns[box.label](*rng.uniform(-0.025, 0.025, size=2)))  # the image's own shift
        inside = box_mask([box], pattern.shape)
        assert 0 <= box.x and box.x + box.w <= 96 and box.y + box.h <= 117
        assert pattern[inside].sum() >= 0.95 * pattern.sum() and pattern[~inside].max() <= 0.05 * pattern.max()
    assert {box.image for box in boxes} <= set(table["Path"])


def test_box_files_round_trip_and_bad_rows_are_named(tmp_path: Path) -> None:
    boxes = [Box("a/b.png", "Edema", 1, 2, 3.5, 4), Box("c.png", "Mass", 0, 0, 10, 10)]
    path = tmp_path / BOX_FILE
    path.write_text(box_file_text(boxes))
    assert read_boxes(path) == boxes
    assert boxes_of(boxes, "/data/x/a/b.png", "edema") == boxes[:1] and boxes_of(boxes, "/data/xa/b.png") == []
    path.write_text(box_file_text(boxes) + "d.png,Mass,1,2,-3,4\n")
    with pytest.raises(DatasetError, match=r"row 4, column 'w'.*positive number"):
        read_boxes(path)
    path.write_text("Path,Label\n")
    with pytest.raises(DatasetError, match="expected NIH's BBox_List_2017.csv format"):
        read_boxes(path)


def test_pointing_game_and_mass_share() -> None:
    mask = box_mask([Box("x", "y", 2, 2, 3, 3)], (10, 10))
    assert mask.sum() == 9 and mask[2:5, 2:5].all()
    saliency = np.zeros((10, 10), np.float32)
    saliency[3, 3] = 2.0
    saliency[8, 8] = 1.0
    assert pointing_hit(saliency, mask) and mass_share(saliency, mask) == pytest.approx(2 / 3)
    assert not pointing_hit(np.zeros((10, 10)), mask) and mass_share(np.zeros((10, 10)), mask) == 0.0
    assert not pointing_hit(-saliency, mask)


@pytest.mark.skipif(not (SHARED_DATA / "nih-metadata").is_dir(), reason="../shared/data/nih-metadata is not present")
def test_nih_box_file_reads(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / BOX_FILE
    path.write_bytes(gzip.decompress((SHARED_DATA / "nih-metadata" / f"{BOX_FILE}.gz").read_bytes()))
    boxes = read_boxes(path)
    assert len(boxes) == 984 and boxes[0].image == "00013118_008.png" and boxes[0].label == "Atelectasis"
    assert json.dumps(sorted({box.label for box in boxes})).count(",") == 7

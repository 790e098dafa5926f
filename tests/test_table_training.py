"""TIML's table-driven training: methods, the table's cells, splits, statistics, the new vocabulary it needs
(enumerated augmentation, resize filters, colour spaces, wide heads, datasets split by their files) and a
3-row table on the demo data run through the real CLI, its runs re-evaluated in another process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from cli_process import run_medbench
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score, roc_auc_score

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, get_dataset, register_dataset, register_stored_dataset
from medbench.errors import BenchmarkNameError, ConfigError, DatasetError
from medbench.pipeline.enumeration import batch_variants, image_variant, variant_count
from medbench.preprocessing.params import PreprocessParams, resize_square
from medbench.preprocessing.transforms import compose, convert_color_space
from medbench.settings import Settings
from medbench.table_training.methods import parse_method
from medbench.table_training.splits import row_dataset
from medbench.table_training.statistics import split_statistics
from medbench.table_training.table import INPUT_COLUMNS, OUTPUT_COLUMNS, read_training_table

COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
ROW = {
    "method": "SmallCNN-ml",
    "dataset": "gt.csv",
    "split": "frac=0.2",
    "epochs": "1",
    "batchsize": "16",
    "imgsize": "32",
    "imgaug": "none",
    "resizefilter": "",
    "colorspace": "RGB",
    "classcolumns": "default",
    "classweights": "default",
}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())


def _write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _ground_truth(folder: Path, n: int = 50, classes: tuple[str, ...] = ("MEL", "NV", "BCC")) -> Path:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, len(classes), n)
    frame = pd.DataFrame({"image_name": [f"ISIC_{i:07d}" for i in range(n)]})
    for j, name in enumerate(classes):
        frame[name] = (truth == j).astype(int)
    path = folder / "gt.csv"
    frame.to_csv(path, index=False)
    return path


# methods


def test_timl_method_names_map_onto_the_registry_and_the_head() -> None:
    vgg = parse_method("VGG16")
    assert (vgg.architecture, vgg.fcl_units, vgg.multilabel, vgg.optimizer) == ("2D.VGG16", (2048, 2048), False, "SGD")
    resnet = parse_method("RESNET50-fc4k-ml")
    assert (resnet.architecture, resnet.fcl_units, resnet.multilabel) == ("2D.ResNet50", (4096, 4096), True)
    assert parse_method("DenseNet169-fc4k-ml").architecture == "2D.DenseNet169"
    small = parse_method("2D.SmallCNN")
    assert (small.fcl_units, small.multilabel, small.imagenet, small.optimizer) == (None, False, False, "Adam")
    with pytest.raises(ConfigError, match="method 'ResNet9000-ml'.*ResNet9000"):
        parse_method("ResNet9000-ml")
    with pytest.raises(ConfigError, match="-fc99k: expected a width of 1k to 64k"):
        parse_method("VGG16-fc99k")


# the table


def test_every_malformed_cell_is_named_by_row_and_column_before_anything_trains(tmp_path: Path) -> None:
    _ground_truth(tmp_path)
    rows = [
        {**ROW, "epochs": "two"},
        {**ROW, "imgaug": "hflip_rot7"},
        {**ROW, "split": "frac=0.7"},
        {**ROW, "resizefilter": "cubic"},
        {**ROW, "colorspace": "CMYK"},
        {**ROW, "classweights": "balanced"},
        {**ROW, "dataset": "missing.csv"},
        {**ROW, "split": "list", "dataset": "gt.csv;gt.csv"},
        ROW,
    ]
    with pytest.raises(ConfigError) as caught:
        read_training_table(_write_table(tmp_path / "table.csv", rows))
    message = str(caught.value)
    assert "8 malformed cell(s)" in message
    for expected in (
        "row 2 (model 0), column 'epochs': 'two'",
        "row 3 (model 1), column 'imgaug': 'hflip_rot7': expected one of none, hflip, hflip_rot4, hflip_rot24",
        "row 4 (model 2), column 'split': 'frac=0.7'",
        "row 5 (model 3), column 'resizefilter': 'cubic'",
        "row 6 (model 4), column 'colorspace': 'CMYK'",
        "row 7 (model 5), column 'classweights': 'balanced'",
        "row 8 (model 6), column 'dataset': 'missing.csv': no such file",
        "row 9 (model 7), column 'dataset'",
    ):
        assert expected in message
    assert "row 10" not in message


def test_a_table_without_required_or_with_unknown_columns_is_refused(tmp_path: Path) -> None:
    without = {key: value for key, value in ROW.items() if key != "epochs"}
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['epochs'\]"):
        read_training_table(_write_table(tmp_path / "a.csv", [without]))
    with pytest.raises(ConfigError, match=r"unknown column\(s\) \['imgagu'\]"):
        read_training_table(_write_table(tmp_path / "b.csv", [{**ROW, "imgagu": "hflip"}]))
    (tmp_path / "c.csv").write_text(",".join(ROW) + "\n")
    with pytest.raises(ConfigError, match="has no rows"):
        read_training_table(tmp_path / "c.csv")


def test_rows_read_their_cells_with_defaults_for_the_optional_columns(tmp_path: Path) -> None:
    _ground_truth(tmp_path)
    minimal = {key: ROW[key] for key in ("method", "dataset", "split", "epochs", "batchsize", "imgsize")}
    full = {**ROW, "imgaug": "hflip_rot4", "resizefilter": "Lanczos", "colorspace": "YCbCr", "classweights": "compute"}
    first, second = read_training_table(_write_table(tmp_path / "table.csv", [minimal, full]))
    assert (first.enumeration, first.resize_filter, first.color_space, first.class_columns) == (
        "none",
        None,
        None,
        None,
    )
    assert (first.compute_class_weights, first.seed, first.weights) == (False, 0, None)
    assert (second.enumeration, second.resize_filter, second.color_space) == ("hflip_rot4", "lanczos", "ycbcr")
    assert second.compute_class_weights and second.datasets == (tmp_path / "gt.csv",)


# splits


def _row(tmp_path: Path, **cells: str):  # type: ignore[no-untyped-def]
    return read_training_table(_write_table(tmp_path / "table.csv", [{**ROW, **cells}]))[0]


def test_frac_and_n_split_the_images_disjointly_and_reproducibly(tmp_path: Path, registry: None) -> None:
    _ground_truth(tmp_path, n=50)
    spec = row_dataset(_row(tmp_path, split="frac=0.2", method="SmallCNN"), tmp_path, tmp_path / "out")
    parts = {part: pd.read_csv(getattr(spec, part))["image_name"] for part in ("train", "val", "test")}
    assert [len(parts[p]) for p in ("train", "val", "test")] == [30, 10, 10]
    assert set().union(*map(set, parts.values())) == {f"ISIC_{i:07d}" for i in range(50)}
    assert sum(map(len, parts.values())) == 50
    assert (spec.task, spec.channels, spec.classes, spec.format) == ("multiclass", 3, ("MEL", "NV", "BCC"), "onehot")
    again = row_dataset(_row(tmp_path, split="frac=0.2", method="SmallCNN"), tmp_path, tmp_path / "again")
    assert again.name == spec.name and list(pd.read_csv(again.val)["image_name"]) == list(parts["val"])
    reseeded = row_dataset(_row(tmp_path, split="frac=0.2", method="SmallCNN", seed="5"), tmp_path, tmp_path / "s")
    assert reseeded.name != spec.name
    counted = row_dataset(_row(tmp_path, split="n=7", classcolumns="NV;MEL"), tmp_path, tmp_path / "n")
    assert len(pd.read_csv(counted.val)) == len(pd.read_csv(counted.test)) == 7 and counted.classes == ("NV", "MEL")
    assert counted.task == "multilabel"
    with pytest.raises(ConfigError, match="split 'n=25' of 50 images gives 25 each"):
        row_dataset(_row(tmp_path, split="n=25"), tmp_path, tmp_path / "x")


def test_pre_and_list_splits_read_the_given_files(tmp_path: Path, registry: None) -> None:
    truth = pd.read_csv(_ground_truth(tmp_path, n=30))
    for part, rows in (("train", slice(0, 20)), ("dev", slice(20, 25)), ("test", slice(25, 30))):
        truth.iloc[rows].to_csv(tmp_path / f"ISIC-190213-{part}.csv", index=False)
    spec = row_dataset(_row(tmp_path, split="pre", dataset="ISIC-190213"), tmp_path, tmp_path / "out")
    assert [len(pd.read_csv(getattr(spec, p))) for p in ("train", "val", "test")] == [20, 5, 5]
    listed = ";".join(f"ISIC-190213-{part}.csv" for part in ("train", "dev", "test"))
    listed_spec = row_dataset(_row(tmp_path, split="list", dataset=listed), tmp_path, tmp_path / "o2")
    assert listed_spec.name.rsplit("-", 1)[1] == spec.name.rsplit("-", 1)[1]  # the same content: the same digest
    with pytest.raises(ConfigError, match="column 'dataset': 'ISIC-2020': no such file .*ISIC-2020-train.csv"):
        _row(tmp_path, split="pre", dataset="ISIC-2020")
    pd.DataFrame({"image": ["a"], "MEL": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DatasetError, match="first column is 'image'; expected 'image_name'"):
        row_dataset(_row(tmp_path, dataset="bad.csv"), tmp_path, tmp_path / "o4")


# statistics against scikit-learn


def _specificities(truth: np.ndarray, predicted: np.ndarray, n: int) -> list[float]:
    matrix = confusion_matrix(truth, predicted, labels=list(range(n)))
    total = matrix.sum()
    return [(total - matrix[c].sum() - matrix[:, c].sum() + matrix[c, c]) / (total - matrix[c].sum()) for c in range(n)]


def test_statistics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 80)
    scores = rng.random((80, 3)) + np.eye(3)[truth] * 0.4
    scores /= scores.sum(axis=1, keepdims=True)
    stats = split_statistics(np.eye(3)[truth], scores, ("a", "b", "c"), multiclass=True)
    predicted = scores.argmax(axis=1)
    assert stats["acc"] == pytest.approx(accuracy_score(truth, predicted))
    assert stats["sens"] == pytest.approx(recall_score(truth, predicted, average="macro"))
    assert stats["spec"] == pytest.approx(np.mean(_specificities(truth, predicted, 3)))
    assert stats["auc"] == pytest.approx(roc_auc_score(truth, scores, multi_class="ovr"))

    binary = rng.integers(0, 2, 60)
    two = np.c_[1 - (p := np.clip(binary * 0.3 + rng.random(60) * 0.7, 0, 1)), p]
    stats = split_statistics(np.eye(2)[binary], two, ("BEN", "MAL"), multiclass=True)
    called = two.argmax(axis=1)
    assert stats["sens"] == pytest.approx(recall_score(binary, called))
    assert stats["spec"] == pytest.approx(recall_score(binary, called, pos_label=0))
    assert stats["auc"] == pytest.approx(roc_auc_score(binary, two[:, 1]))

    labels = (rng.random((70, 4)) < 0.4).astype(float)
    labels[rng.random((70, 4)) < 0.1] = np.nan
    probabilities = np.clip(np.nan_to_num(labels) * 0.3 + rng.random((70, 4)) * 0.7, 0, 1)
    stats = split_statistics(labels, probabilities, ("w", "x", "y", "z"), multiclass=False)
    known = [~np.isnan(labels[:, j]) for j in range(4)]
    per = [(labels[k, j].astype(int), (probabilities[k, j] >= 0.5).astype(int)) for j, k in enumerate(known)]
    assert stats["acc"] == pytest.approx(np.mean([accuracy_score(t, c) for t, c in per]))
    assert stats["sens"] == pytest.approx(np.mean([recall_score(t, c) for t, c in per]))
    assert stats["spec"] == pytest.approx(np.mean([recall_score(t, c, pos_label=0) for t, c in per]))
    aurocs = [roc_auc_score(labels[k, j], probabilities[k, j]) for j, k in enumerate(known)]
    assert stats["auc"] == pytest.approx(np.mean(aurocs))


# the vocabulary TIML needs


def _asymmetric(size: int = 16, channels: int = 3) -> np.ndarray:
    image = np.zeros((size, size, channels), np.uint8)
    image[2:6, 1:4] = 200
    image[10:, 12:] = 90
    image[0, :] = 40
    return image


def test_enumerated_variants_are_the_mirrors_and_turns_timl_lists() -> None:
    image = _asymmetric()
    assert variant_count("none") == 1 and variant_count("hflip") == 2
    assert variant_count("hflip_rot4") == 8 and variant_count("hflip_rot24") == 48
    np.testing.assert_array_equal(image_variant(image, 1, "hflip"), image[:, ::-1])
    np.testing.assert_array_equal(image_variant(image, 2, "hflip_rot4"), np.rot90(image, 1))
    np.testing.assert_array_equal(image_variant(image, 7, "hflip_rot4"), np.rot90(image[:, ::-1], 3))
    variants = [image_variant(image, v, "hflip_rot4").tobytes() for v in range(8)]
    assert len(set(variants)) == 8
    half_turn = image_variant(image, 24, "hflip_rot24")
    assert np.abs(half_turn.astype(int) - np.rot90(image, 2).astype(int)).max() <= 1
    fifteen = image_variant(image, 2, "hflip_rot24")
    matrix = cv2.getRotationMatrix2D((7.5, 7.5), 15.0, 1.0)
    np.testing.assert_array_equal(fifteen, cv2.warpAffine(image, matrix, (16, 16), flags=cv2.INTER_LINEAR))
    batch = np.stack([image, image])
    np.testing.assert_array_equal(batch_variants(batch, np.array([0, 1]), "hflip")[1], image[:, ::-1])


def test_the_enumeration_token_round_trips_and_is_refused_where_it_cannot_apply() -> None:
    benchmark = Benchmark("demo", n_classes=5, image_size=32, enumeration="hflip_rot24", transformations=("lanczos",))
    assert "_EnumHflipRot24_lanczos_D32_" in benchmark.name
    assert Benchmark.from_name(benchmark.name) == benchmark
    with pytest.raises(BenchmarkNameError, match="token 'EnumVflip' at position 7 is not a valid enumeration"):
        Benchmark.from_name("demo_BCE_E3_B32_C0_N5_EnumVflip_D32_1LR4_LF5_Adam")
    with pytest.raises(BenchmarkNameError, match="enumeration 'hflip' mirrors and turns 2D images"):
        Benchmark("vols", dimension=3, image_size=16, enumeration="hflip")


def test_colour_spaces_and_resize_filters_are_pillows() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    for token, mode in (("hsv", "HSV"), ("lab", "LAB"), ("ycbcr", "YCbCr")):
        np.testing.assert_array_equal(compose([token])(rgb), np.asarray(Image.fromarray(rgb).convert(mode)))
    with pytest.raises(ConfigError, match="converts RGB colour images; got an image of shape \\(20, 24\\)"):
        convert_color_space(rgb[..., 0], "hsv")
    with pytest.raises(ConfigError, match="'hsv' converts RGB colour images, but images are stored with 1 channel"):
        PreprocessParams(16, transformations=("hsv",), channels=1)
    for name, resample in (("nearest", Image.Resampling.NEAREST), ("lanczos", Image.Resampling.LANCZOS)):
        expected = np.asarray(Image.fromarray(rgb).resize((12, 12), resample))
        np.testing.assert_array_equal(resize_square(rgb, 12, name), expected)
    gray = rgb[..., :1]
    bicubic = np.asarray(Image.fromarray(gray[..., 0]).resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(resize_square(gray, 8, "bicubic"), bicubic[..., None])
    assert not np.array_equal(resize_square(rgb, 12, "nearest"), resize_square(rgb, 12))
    with pytest.raises(ConfigError, match="2 resize filters"):
        PreprocessParams(16, transformations=("nearest", "bicubic"))


def test_wide_heads_take_the_widths_given() -> None:
    from medbench.architectures.base import SimpleBaseArchitecture

    model = SimpleBaseArchitecture("2D.SmallCNN", 3, input_shape=(32, 32, 1), fcl=(64, 48))
    assert [model.get_layer(name).units for name in ("head_dense", "head_dense_2")] == [64, 48]
    assert model.get_layer("head_dropout_2").rate == pytest.approx(0.3)
    assert ExperimentOptions(fcl=True, fcl_units=[2048, 2048]).fcl_units == (2048, 2048)
    with pytest.raises(ConfigError, match="fcl_units \\[64\\]: expected fcl true"):
        ExperimentOptions(fcl_units=(64,))


# datasets split by their files, kept in the run's config


def test_a_dataset_with_validation_and_test_files_is_split_by_them(tmp_path: Path, registry: None) -> None:
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment_data import prepare_data

    with pytest.raises(DatasetError, match="val 'v.csv' needs a test file beside it"):
        DatasetSpec(name="x", format="csv", root="x", train="t.csv", val="v.csv", path_column="p", classes=("a",))
    images = tmp_path / "data" / "img"
    images.mkdir(parents=True)
    rows = []
    for i in range(30):
        cv2.imwrite(str(images / f"{i}.png"), np.full((8, 8), i * 8, np.uint8))
        rows.append({"image_name": f"{i}.png", "a": i % 2, "b": 1 - i % 2})
    table = pd.DataFrame(rows)
    for part, chosen in (("train", slice(0, 20)), ("val", slice(20, 25)), ("test", slice(25, 30))):
        table.iloc[chosen].to_csv(tmp_path / "data" / f"{part}.csv", index=False)
    spec = DatasetSpec(
        name="filesplit", format="onehot", root="img", train="../train.csv", val="../val.csv",
        test="../test.csv", image_dir=".", path_column="image_name", classes=("a", "b"),
    )  # fmt: skip
    register_dataset(spec)
    data = prepare_data(
        ExperimentSpec(Benchmark("filesplit", loss="CCE", n_classes=2, image_size=8)), tmp_path / "data"
    )
    assert [len(part) for part in (data.train, data.val, data.test)] == [20, 5, 5]
    assert set(data.val.sample_ids) == {f"{i}.png" for i in range(20, 25)}
    with pytest.raises(ConfigError, match="split DS8020 asks for a patient split, but dataset 'filesplit' is split"):
        prepare_data(ExperimentSpec(Benchmark("filesplit", "CCE", n_classes=2, split=(80, 20))), tmp_path / "data")
    stored = json.loads(json.dumps(spec.to_dict()))
    assert DatasetSpec.from_dict(stored) == spec
    monkeypatched = {**stored, "name": "elsewhere", "root": "other"}
    register_stored_dataset(monkeypatched)
    assert get_dataset("elsewhere").root == "other"
    register_stored_dataset({**monkeypatched, "root": "ignored"})
    assert get_dataset("elsewhere").root == "other"


# a table on the demo data, through the real CLI


@pytest.mark.slow
def test_a_three_row_table_trains_runs_that_later_processes_reevaluate(settings: Settings) -> None:
    root = settings.root
    demo = settings.data_dir / "demo"
    train = pd.read_csv(demo / "CheXpert-v1.0-small" / "train.csv")
    truth = pd.DataFrame({"image_name": train["Path"]})
    for name in COMPETITION:
        truth[name] = (train[name].fillna(0) == 1).astype(int)
    truth.to_csv(root / "gt.csv", index=False)
    rows = [
        {**ROW, "epochs": "2", "imgaug": "hflip", "resizefilter": "bicubic"},
        {**ROW, "method": "SmallCNN-fc1k-ml", "split": "n=25", "colorspace": "HSV", "classweights": "compute"},
        {**ROW, "classcolumns": "Edema;Nodule"},
    ]
    table = _write_table(root / "table.csv", rows)
    done = run_medbench(
        [
            "exec",
            "--table",
            str(table),
            "--img-dir",
            str(demo),
            "--out-dir",
            str(root),
            "--option",
            "tensorboard=false",
        ],
        settings,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "1 of 3 model(s) failed" in done.stderr
    (out,) = root.glob("train_output-*")
    with (out / "automation_result.csv").open(newline="") as handle:
        results = list(csv.DictReader(handle))
    assert len(results) == 3 and list(results[0])[: len(INPUT_COLUMNS)] == list(INPUT_COLUMNS)
    assert set(OUTPUT_COLUMNS) <= set(results[0])
    assert "classcolumns ['Nodule'] are not columns" in results[2]["exceptions"] and not results[2]["run_id"]
    n_images = len(truth)
    assert int(results[1]["valsize"]) == int(results[1]["testsize"]) == 25
    assert int(results[1]["trainsize"]) == n_images - 50
    stamp = out.name.removeprefix("train_output-")
    for index, result in enumerate(results[:2]):
        assert not result["exceptions"]
        for name in (
            f"{index}-automation_result.csv", f"{index}-keras_model-{stamp}.keras", f"{index}-training_results.csv",
            f"{index}-loss.png", f"{index}-accuracy.png", f"{index}-roc-val.png", f"{index}-roc-test.png",
        ):  # fmt: skip
            assert (out / name).stat().st_size > 0, name
        (run_dir,) = settings.models_dir.glob(f"*/{result['run_id']}")
        predictions = pd.read_csv(run_dir / "predictions" / "test.csv")
        classes = [column.removeprefix("true:") for column in predictions if column.startswith("true:")]
        aurocs = [roc_auc_score(predictions[f"true:{c}"], predictions[f"pred:{c}"]) for c in classes]
        assert float(result["testauc"]) == pytest.approx(np.mean(aurocs), abs=1e-6)
        for key in ("valacc", "valspec", "valsens", "testacc", "testspec", "testsens"):
            assert 0.0 <= float(result[key]) <= 1.0
    first = json.loads(next(settings.models_dir.glob(f"*/{results[0]['run_id']}/config.json")).read_text())
    assert "_EnumHflip_bicubic_D32_" in first["name"] and first["sizes"]["train"] == n_images - 2 * round(
        0.2 * n_images
    )
    second = json.loads(next(settings.models_dir.glob(f"*/{results[1]['run_id']}/config.json")).read_text())
    assert "_WBCE_" in second["name"] and "_hsv_" in second["name"]
    assert second["options"]["fcl_units"] == [1024, 1024] and second["options"]["fcl"] is True
    assert second["dataset_spec"]["classes"] == COMPETITION and second["dataset_spec"]["val"].endswith("-dev.csv")
    history = pd.read_csv(out / "0-training_results.csv")
    assert list(history["epoch"]) == [1, 2]

    again = run_medbench(["reevaluate", "--run", results[1]["run_id"]], settings, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert results[1]["run_id"] in again.stdout + again.stderr

"""medbench.aucmedi: AUCMEDI's documented examples (the NeuralNetwork and Classifier pages of ../shared/seeds) run
with only ``aucmedi`` → ``medbench.aucmedi`` in their imports, and the pillars checked against what they promise."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from medbench.errors import ConfigError, DatasetError

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
needs_seeds = pytest.mark.skipif(
    not (SEEDS / "aucmedi-neural-network.txt").is_file(),
    reason="../shared/seeds (AUCMEDI's documentation, where the examples come from) is not beside the repository",
)
N_SAMPLES, N_CLASSES = 110, 8


def seed_examples(page: str) -> list[str]:
    """The ```python blocks of an AUCMEDI documentation page, as written there (dedented)."""
    text = (SEEDS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"\n( *)```python[^\n]*\n(.*?)\n\1```", text, flags=re.S)
    seen, examples = set(), []
    for indent, body in blocks:
        code = "\n".join(line[len(indent) :] for line in body.split("\n"))
        if code not in seen:
            seen.add(code)
            examples.append(code)
    return examples


def medbench_imports(code: str) -> str:
    """The one change a user makes: import medbench.aucmedi wherever the example imports aucmedi."""
    code = re.sub(r"\bfrom aucmedi\b", "from medbench.aucmedi", code)
    code = re.sub(r"^import aucmedi\b", "import medbench.aucmedi as aucmedi", code, flags=re.M)
    return code if "medbench.aucmedi import" in code else "from medbench.aucmedi import *\n" + code


@pytest.fixture(scope="module")
def isic_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """110 small RGB PNGs of 8 classes (a coloured square whose hue is the class) and an AUCMEDI CSV naming them
    with their suffix (the examples build DataGenerators without `image_format`)."""
    from medbench.aucmedi import input_interface

    root = tmp_path_factory.mktemp("isic")
    images = root / "images_dir"
    images.mkdir()
    rng = np.random.default_rng(0)
    rows = ["SAMPLE,CLASS"]
    for index in range(N_SAMPLES):
        label = index % N_CLASSES
        image = rng.integers(0, 40, (40, 40, 3), dtype=np.uint8)
        hue = int(label * 180 / N_CLASSES)
        colour = cv2.cvtColor(np.uint8([[[hue, 220, 230]]]), cv2.COLOR_HSV2BGR)[0, 0].tolist()
        cv2.rectangle(image, (10, 10), (30, 30), colour, -1)
        cv2.imwrite(str(images / f"ISIC_{index:04d}.png"), image)
        rows.append(f"ISIC_{index:04d}.png,c{label}")
    (root / "annotations.csv").write_text("\n".join(rows) + "\n")
    parsed = input_interface("csv", images, path_data=root / "annotations.csv", ohe=False)
    return root, parsed


def run_example(code: str, root: Path, parsed: Any) -> dict[str, Any]:
    samples, class_ohe, _, _, image_format = parsed
    namespace: dict[str, Any] = {"samples": samples, "class_ohe": class_ohe}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        exec(compile(medbench_imports(code), "<aucmedi example>", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert image_format is None  # the sample names carry their suffix, as the examples' DataGenerators assume
    return namespace


# the input interface


def test_input_interface_reads_aucmedis_csv_directory_and_json_layouts(tmp_path: Path) -> None:
    from medbench.aucmedi import input_interface

    images = tmp_path / "images"
    images.mkdir()
    for sample in ("s1", "s2", "s3"):
        cv2.imwrite(str(images / f"{sample}.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "sparse.csv").write_text("ID,diagnosis\ns1,cat\ns2,dog\ns3,cat\n")
    samples, ohe, n, names, image_format = input_interface(
        "csv", images, path_data=tmp_path / "sparse.csv", ohe=False, col_sample="ID", col_class="diagnosis"
    )
    assert samples == ["s1", "s2", "s3"] and names == ["cat", "dog"] and n == 2 and image_format == "png"
    assert ohe.tolist() == [[1, 0], [0, 1], [1, 0]]
    (tmp_path / "onehot.csv").write_text("SAMPLE,cat,dog\ns1.png,1,0\ns2.png,0,1\ns3.png,1,0\n")
    samples, ohe, n, names, image_format = input_interface("csv", images, path_data=tmp_path / "onehot.csv", ohe=True)
    assert names == ["cat", "dog"] and image_format is None and ohe.tolist() == [[1, 0], [0, 1], [1, 0]]

    (tmp_path / "legend.json").write_text(json.dumps({"legend": ["dog", "cat"], "s1": "cat", "s2": "dog"}))
    samples, ohe, n, names, _ = input_interface("json", images, path_data=tmp_path / "legend.json", ohe=False)
    assert names == ["dog", "cat"] and ohe.tolist() == [[0, 1], [1, 0]]
    (tmp_path / "ohe.json").write_text(json.dumps({"s1": [1, 0, 0], "s3": [0, 0, 1]}))
    _, ohe, n, names, _ = input_interface("json", images, path_data=tmp_path / "ohe.json", ohe=True)
    assert n == 3 and names is None and ohe.shape == (2, 3)

    folders = tmp_path / "folders"
    for label, count in (("benign", 2), ("malignant", 1)):
        (folders / label).mkdir(parents=True)
        for index in range(count):
            cv2.imwrite(str(folders / label / f"{label}{index}.jpg"), np.zeros((8, 8), np.uint8))
    samples, ohe, n, names, image_format = input_interface("directory", folders)
    assert samples == ["benign/benign0.jpg", "benign/benign1.jpg", "malignant/malignant0.jpg"]
    assert names == ["benign", "malignant"] and ohe.tolist() == [[1, 0], [1, 0], [0, 1]] and image_format is None
    samples, ohe, *_, image_format = input_interface("directory", images, training=False)
    assert samples == ["s1", "s2", "s3"] and ohe is None and image_format == "png"


def test_input_interface_errors_name_the_keyword_the_sample_or_the_file(tmp_path: Path) -> None:
    from medbench.aucmedi import input_interface

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "s1.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "a.csv").write_text("SAMPLE,CLASS\ns1,x\ns9,y\n")
    with pytest.raises(ConfigError, match=r"unknown keyword \['col_samples'\]; the csv interface takes ohe_range"):
        input_interface("csv", images, path_data=tmp_path / "a.csv", col_samples="ID")
    with pytest.raises(DatasetError, match=r"a.csv: sample 2 's9' has no image .*s9.png"):
        input_interface("csv", images, path_data=tmp_path / "a.csv")
    with pytest.raises(ConfigError, match="interface 'xml'; expected one of csv, directory, json"):
        input_interface("xml", images)
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"b.json: cannot be read as JSON"):
        input_interface("json", images, path_data=tmp_path / "b.json")


# the data generator


def test_prepared_and_unprepared_generators_yield_the_same_standardized_batches(
    isic_like: tuple, tmp_path: Path
) -> None:
    from medbench.architectures.standardization import standardize
    from medbench.aucmedi import DataGenerator
    from medbench.preprocessing.params import PreprocessParams, preprocess_image

    root, (samples, class_ohe, *_, image_format) = isic_like
    common = dict(
        labels=class_ohe[:20], image_format=image_format, batch_size=8, resize=(32, 32), standardize_mode="torch"
    )
    plain = DataGenerator(samples[:20], root / "images_dir", **common)
    prepared = DataGenerator(samples[:20], root / "images_dir", prepare_images=True, cache_dir=tmp_path, **common)
    assert len(plain) == 3 and len(prepared) == 3
    for index in range(3):
        (x, y), (x2, y2) = plain[index], prepared[index]
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    pixels = preprocess_image(root / "images_dir" / samples[0], PreprocessParams(32, channels=3))
    expected = standardize(pixels[np.newaxis].astype(np.float32), "torch").numpy()[0]
    np.testing.assert_allclose(plain[0][0][0], expected, atol=1e-6)
    assert plain[0][0].dtype == np.float32 and plain[2][0].shape == (4, 32, 32, 3)


def test_a_shuffled_generator_is_a_pure_function_of_seed_and_epoch(isic_like: tuple) -> None:
    from medbench.aucmedi import DataGenerator

    root, (samples, class_ohe, *_, image_format) = isic_like

    def make() -> DataGenerator:
        return DataGenerator(
            samples[:16],
            root / "images_dir",
            labels=class_ohe[:16],
            image_format=image_format,
            batch_size=4,
            resize=(32, 32),
            shuffle=True,
            seed=7,
            data_aug=("affine", "color"),
            grayscale=True,
        )

    first, second = make(), make()
    np.testing.assert_array_equal(first[1][0], second[1][0])
    before = first[1][1].copy()
    first.on_epoch_end()
    assert not np.array_equal(first[1][1], before) or not np.array_equal(first[1][0], second[1][0])
    assert first[0][0].shape == (4, 32, 32, 1)


def test_unknown_generator_keywords_and_bad_arguments_are_errors(isic_like: tuple) -> None:
    from medbench.aucmedi import DataGenerator

    root, (samples, class_ohe, *_, image_format) = isic_like
    with pytest.raises(ConfigError, match=r"unknown keyword \['img_aug'\]"):
        DataGenerator(samples, root / "images_dir", img_aug=object())
    with pytest.raises(ConfigError, match="110 samples but 3 labels"):
        DataGenerator(samples, root / "images_dir", labels=class_ohe[:3])
    with pytest.raises(ConfigError, match="standardize_mode 'zscore2'"):
        DataGenerator(samples, root / "images_dir", standardize_mode="zscore2")


# the seed's examples


@needs_seeds
def test_the_classifier_pages_examples_run(isic_like: tuple) -> None:
    root, parsed = isic_like
    examples = seed_examples("aucmedi-classifier.txt")
    assert len(examples) == 2
    namespace = run_example(examples[0], root, parsed)
    model, arch = namespace["model"], namespace["arch"]
    assert model.input_shape == (32, 32, 3) and model.model.output_shape == (None, 20)
    assert model.model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert arch.input == (32, 32, 3) and arch.create_model().count_params() == model.model.count_params()
    namespace = run_example(examples[1], root, parsed)
    assert namespace["my_model"].model.input_shape[1] == (None, 10)


@needs_seeds
@pytest.mark.slow
def test_the_neural_network_pages_examples_run(isic_like: tuple) -> None:
    root, parsed = isic_like
    examples = seed_examples("aucmedi-neural-network.txt")
    how_to_use, select, recommended, manual, metadata = examples
    assert "2D.ResNet50" in how_to_use
    namespace = run_example(select, root, parsed)
    assert namespace["my_model_a"].meta_input == (224, 224)
    assert namespace["my_model_b"].model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert namespace["my_model_b"].input_shape[-1] == 3 and len(namespace["my_model_b"].input_shape) == 4
    assert namespace["my_model_c"].input_shape == (512, 512, 3)

    namespace = run_example(recommended, root, parsed)
    assert namespace["my_model"].meta_standardize == "torch" and namespace["my_dg"].standardize_mode == "torch"
    namespace = run_example(manual, root, parsed)
    assert namespace["my_model"].input_shape == (128, 128, 128, 1) and namespace["sf_norm"] == "torch"
    assert namespace["my_model"].model.output_shape == (None, 4)

    namespace = run_example(metadata, root, parsed)
    (images, features) = namespace["my_dg"][0]
    assert images.shape == (32, 224, 224, 3) and features.shape == (32, 10)
    predictions = namespace["my_model"].model.predict_on_batch([images[:2], features[:2]])
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)


@needs_seeds
@pytest.mark.slow
def test_how_to_use_trains_and_predicts_on_a_small_cnn(isic_like: tuple) -> None:
    """The first example as written, but on 2D.SmallCNN: 2D.ResNet50 at 224 px for 50 epochs takes about twenty
    minutes on two cores (`test_how_to_use_verbatim` runs it with MEDBENCH_VERY_SLOW=1)."""
    root, parsed = isic_like
    code = seed_examples("aucmedi-neural-network.txt")[0].replace('"2D.ResNet50"', '"2D.SmallCNN"')
    namespace = run_example(code, root, parsed)
    predictions = namespace["preds"]
    assert predictions.shape == (10, N_CLASSES)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    truth = np.argmax(parsed[1][100:110], axis=1)
    assert (predictions.argmax(axis=1) == truth).mean() >= 0.5


@needs_seeds
@pytest.mark.very_slow
@pytest.mark.skipif(os.environ.get("MEDBENCH_VERY_SLOW") != "1", reason="set MEDBENCH_VERY_SLOW=1 (about 20 minutes)")
def test_how_to_use_verbatim(isic_like: tuple) -> None:
    root, parsed = isic_like
    namespace = run_example(seed_examples("aucmedi-neural-network.txt")[0], root, parsed)
    assert namespace["preds"].shape == (10, N_CLASSES)


# the network's own contract


@pytest.mark.slow
def test_transfer_learning_freezes_then_fine_tunes_and_prefixes_the_history(isic_like: tuple, tmp_path: Path) -> None:
    from medbench.aucmedi import DataGenerator, NeuralNetwork
    from medbench.aucmedi.neural_network.loss_functions import categorical_focal_loss
    from medbench.aucmedi.utils.class_weights import compute_class_weights

    root, (samples, class_ohe, *_, image_format) = isic_like
    weights, weights_dict = compute_class_weights(class_ohe)
    model = NeuralNetwork(N_CLASSES, 3, architecture="2D.SmallCNN", loss=categorical_focal_loss(weights), verbose=0)
    model.tf_epochs = 1
    data = DataGenerator(
        samples[:32],
        root / "images_dir",
        labels=class_ohe[:32],
        image_format=image_format,
        resize=model.meta_input,
        standardize_mode=model.meta_standardize,
        batch_size=16,
    )
    backbone_before = [w.copy() for w in model.model.get_layer("backbone").get_weights()]
    history = model.train(data, data, epochs=2, transfer_learning=True, class_weights=weights_dict, iterations=3)
    assert set(history) >= {"tl_loss", "ft_loss", "tl_val_loss", "ft_categorical_accuracy"}
    assert len(history["tl_loss"]) == 1 and len(history["ft_loss"]) == 1 and len(data) == 2
    assert any(
        not np.array_equal(a, b) for a, b in zip(backbone_before, model.model.get_layer("backbone").get_weights())
    )

    path = tmp_path / "model.keras"
    model.dump(path)
    predictions = model.predict(
        DataGenerator(
            samples[:5],
            root / "images_dir",
            image_format=image_format,
            resize=model.meta_input,
            standardize_mode=model.meta_standardize,
        )
    )
    model.reset_weights()
    for now, initial in zip(model.model.get_weights(), model.initialization_weights):
        np.testing.assert_array_equal(now, initial)
    model.load(path)
    again = model.predict(
        DataGenerator(
            samples[:5],
            root / "images_dir",
            image_format=image_format,
            resize=model.meta_input,
            standardize_mode=model.meta_standardize,
        )
    )
    np.testing.assert_allclose(again, predictions, atol=1e-6)


@pytest.mark.slow
def test_a_3d_network_trains_on_volumes_from_a_generator(tmp_path: Path) -> None:
    from medbench.aucmedi import DataGenerator, NeuralNetwork

    rng = np.random.default_rng(1)
    samples, labels = [], []
    for index in range(12):
        volume = rng.normal(0, 1, (20, 20, 20)).astype(np.float32)
        if index % 2:
            volume[6:14, 6:14, 6:14] += 4.0
        np.save(tmp_path / f"vol{index}.npy", volume)
        samples.append(f"vol{index}")
        labels.append([1 - index % 2, index % 2])
    model = NeuralNetwork(2, 1, architecture="3D.SmallCNN", input_shape=(16, 16, 16), verbose=0)
    assert model.input_shape == (16, 16, 16, 1) and model.meta_input == (16, 16, 16)
    data = DataGenerator(
        samples,
        tmp_path,
        labels=np.array(labels),
        image_format="npy",
        batch_size=4,
        resize=model.meta_input,
        standardize_mode=model.meta_standardize,
        data_aug=("affine",),
    )
    (batch, targets) = data[0]
    assert batch.shape == (4, 16, 16, 16, 1) and batch.dtype == np.float32 and targets.shape == (4, 2)
    history = model.train(data, epochs=2)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    predictions = model.predict(
        DataGenerator(
            samples,
            tmp_path,
            image_format="npy",
            resize=(16, 16, 16),
            standardize_mode=model.meta_standardize,
            prepare_images=True,
        )
    )
    assert predictions.shape == (12, 2)
    plain, cached = (
        DataGenerator(samples, tmp_path, image_format="npy", resize=(16, 16, 16), prepare_images=prepared,
                      cache_dir=tmp_path / "cache")
        for prepared in (False, True)
    )  # fmt: skip
    np.testing.assert_array_equal(plain[0], cached[0])

"""3D volumes end to end: the volume dataset format, the 3D cache, the pipeline's 5D batches and augmentation,
an experiment that trains, checkpoints, logs, re-evaluates and predicts on volume files.

The synthetic dataset: 40 volumes (20 patients, two each) in noise, each holding either a small dim sphere or
a larger bright cube at a random place, written as .nii.gz and .mha (SimpleITK) and .npy (NumPy), at most
28³ voxels.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medbench.benchmark import Benchmark, ExperimentOptions, ExperimentSpec
from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, load_dataset, register_dataset
from medbench.data.readers.volume_csv import read_volume_csv
from medbench.errors import ConfigError, DatasetError, ImageError
from medbench.preprocessing.cache import MANIFEST, REPORT, ImageCache, build_cache, cache_key
from medbench.preprocessing.dataset_cache import benchmark_params, build_benchmark_cache
from medbench.preprocessing.samples import params_from_dict, params_to_dict
from medbench.preprocessing.volume import VolumeParams, preprocess_volume
from medbench.settings import Settings

CLASSES = ("Sphere", "Cube")
SIDE = 28
SUFFIXES = (".nii.gz", ".mha", ".npy")
NAME = "ctdemo_3D_BCE_E4_B2_C0_N2_AugAffineColor_D24_DS602020_1LR3_LF5_Adam"
WINDOW = (-1000.0, 1000.0)


def _volume(rng: np.random.Generator, cube: bool) -> np.ndarray:
    """Noise around -800 (HU-like) with a sphere (radius 4, 200) or a cube (side 12, 800) at a random place."""
    voxels = rng.normal(-800.0, 60.0, (SIDE, SIDE, SIDE)).astype(np.float32)
    half = 6 if cube else 4
    centre = rng.integers(half + 1, SIDE - half - 1, 3)
    if cube:
        z, y, x = (slice(c - half, c + half) for c in centre)
        voxels[z, y, x] += 1600.0
    else:
        grid = np.indices(voxels.shape) - centre[:, None, None, None]
        voxels[(grid**2).sum(axis=0) <= half**2] += 1000.0
    return voxels


def _write(voxels: np.ndarray, path: Path) -> None:
    if path.suffix == ".npy":
        np.save(path, voxels)
        return
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing((1.0, 1.0, 1.5))
    sitk.WriteImage(image, str(path))


def write_volume_dataset(root: Path, count: int = 40, seed: int = 0) -> list[tuple[str, str, bool]]:
    """`count` volumes under root/volumes (the formats in turn) and root/labels.csv; (name, patient, cube) each."""
    rng = np.random.default_rng(seed)
    (root / "volumes").mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        cube = bool(index % 2) if index < 4 else bool(rng.integers(0, 2))
        name = f"scan{index:03d}{SUFFIXES[index % len(SUFFIXES)]}"
        _write(_volume(rng, cube), root / "volumes" / name)
        written.append((name, f"P{index // 2:02d}", cube))
    lines = ["file,patient,Sphere,Cube"] + [f"{name},{patient},{int(not c)},{int(c)}" for name, patient, c in written]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return written


def volume_spec(**changes: object) -> DatasetSpec:
    fields: dict[str, object] = {
        "name": "ctdemo",
        "format": "volumes",
        "root": "ctdemo",
        "train": "labels.csv",
        "classes": CLASSES,
        "image_dir": "volumes",
        "path_column": "file",
        "patient_column": "patient",
        "volume_window": WINDOW,
        **changes,
    }
    return DatasetSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def volume_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the synthetic volume dataset under ctdemo/."""
    data_dir = tmp_path_factory.mktemp("volume-data")
    write_volume_dataset(data_dir / "ctdemo")
    return data_dir


@pytest.fixture
def volume_settings(tmp_path: Path, volume_data: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The volume dataset registered as "ctdemo" (in a copy of the registry) and a fresh project."""
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    register_dataset(volume_spec())
    return Settings(tmp_path, volume_data, tmp_path / "models", tmp_path / "logs", tmp_path / "weights")


# --------------------------------------------------------------------------------------------------
# The dataset format
# --------------------------------------------------------------------------------------------------


def test_a_volume_csv_reads_paths_patients_and_labels(volume_data: Path) -> None:
    root = volume_data / "ctdemo"
    table = read_volume_csv(
        root / "labels.csv", "volumes", "file", CLASSES, dataset_root=root, patient_column="patient"
    )
    assert len(table) == 40 and table["patient_id"].nunique() == 20
    assert table["sample_id"].iloc[0] == "volumes/scan000.nii.gz" and table["sample_id"].iloc[2].endswith(".npy")
    assert all(Path(path).is_file() for path in table["path"]) and table["frontal"].all()
    assert (table["Sphere"] + table["Cube"] == 1.0).all()
    train, test = load_dataset(volume_spec(), volume_data)
    assert test is None and list(train["sample_id"]) == list(table["sample_id"])
    by_pattern = read_volume_csv(
        root / "labels.csv", "volumes", "file", CLASSES, dataset_root=root, patient_pattern=r"scan(\d\d)"
    )
    assert by_pattern["patient_id"].iloc[15] == "01"


def test_a_dicom_series_folder_is_a_volume_and_other_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "volumes" / "series-1").mkdir(parents=True)
    (tmp_path / "volumes" / "a.nii.gz").write_bytes(b"")
    (tmp_path / "volumes" / "notes").write_text("not a folder")
    labels = tmp_path / "labels.csv"

    def read(*rows: str, check: bool = True) -> object:
        labels.write_text("\n".join(["file,Sphere,Cube", *rows]) + "\n")
        return read_volume_csv(labels, "volumes", "file", CLASSES, dataset_root=tmp_path, check_images=check)

    table = read("series-1,1,0", "a.nii.gz,0,1")
    assert list(table["sample_id"]) == ["volumes/series-1", "volumes/a.nii.gz"]
    with pytest.raises(DatasetError) as missing:
        read("a.nii.gz,0,1", "b.mha,1,0")
    assert f"{labels}, row 3, column 'file'" in str(missing.value) and "'volumes/b.mha'" in str(missing.value)
    with pytest.raises(DatasetError, match=r"row 2, column 'file': value 'slice.png' names a 2D image"):
        read("slice.png,1,0", check=False)
    with pytest.raises(DatasetError, match=r"row 3, column 'file': value 'notes' is a file without a volume suffix"):
        read("a.nii.gz,0,1", "notes,1,0")
    with pytest.raises(DatasetError, match=r"row 2, column 'Cube'"):
        read("a.nii.gz,0,2")


def test_a_volume_spec_checks_its_fields_and_has_dimension_3() -> None:
    spec = volume_spec(volume_spacing=[2, 1, 1])
    assert spec.dimension == 3 and spec.volume_spacing == (2.0, 1.0, 1.0) and spec.task_for(2) == "multilabel"
    assert datasets.get_dataset("demo").dimension == 2
    for changes, message in [
        ({"volume_window": (400, -1000)}, "volume_window (400, -1000)"),
        ({"volume_spacing": (1, 1)}, "volume_spacing (1, 1)"),
        ({"volume_resize": "stretch"}, "volume_resize 'stretch'"),
        ({"channels": 3}, "channels 3"),
    ]:
        with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
            volume_spec(**changes)
    with pytest.raises(DatasetError, match="only with format 'volumes'"):
        DatasetSpec(
            name="flat", format="csv", root="x", train="x.csv", classes=CLASSES, path_column="p", volume_window=WINDOW
        )


# --------------------------------------------------------------------------------------------------
# Specs: dimensions must agree
# --------------------------------------------------------------------------------------------------


def test_check_refuses_a_dimension_mismatch_naming_both(volume_settings: Settings) -> None:
    with pytest.raises(ConfigError) as two_d_architecture:
        ExperimentSpec(NAME, "2D.SmallCNN").check()
    assert "is 3D" in str(two_d_architecture.value) and "2D.SmallCNN is 2D" in str(two_d_architecture.value)
    with pytest.raises(ConfigError) as three_d_architecture:
        ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam", "3D.SmallCNN").check()
    assert "is 2D" in str(three_d_architecture.value) and "3D.SmallCNN is 3D" in str(three_d_architecture.value)
    with pytest.raises(ConfigError, match="holds 3D volumes; expected the 3D token"):
        ExperimentSpec(NAME.replace("_3D", ""), "2D.SmallCNN").check()
    with pytest.raises(ConfigError, match="dataset 'demo' .* holds 2D images"):
        ExperimentSpec(NAME.replace("ctdemo", "demo"), "3D.SmallCNN").check()
    with pytest.raises(ConfigError, match="Z8 is below the 16 voxels"):
        ExperimentSpec(NAME.replace("_D24_", "_D24_Z8_"), "3D.SmallCNN").check()
    assert ExperimentSpec(NAME, "3D.SmallCNN").check().name == f"SmallCNN_{NAME}"


# --------------------------------------------------------------------------------------------------
# The 3D cache
# --------------------------------------------------------------------------------------------------


def _volume_paths(data_dir: Path) -> list[str]:
    return sorted(str(path) for path in (data_dir / "ctdemo" / "volumes").iterdir())


def test_benchmark_params_of_a_3d_benchmark_are_volume_params(volume_settings: Settings) -> None:
    register_dataset(volume_spec(volume_spacing=(1.5, 1.0, 1.0), volume_resize="pad_crop"), replace=True)
    params = benchmark_params(Benchmark.from_name(NAME.replace("_D24_", "_D24_Z16_")))
    assert params == VolumeParams((16, 24, 24), (1.5, 1.0, 1.0), WINDOW, "pad_crop")
    assert params_from_dict({"cache": "abc", **params_to_dict(params)}) == params
    with pytest.raises(ConfigError, match="is 2D but dataset 'ctdemo' holds 3D"):
        benchmark_params(Benchmark.from_name(NAME.replace("_3D", "")))


def test_a_volume_cache_holds_preprocess_volume_and_is_reused(volume_data: Path, tmp_path: Path) -> None:
    paths = _volume_paths(volume_data)[:9]
    params = VolumeParams((16, 20, 20), window=WINDOW, resize="resample")
    cache = build_cache(paths, params, tmp_path / "cache", workers=2, progress=False)
    assert cache.image_shape == (16, 20, 20, 1) and cache.summary.computed == 9 and not cache.failed
    volumes = cache.images(cache.rows(paths[::-1]))
    assert volumes.dtype == np.uint8 and volumes.shape == (9, 16, 20, 20, 1)
    for path, volume in zip(paths[::-1], volumes):
        np.testing.assert_array_equal(volume, preprocess_volume(path, params))
    manifest = json.loads((cache.directory / MANIFEST).read_text())
    assert manifest["params"] == {"kind": "volume", **params.to_dict()} and manifest["image_shape"] == [16, 20, 20, 1]
    again = build_cache(paths, params, tmp_path / "cache", workers=1, progress=False)
    assert again.directory == cache.directory and again.summary.cache_reused and again.summary.computed == 0
    assert ImageCache.open(cache.directory).params == params
    keys = {
        cache_key(paths, variant)
        for variant in (
            params,
            VolumeParams((16, 20, 21), window=WINDOW, resize="resample"),
            VolumeParams((16, 20, 20), (1.0, 1.0, 1.0), WINDOW, "resample"),
            VolumeParams((16, 20, 20), window=(-1000.0, 999.0), resize="resample"),
            VolumeParams((16, 20, 20), window=WINDOW),
        )
    }
    assert len(keys) == 5, "every VolumeParams field is part of the key"


def test_a_damaged_volume_shard_is_rebuilt_alone(
    volume_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = _volume_paths(volume_data)[:7]
    params = VolumeParams((12, 12, 12), window=WINDOW, resize="resample")
    cache = build_cache(paths, params, tmp_path / "cache", workers=1, progress=False, shard_size=3)
    expected = cache.images(np.arange(7))
    shard = cache.directory / "shard-00001.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        rebuilt = build_cache(paths, params, tmp_path / "cache", workers=1, progress=False, shard_size=3, verify=True)
    assert "shard-00001.npy" in caplog.text and "checksum" in caplog.text
    assert rebuilt.summary.shards_written == 1 and rebuilt.summary.computed == 3 and rebuilt.summary.shards_reused == 2
    np.testing.assert_array_equal(rebuilt.images(np.arange(7)), expected)


def test_an_unreadable_volume_is_reported_and_refused(volume_data: Path, tmp_path: Path) -> None:
    paths = _volume_paths(volume_data)[:4]
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(Path(paths[0]).read_bytes()[:200])
    sources = [*paths, str(broken)]
    params = VolumeParams((12, 12, 12), window=WINDOW, resize="resample")
    cache = build_cache(sources, params, tmp_path / "cache", workers=1, progress=False)
    report = json.loads((cache.directory / REPORT).read_text())
    assert list(report["failed"]) == [str(broken)] and list(cache.failed) == [str(broken)]
    assert "NIfTI" in report["failed"][str(broken)] or "truncated" in report["failed"][str(broken)]
    with pytest.raises(ImageError, match="broken.nii.gz"):
        cache.rows([str(broken)])
    assert cache.rows(paths).tolist() == [0, 1, 2, 3]
    with pytest.raises(ImageError, match="1 of 5 image"):
        build_cache(sources, params, tmp_path / "cache", workers=1, progress=False, strict=True)


# --------------------------------------------------------------------------------------------------
# The pipeline: 5D batches, seeded 3D augmentation
# --------------------------------------------------------------------------------------------------


def test_volume_batches_are_5d_uint8_and_a_resumed_epoch_sees_the_same_batches(
    volume_settings: Settings,
) -> None:
    from medbench.pipeline.config import PipelineConfig
    from medbench.pipeline.dataset import evaluation_dataset, training_dataset

    benchmark = Benchmark.from_name(NAME.replace("_D24_", "_D16_").replace("_B2_", "_B4_"))
    cache = build_benchmark_cache(benchmark, volume_settings, workers=1, progress=False)
    rows = np.arange(8)
    targets = np.arange(16, dtype=np.float32).reshape(8, 2)
    spec = ExperimentSpec(benchmark, "3D.SmallCNN")
    plain = PipelineConfig.for_spec(spec)
    assert plain.dimension == 3 and plain.spatial_shape == (16, 16, 16) and plain.augmentations == ()
    [(volumes, got_targets, ids)] = list(
        evaluation_dataset(cache, rows, targets, [str(i) for i in rows], PipelineConfig(16, 8, dimension=3))
    )
    assert volumes.dtype == np.uint8 and volumes.shape == (8, 16, 16, 16, 1)
    np.testing.assert_array_equal(volumes.numpy(), cache.images(rows))
    config = PipelineConfig.for_spec(spec, training=True)
    assert config.augmentations == ("affine", "color")

    def epochs(first: int) -> list[tuple[np.ndarray, np.ndarray]]:
        data = training_dataset(cache, rows, targets, config, first_epoch=first, epochs=2)
        return [(images.numpy(), labels.numpy()) for images, labels in data]

    whole, resumed = epochs(0), epochs(1)
    assert len(whole) == 4 and len(resumed) == 2 and whole[0][0].shape == (4, 16, 16, 16, 1)
    for (expected, expected_targets), (got, got_targets) in zip(whole[2:], resumed):
        np.testing.assert_array_equal(expected, got)
        np.testing.assert_array_equal(expected_targets, got_targets)
    order = [int(t[0]) // 2 for _, labels in whole[:2] for t in labels]
    assert not np.array_equal(np.concatenate([whole[0][0], whole[1][0]]), cache.images(order)), "augmented"
    with pytest.raises(ConfigError, match=r"samples of shape \(24, 24, 24\) \(3D\)"):
        training_dataset(cache, rows, targets, PipelineConfig(24, 4, dimension=3))


# --------------------------------------------------------------------------------------------------
# An experiment end to end
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_3d_experiment_trains_evaluates_logs_reevaluates_and_predicts(volume_settings: Settings) -> None:
    from medbench.experiment import Experiment
    from medbench.prediction import predict_images, resolve_run
    from medbench.reevaluation import reevaluate_runs
    from medbench.runs.predictions import read_predictions

    settings = volume_settings
    spec = ExperimentSpec(NAME, "3D.SmallCNN", ExperimentOptions(tensorboard=False))
    entry = Experiment(spec, settings).run()
    run_dir = settings.models_dir / entry["name"] / entry["id"]
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == [f"epoch-{epoch:03d}.keras" for epoch in range(1, 5)]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["benchmark"]["dimension"] == 3 and config["preprocessing"]["kind"] == "volume"
    assert config["preprocessing"]["shape"] == [24, 24, 24] and config["sizes"] == {"train": 24, "val": 8, "test": 8}
    log = json.loads((settings.logs_dir / "unvalidated-experiment-log.json").read_text())
    assert [item["id"] for item in log] == [entry["id"]]
    assert entry["val"]["macro"]["auroc"] > 0.7, entry["val"]["macro"]

    again = reevaluate_runs(settings, [entry["id"]], epochs=True, progress=False)
    assert not again.skipped
    (reevaluated,) = again.entries
    assert reevaluated["val_again"]["macro"]["auroc"] == pytest.approx(entry["val"]["macro"]["auroc"], abs=1e-6)

    ids, _, stored, classes = read_predictions(run_dir / "predictions" / "test.csv")
    paths = [str(settings.data_dir / "ctdemo" / sample) for sample in ids[:5]]
    assert len({Path(path).suffix for path in paths}) > 1, "more than one format"
    frame = predict_images(resolve_run(entry["id"], settings), paths, settings, batch_size=2)
    assert list(frame.columns) == ["image", *classes]
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored[:5], atol=1e-5)
    with pytest.raises(ImageError, match="not-a-volume.png"):
        png = settings.root / "not-a-volume.png"
        png.write_bytes(b"\x89PNG")
        predict_images(resolve_run(entry["id"], settings), [png], settings)


class _Killed(Exception):
    """Stands for the process dying right after an epoch was saved."""


@pytest.mark.slow
def test_a_3d_run_stopped_after_epoch_1_resumes_and_matches_an_uninterrupted_one(
    volume_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from medbench.experiment import Experiment
    from medbench.runs.run_dir import RunDir

    spec = ExperimentSpec(NAME, "3D.SmallCNN", ExperimentOptions(tensorboard=False))
    write_history = RunDir.write_history

    def write_then_die(run_dir: RunDir, history: list[dict]) -> None:
        write_history(run_dir, history)
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "write_history", write_then_die)
        with pytest.raises(_Killed):
            Experiment(spec, volume_settings).run()
    (run_dir,) = (path.parent for path in volume_settings.models_dir.glob("*/*/config.json"))
    assert [row["epoch"] for row in json.loads((run_dir / "history.json").read_text())] == [1]

    resumed = Experiment(spec, volume_settings).run_or_resume()
    assert resumed["id"] == run_dir.name and resumed["epochs_run"] == 4
    reference = replace(volume_settings, models_dir=tmp_path / "reference-models", logs_dir=tmp_path / "reference-logs")
    uninterrupted = Experiment(spec, reference).run()
    history = json.loads((run_dir / "history.json").read_text())
    expected = json.loads(
        (reference.models_dir / uninterrupted["name"] / uninterrupted["id"] / "history.json").read_text()
    )
    for got, want in zip(history, expected, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4), got["epoch"]
        assert got["val_mean_auroc"] == pytest.approx(want["val_mean_auroc"], abs=1e-4), got["epoch"]

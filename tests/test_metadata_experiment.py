"""Metadata in experiments: label-table columns (age, sex, view) fed to the head, standardized with training-split
statistics only, recorded in config.json, and used: on data whose Edema label is the patient's age and not in
the image, the metadata model finds it and the image-only model cannot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.data import datasets
from medbench.data.datasets import register_dataset
from medbench.errors import ConfigError, DatasetError
from medbench.settings import Settings

NAME = "age-demo_BCE_E4_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
FEATURES = ("age", "age:missing", "sex=Female", "sex=Male", "frontal")


@pytest.fixture(scope="module")
def age_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data (120 training patients, 64 px) whose Edema label is "older than the median", drawn over images
    that show nothing of it; a few ages are blanked to exercise the missing-value indicator."""
    from medbench.demo import write_demo_dataset

    data_dir = tmp_path_factory.mktemp("data")
    root = write_demo_dataset(data_dir / "age-demo", n_train_patients=120, n_valid_patients=30, seed=5, size=(64, 64))
    rng = np.random.default_rng(0)
    for name in ("train.csv", "valid.csv"):
        path = root / "CheXpert-v1.0-small" / name
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        ages = rng.integers(20, 90, len(table))
        table["Age"] = ages.astype(str)
        table["Edema"] = np.where(ages > 55, "1.0", "0.0")
        if name == "train.csv":
            table.loc[::17, "Age"] = ""
        table.to_csv(path, index=False)
    return data_dir


@pytest.fixture
def age_settings(tmp_path: Path, age_data: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    register_dataset(replace(datasets.get_dataset("demo"), name="age-demo", root="age-demo"))
    return Settings(tmp_path, age_data, tmp_path / "models", tmp_path / "logs", tmp_path / "weights")


def _spec(**options: object) -> ExperimentSpec:
    return ExperimentSpec(NAME, options=ExperimentOptions(tensorboard=False, **options))


def test_the_encoding_is_fitted_on_the_training_split_only(age_settings: Settings) -> None:
    from medbench.data.datasets import load_dataset
    from medbench.experiment_data import prepare_data

    data = prepare_data(_spec(metadata=("age", "sex", "frontal")), age_settings.data_dir)
    assert data.metadata is not None and data.metadata.feature_names == FEATURES and data.n_metadata == 5
    train, _ = load_dataset(datasets.get_dataset("age-demo"), age_settings.data_dir)
    ages = train.set_index("sample_id").loc[list(data.train.sample_ids), "age"].to_numpy(dtype=float)
    assert data.metadata.means["age"] == pytest.approx(np.nanmean(ages))
    assert data.metadata.stds["age"] == pytest.approx(np.nanstd(ages))
    everything = train["age"].to_numpy(dtype=float)
    assert data.metadata.means["age"] != pytest.approx(np.nanmean(everything))
    for split in (data.train, data.val, data.test):
        assert split.metadata is not None and split.metadata.shape == (len(split), 5)
        assert np.isfinite(split.metadata).all()
    missing = data.train.metadata[:, 1] == 1.0
    assert missing.any() and (data.train.metadata[missing, 0] == 0.0).all()
    assert not data.test.metadata[:, 1].any()


def test_label_columns_and_unknown_columns_are_refused(age_settings: Settings) -> None:
    from medbench.experiment_data import prepare_data

    with pytest.raises(ConfigError, match=r"metadata columns \['Edema'\] .* would leak the targets"):
        prepare_data(_spec(metadata=("age", "Edema")), age_settings.data_dir)
    with pytest.raises(DatasetError, match=r"metadata columns \['weight'\] are not in the label table.*'age'"):
        prepare_data(_spec(metadata=("weight",)), age_settings.data_dir)


@pytest.mark.slow
def test_metadata_reaches_the_head_and_predicts_what_the_image_cannot(age_settings: Settings) -> None:
    from medbench.architectures.standardization import load_run_model
    from medbench.experiment import Experiment
    from medbench.prediction import predict_images, resolve_run
    from medbench.reevaluation import reevaluate_runs

    with_metadata = Experiment(_spec(metadata=("age", "sex", "frontal")), age_settings).run()
    image_only = Experiment(_spec(), age_settings).run()
    edema = [entry["val"]["per_class"]["Edema"]["auroc"] for entry in (with_metadata, image_only)]
    assert edema[0] > 0.9 and edema[1] < 0.75, edema

    run_dir = age_settings.models_dir / with_metadata["name"] / with_metadata["id"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["options"]["metadata"] == ["age", "sex", "frontal"]
    assert config["metadata"]["columns"] == ["age", "sex", "frontal"] and "age" in config["metadata"]["means"]
    model = load_run_model(run_dir / "model.keras", "unit", 1)
    assert [tuple(tensor.shape) for tensor in model.inputs] == [(None, 32, 32, 1), (None, 5)]

    again = reevaluate_runs(age_settings, [with_metadata["id"]], progress=False)
    assert not again.skipped
    assert again.entries[0]["val_again"]["macro"]["auroc"] == pytest.approx(with_metadata["val"]["macro"]["auroc"])

    image = next((age_settings.data_dir / "age-demo").rglob("*.jpg"))
    with pytest.raises(ConfigError, match=r"takes metadata \(age, sex, frontal\) besides the image"):
        predict_images(resolve_run(with_metadata["id"], age_settings), [image], age_settings)

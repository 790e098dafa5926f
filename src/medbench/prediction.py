"""Prediction: a saved run's model applied to image files, one row of class probabilities per image."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from medbench.data.images import unreadable_images_error, verify_images
from medbench.data.pipeline import evaluation_dataset, predict_with_ids
from medbench.errors import ConfigError
from medbench.reevaluation import SavedRun, find_runs
from medbench.settings import Settings


def resolve_run(run: str | Path, settings: Settings) -> SavedRun:
    """A run by folder (holding config.json) or by run id."""
    folder = Path(run)
    if (folder / "config.json").is_file():
        return SavedRun(folder, json.loads((folder / "config.json").read_text(encoding="utf-8")))
    return find_runs(settings, [str(run)])[0]


def predict_images(
    run: SavedRun, paths: Sequence[str | Path], settings: Settings, *, batch_size: int = 32
) -> pd.DataFrame:
    """Probabilities of the run's classes for each image, preprocessed exactly as in its evaluation."""
    if not paths:
        raise ConfigError("no images given to predict")
    files = [str(Path(path).resolve()) for path in paths]
    problems = verify_images(files)
    if problems:
        raise unreadable_images_error(problems)
    model_path = run.run_dir / "model.keras"
    if not model_path.is_file():
        raise ConfigError(f"{run.run_dir}: no model.keras (the run did not finish)")
    experiment = run.experiment(settings)
    config = replace(experiment.pipeline_config(training=False), batch_size=batch_size)
    classes = list(run.config["classes"])
    dataset = evaluation_dataset(files, np.zeros((len(files), len(classes))), files, config)
    ids, predictions, _ = predict_with_ids(keras.models.load_model(model_path, compile=False), dataset)
    frame = pd.DataFrame(predictions, columns=classes)
    frame.insert(0, "image", ids)
    return frame

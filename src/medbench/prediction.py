"""Prediction: a saved run's model applied to image files, one row of class probabilities per image."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from medbench.data.images import unreadable_images_error, verify_images
from medbench.data.pipeline import standardize_images
from medbench.errors import ConfigError
from medbench.preprocessing.params import PreprocessParams, preprocess_image
from medbench.reevaluation import SavedRun, find_runs
from medbench.settings import Settings


def resolve_run(run: str | Path, settings: Settings) -> SavedRun:
    """A run by folder (holding config.json) or by run id (pulled from MEDBENCH_GCS_BUCKET when not local)."""
    folder = Path(run)
    if (folder / "config.json").is_file():
        return SavedRun(folder, json.loads((folder / "config.json").read_text(encoding="utf-8")))
    return find_runs(settings, [str(run)])[0]


def predict_images(
    run: SavedRun, paths: Sequence[str | Path], settings: Settings, *, batch_size: int = 32
) -> pd.DataFrame:
    """Probabilities of the run's classes for each image, preprocessed exactly as its cache was.

    The pixels come from the same `preprocess_image` the preprocessing cache uses, with the run's
    stored parameters, so a prediction here equals the run's stored prediction for that image.
    """
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
    stored = run.config.get("preprocessing")
    params = PreprocessParams.from_dict(stored) if stored else experiment.preprocess_params()
    config = experiment.pipeline_config(training=False)
    model = keras.models.load_model(model_path, compile=False)
    predictions = []
    for start in tqdm(range(0, len(files), batch_size), desc="predict", unit="batch", leave=False):
        images = np.stack([preprocess_image(path, params) for path in files[start : start + batch_size]])
        predictions.append(np.asarray(model.predict_on_batch(standardize_images(images, config)), dtype=np.float64))
    frame = pd.DataFrame(np.concatenate(predictions), columns=list(run.config["classes"]))
    frame.insert(0, "image", files)
    return frame

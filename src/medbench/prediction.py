"""Prediction: a saved run's model applied to image files (or, for a 3D run, volume files and DICOM series folders),
one row of class probabilities per file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from medbench.architectures.standardization import load_run_model
from medbench.data.images import unreadable_images_error, verify_images
from medbench.errors import ConfigError, ImageError
from medbench.preprocessing.dataset_cache import benchmark_params
from medbench.preprocessing.samples import SampleParams, params_from_dict, preprocess_sample
from medbench.preprocessing.volume import VolumeParams
from medbench.runs.run_dir import RunDir
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.storage import find_or_pull_runs


def resolve_run(run: str | Path, settings: Settings) -> SavedRun:
    """A run by folder (holding config.json) or by run id (pulled from MEDBENCH_GCS_BUCKET when not local)."""
    folder = RunDir(Path(run))
    if folder.has_config():
        return SavedRun.load(folder)
    return find_or_pull_runs(settings, [str(run)])[0]


def predict_images(
    run: SavedRun, paths: Sequence[str | Path], settings: Settings, *, batch_size: int = 32
) -> pd.DataFrame:
    """Probabilities of the run's classes for each image, preprocessed exactly as its cache was.

    The pixels come from the same `preprocess_image` the preprocessing cache uses (`preprocess_volume` for a
    3D run), with the run's stored parameters, and go into the model as uint8 (it standardizes them itself),
    so a prediction here equals the run's stored prediction for that image.
    """
    if not paths:
        raise ConfigError("no images given to predict")
    files = [str(Path(path).absolute()) for path in paths]
    stored = run.config.get("preprocessing")
    params = params_from_dict(stored) if stored else benchmark_params(run.spec.benchmark)
    volumes = _volumes(files, params) if isinstance(params, VolumeParams) else None
    if volumes is None:
        problems = verify_images(files)
        if problems:
            raise unreadable_images_error(problems)
    if not run.run_dir.model_path.is_file():
        raise ConfigError(f"{run.run_dir.path}: no model.keras (the run did not finish)")
    if run.config.get("metadata"):
        columns = run.config["metadata"]["columns"]
        raise ConfigError(
            f"run {run.run_id} takes metadata ({', '.join(columns)}) besides the image; predicting image files "
            "alone cannot supply it: re-evaluate the run on its dataset (medbench reevaluate) instead"
        )
    model = load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels)
    predictions = []
    for start in tqdm(range(0, len(files), batch_size), desc="predict", unit="batch", leave=False):
        batch = files[start : start + batch_size]
        samples = volumes[start : start + batch_size] if volumes is not None else _images(batch, params)
        predictions.append(np.asarray(model.predict_on_batch(np.stack(samples)), dtype=np.float64))
    frame = pd.DataFrame(np.concatenate(predictions), columns=list(run.classes))
    frame.insert(0, "image", files)
    return frame


def _images(files: Sequence[str], params: SampleParams) -> list[np.ndarray]:
    return [preprocess_sample(path, params) for path in files]


def _volumes(files: Sequence[str], params: VolumeParams) -> list[np.ndarray]:
    """Every volume preprocessed (uint8, a few MB each at most), so that one error lists all unreadable ones
    before the model is loaded (reading a volume is what checks it)."""
    volumes, problems = [], []
    for path in tqdm(files, desc="preprocess", unit="volume", leave=False, disable=len(files) < 8):
        try:
            volumes.append(preprocess_sample(path, params))
        except ImageError as error:
            problems.append((path, str(error).removeprefix(f"{path}: ")))
    if problems:
        raise unreadable_images_error(problems)
    return volumes

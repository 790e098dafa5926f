"""Prediction: a saved run's model applied to image files (or, for a 3D run, volume files and DICOM series folders),
one row of class probabilities per file.

The files are given as paths or, like TIML's predict, as a table whose first column names the images in a
folder (`images_of_table`); `write_numpy_predictions` writes TIML's binary outputs beside the CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from medbench.architectures.standardization import load_run_model
from medbench.atomic import write_atomic
from medbench.data.images import unreadable_images_error, verify_images
from medbench.data.readers.cells import file_rows
from medbench.data.readers.label_csv import read_csv
from medbench.data.readers.table import DirectoryListing
from medbench.errors import ConfigError, DatasetError, ImageError
from medbench.preprocessing.dataset_cache import benchmark_params
from medbench.preprocessing.samples import SampleParams, params_from_dict, preprocess_sample
from medbench.preprocessing.volume import VolumeParams
from medbench.runs.run_dir import RunDir
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.storage import find_or_pull_runs

NUMPY_SUFFIX = "-0000000000.npy"
"""TIML's per-sample file name after the image name (its activation cache's format, so it reads them back)."""


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


def images_of_table(table: str | Path, image_dir: str | Path) -> tuple[list[str], list[Path]]:
    """(image names, files) of a table whose first column names images in `image_dir` (TIML's test dataframe).

    The first column is usually ``image_name`` (the ISIC layout); other columns (ground truth) are ignored. A
    name without its suffix matches the one image file in `image_dir` with that stem. A name with no file is
    an error naming its row, all at once.
    """
    path, folder = Path(table), Path(image_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: is not a folder; expected the folder holding the images the table names")
    frame = read_csv(path)
    rows = file_rows(frame, path)
    column = frame.columns[0]
    listing = DirectoryListing()
    names, files, missing = [], [], []
    for row, name in zip(rows, frame[column].str.strip()):
        if not name:
            raise DatasetError("is empty; expected an image name", file=path, row=int(row), column=column)
        if name in listing.names(str(folder)):
            files.append(folder / name)
        elif len(candidates := listing.stems(str(folder)).get(name, ())) == 1:
            files.append(folder / candidates[0])
        else:
            missing.append(f"row {row}: {name!r}")
            continue
        names.append(name)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(
            f"names images with no file in {folder} ({shown}); expected each name to be a file there, "
            "with or without its suffix",
            file=path,
            column=column,
        )
    return names, files


def write_numpy_predictions(csv_path: str | Path, names: Sequence[str], probabilities: np.ndarray) -> tuple[Path, Path]:
    """TIML's `--generate-numpy` outputs beside `csv_path`: ``<stem>.npy`` (n, classes) and ``<stem>/`` with one
    ``<image name>-0000000000.npy`` vector per image; returns both paths."""
    csv_path = Path(csv_path)
    values = np.asarray(probabilities, dtype=np.float32)
    stacked, folder = csv_path.with_suffix(".npy"), csv_path.with_suffix("")
    files = [Path(name).name for name in names]
    if len(set(files)) != len(files):
        raise ConfigError("two images share a file name; expected distinct names for the per-image .npy files")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(stacked, lambda handle: np.save(handle, values))
    for name, row in zip(files, values):
        target = folder / f"{name}{NUMPY_SUFFIX}"
        write_atomic(target, lambda handle, row=row: np.save(handle, row))
    return stacked, folder

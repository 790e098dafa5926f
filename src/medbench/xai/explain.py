"""`medbench explain`: a saved run's model explained on image files, its maps written and checked against boxes.

The images go through exactly the run's preprocessing (`preprocess_sample` with its stored parameters,
as `medbench predict` does), so the maps are of what the model saw. Per image, method and class it
writes the raw map (`.npy`, float32, the preprocessed image's size) and three PNGs (greyscale map,
colour heatmap, overlay), an `explanations.csv` listing them, and a `contact_sheet.png` of the overlays
when several images are given. With a box file (NIH's `BBox_List_2017.csv` format, the demo writes one)
each map of a class with a box in its image is scored: the pointing game and the share of the map's mass
inside the box (`localization.csv` per map, `localization_summary.csv` per method and class).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from medbench.architectures.standardization import load_run_model
from medbench.atomic import write_atomic, write_bytes_atomic
from medbench.data.images import unreadable_images_error
from medbench.errors import ConfigError, ImageError
from medbench.preprocessing.dataset_cache import benchmark_params
from medbench.preprocessing.params import PreprocessParams, decode_for
from medbench.preprocessing.samples import SampleParams, params_from_dict, preprocess_sample
from medbench.runs.saved_run import SavedRun
from medbench.xai.localization import Box, BoxScore, box_mask, boxes_of, mass_share, pointing_hit, read_boxes, summarise
from medbench.xai.maps import class_indices
from medbench.xai.methods import MethodConfig, explain_maps
from medbench.xai.names import parse_methods
from medbench.xai.render import contact_sheet, heatmap_image, map_image, overlay_image, plain_image
from medbench.xai.view import ModelView

logger = logging.getLogger(__name__)

INDEX_FILE = "explanations.csv"
SHEET_FILE = "contact_sheet.png"
SCORES_FILE = "localization.csv"
SUMMARY_FILE = "localization_summary.csv"
PICTURES = ("map", "heatmap", "overlay")
"""The PNGs written beside each map's .npy: `<method>_<class>_<picture>.png`."""


@dataclass(frozen=True)
class ExplainOptions:
    """What to explain: methods (names, repeated or comma-separated), classes (names or indices; none: each
    image's top predicted class), the target layer, a box file to check the maps against, the methods' settings."""

    methods: tuple[str, ...] = ("gradcam",)
    classes: tuple[str, ...] = ()
    layer: str | None = None
    boxes: Path | None = None
    config: MethodConfig = field(default_factory=MethodConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", parse_methods(self.methods))
        object.__setattr__(self, "classes", tuple(str(value) for value in self.classes))


@dataclass(frozen=True)
class ExplainReport:
    """What `explain_run` wrote: the folder, one index row per map, the box check's summary (empty without boxes)."""

    out_dir: Path
    index: pd.DataFrame
    localization: list[dict[str, Any]]
    sheet: Path | None

    def text(self) -> str:
        """A few lines for the terminal: what was written, and the box check per method and class."""
        lines = [f"{len(self.index)} map(s) of {self.index['image'].nunique()} image(s) written to {self.out_dir}"]
        if self.sheet is not None:
            lines.append(f"contact sheet {self.sheet}")
        if self.localization:
            lines.append(f"{'method':22s} {'class':28s} {'n':>4s} {'hit rate':>9s} {'mass share':>11s}")
            for row in self.localization:
                rate, share = row["hit_rate"], row["mass_share"]
                lines.append(f"{row['method']:22s} {row['class']:28s} {row['n']:4d} {rate:9.3f} {share:11.3f}")
        return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "class"


def _sample_params(run: SavedRun) -> SampleParams:
    stored = run.config.get("preprocessing")
    return params_from_dict(stored) if stored else benchmark_params(run.spec.benchmark)


def _read_images(files: Sequence[str], params: SampleParams) -> np.ndarray:
    samples, problems = [], []
    for path in files:
        try:
            samples.append(preprocess_sample(path, params))
        except ImageError as error:
            problems.append((path, str(error).removeprefix(f"{path}: ")))
    if problems:
        raise unreadable_images_error(problems)
    return np.stack(samples)


def box_frame(path: str, params: PreprocessParams) -> tuple[float, float, float, float]:
    """(left, top, scale x, scale y) taking a box in the file's pixels to the preprocessed image's pixels."""
    decoded = decode_for(path, params.channels)
    top, left, height, width = 0, 0, decoded.shape[0], decoded.shape[1]
    if params.crop:
        from medbench.preprocessing.crop import lung_field_box

        top, left, height, width = lung_field_box(decoded)
    return float(left), float(top), params.image_size / width, params.image_size / height


def _run_model(run: SavedRun, layer: str | None) -> ModelView:
    if not run.run_dir.model_path.is_file():
        raise ConfigError(f"{run.run_dir.path}: no model.keras (the run did not finish)")
    if run.config.get("metadata"):
        columns = ", ".join(run.config["metadata"]["columns"])
        raise ConfigError(
            f"run {run.run_id} takes metadata ({columns}) besides the image; explaining image files alone cannot "
            "supply it: expected a run trained on images only"
        )
    return ModelView(load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels), layer)


def _write_png(path: Path, picture: Image.Image) -> None:
    write_atomic(path, lambda stream: picture.save(stream, format="PNG"))


def explain_run(
    run: SavedRun, paths: Sequence[str | Path], out_dir: str | Path, options: ExplainOptions | None = None
) -> ExplainReport:
    """Explain `run`'s model on the image files `paths` with every method and class of `options`; write to `out_dir`."""
    options = options or ExplainOptions()
    if not paths:
        raise ConfigError("no images given to explain")
    files = [str(Path(path).absolute()) for path in paths]
    params = _sample_params(run)
    boxes = read_boxes(options.boxes) if options.boxes is not None else None
    if boxes is not None and not isinstance(params, PreprocessParams):
        raise ConfigError(f"--boxes: run {run.run_id} takes volumes; expected a 2D run (boxes are image rectangles)")
    view = _run_model(run, options.layer)
    images = _read_images(files, params)
    scores, outputs = view.predict(images)
    requested = list(options.classes) or None
    indices = class_indices(requested, len(images), view.n_classes, class_names=run.classes, outputs=outputs)
    frames = {path: box_frame(path, params) for path in files} if boxes is not None else {}
    out = Path(out_dir)
    folders = [f"{number:03d}_{_slug(Path(path).stem)}" for number, path in enumerate(files)]
    rows: list[dict[str, Any]] = []
    checks: list[BoxScore] = []
    sheet_rows: list[list[tuple[str, Image.Image]]] = [[("image", plain_image(image))] for image in images]
    for method in options.methods:
        logger.info("explaining %d image(s) with %s", len(images), method)
        maps = explain_maps(view, images, method, indices, config=options.config)
        for number, (path, folder) in enumerate(zip(files, folders)):
            for slot, class_number in enumerate(indices[number]):
                name = run.classes[class_number]
                stem = f"{method}_{_slug(name)}"
                saliency = maps[number, slot]
                written = {"npy": f"{folder}/{stem}.npy"}
                write_atomic(out / written["npy"], lambda stream, array=saliency: np.save(stream, array))
                pictures = (map_image(saliency), heatmap_image(saliency), overlay_image(images[number], saliency))
                for picture_name, picture in zip(PICTURES, pictures):
                    written[picture_name] = f"{folder}/{stem}_{picture_name}.png"
                    _write_png(out / written[picture_name], picture)
                sheet_rows[number].append((f"{method} {name}", pictures[2]))
                row = {"image": path, "method": method, "class": name, "class_index": int(class_number)}
                row |= {"score": float(scores[number, class_number]), "output": float(outputs[number, class_number])}
                if boxes is not None and (found := boxes_of(boxes, path, name)):
                    check = _check(path, method, name, saliency, found, frames[path])
                    checks.append(check)
                    row |= {"hit": check.hit, "mass_share": check.mass}
                rows.append(row | written)
    index = pd.DataFrame(rows)
    write_bytes_atomic(out / INDEX_FILE, index.to_csv(index=False, float_format="%.6g").encode("utf-8"))
    sheet = None
    if len(files) > 1:
        sheet = out / SHEET_FILE
        _write_png(sheet, contact_sheet(sheet_rows))
    summary = summarise(checks)
    if boxes is not None:
        per_map = pd.DataFrame(
            [check.__dict__ for check in checks], columns=["image", "method", "label", "hit", "mass"]
        )
        write_bytes_atomic(out / SCORES_FILE, per_map.to_csv(index=False, float_format="%.6g").encode("utf-8"))
        table = pd.DataFrame(summary, columns=["method", "class", "n", "hits", "hit_rate", "mass_share"])
        write_bytes_atomic(out / SUMMARY_FILE, table.to_csv(index=False, float_format="%.6g").encode("utf-8"))
        if not checks:
            logger.warning("no box in %s is of an explained class in the given images", options.boxes)
    return ExplainReport(out, index, summary, sheet)


def _check(
    path: str, method: str, label: str, saliency: np.ndarray, found: Sequence[Box], frame: tuple[float, ...]
) -> BoxScore:
    """The pointing game and mass share of one map against its class's boxes, moved into the model's image."""
    moved = [box.moved(*frame) for box in found]
    mask = box_mask(moved, saliency.shape)
    return BoxScore(path, method, label, pointing_hit(saliency, mask), mass_share(saliency, mask))

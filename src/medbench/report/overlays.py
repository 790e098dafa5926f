"""Grad-CAM overlays of a few validation images for a run page, computed with `medbench.xai`.

The images are true positives of the run's top classes: the classes with the most validation images
that are labelled positive and scored at or above the class's validation threshold (ties: the higher
AUROC), at most `MAX_CLASSES`, and per class the `PER_CLASS` such images with the highest scores. Each
image goes through the run's own preprocessing, as `medbench explain` does. A run whose model cannot
be explained (no model.keras, a metadata input, a backbone without a feature map, no images) gets no
overlays and the reason instead: the rest of its report does not depend on them.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from medbench.report.evidence import RunEvidence

logger = logging.getLogger(__name__)

__all__ = ["Overlay", "Overlays", "gradcam_overlays"]

MAX_CLASSES = 3
PER_CLASS = 2
SHOWN_PIXELS = 192
"""Side of each picture in the report (small models see 32-64 px images; they are scaled up)."""


@dataclass(frozen=True)
class Overlay:
    """One explained image: its id, class, score, and the PNGs of the image and of the Grad-CAM overlay."""

    sample_id: str
    class_name: str
    score: float
    image_png: bytes
    overlay_png: bytes
    empty: bool = False
    """True when the map is zero everywhere (Grad-CAM found no positive evidence)."""


@dataclass(frozen=True)
class Overlays:
    """The overlays of a run, or none and the reason (`note`)."""

    items: tuple[Overlay, ...] = ()
    note: str | None = None


def _choices(evidence: RunEvidence) -> list[tuple[int, int]]:
    """(row in the validation split, class index) of the images to explain."""
    val = evidence.splits["val"]
    ranked = []
    for column, name in enumerate(evidence.classes):
        threshold = evidence.thresholds[name]["value"]
        hits = np.flatnonzero((val.targets[:, column] == 1.0) & (val.scores[:, column] >= threshold))
        hits = np.asarray([row for row in hits if val.ids[row] in evidence.image_files], dtype=np.int64)
        auroc = val.summary["per_class"][name].get("auroc") or 0.0
        if hits.size:
            best = hits[np.argsort(-val.scores[hits, column], kind="stable")][:PER_CLASS]
            ranked.append((-hits.size, -auroc, column, best))
    ranked.sort(key=lambda item: item[:3])
    return [(int(row), column) for _, _, column, rows in ranked[:MAX_CLASSES] for row in rows]


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").resize((SHOWN_PIXELS, SHOWN_PIXELS), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def _explain(evidence: RunEvidence, chosen: list[tuple[int, int]]) -> tuple[Overlay, ...]:
    """Grad-CAM of the chosen images (imports TensorFlow)."""
    from medbench.architectures.standardization import load_run_model
    from medbench.preprocessing.dataset_cache import benchmark_params
    from medbench.preprocessing.samples import params_from_dict, preprocess_sample
    from medbench.xai.methods import explain_maps
    from medbench.xai.render import overlay_image, plain_image
    from medbench.xai.view import ModelView

    run, val = evidence.run, evidence.splits["val"]
    stored = run.config.get("preprocessing")
    params = params_from_dict(stored) if stored else benchmark_params(run.spec.benchmark)
    images = np.stack([preprocess_sample(evidence.image_files[val.ids[row]], params) for row, _ in chosen])
    view = ModelView(load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels))
    indices = np.asarray([[column] for _, column in chosen], dtype=np.int64)
    maps = explain_maps(view, images, "gradcam", indices, class_names=run.classes)
    return tuple(
        Overlay(
            val.ids[row],
            evidence.classes[column],
            float(val.scores[row, column]),
            _png(plain_image(images[number])),
            _png(overlay_image(images[number], maps[number, 0])),
            not bool(np.any(maps[number, 0] > 0)),
        )
        for number, (row, column) in enumerate(chosen)
    )


def gradcam_overlays(evidence: RunEvidence) -> Overlays:
    """The Grad-CAM overlays of `evidence`'s run, or the reason there are none."""
    run = evidence.run
    if not run.run_dir.model_path.is_file():
        return Overlays(note=f"No Grad-CAM overlays: {run.run_dir.path} has no model.keras.")
    if run.config.get("metadata"):
        return Overlays(note="No Grad-CAM overlays: the model takes metadata besides the image.")
    if not evidence.image_files:
        return Overlays(note="No Grad-CAM overlays: the run's dataset (its image files) is not available here.")
    chosen = _choices(evidence)
    if not chosen:
        return Overlays(note="No Grad-CAM overlays: no validation image is a true positive at its threshold.")
    try:
        items = _explain(evidence, chosen)
    except Exception as error:  # any model or image the explanation cannot handle: the rest of the report stands
        logger.warning("run %s: no Grad-CAM overlays (%s: %s)", run.run_id, type(error).__name__, error)
        logger.debug("Grad-CAM failed", exc_info=True)
        return Overlays(note=f"No Grad-CAM overlays: {type(error).__name__}: {str(error)[:300]}")
    logger.info("run %s: Grad-CAM of %d validation image(s)", run.run_id, len(items))
    return Overlays(items)

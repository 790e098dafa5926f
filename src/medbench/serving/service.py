"""`RunService`: one saved run, loaded once per worker, answering what the routes ask.

An upload goes through exactly the run's preprocessing (`preprocess_sample` with the run's stored
parameters, from a private temporary file named by the server, never by the client), so a served
prediction equals `medbench predict` for the same file. Thresholds per class are chosen on the run's
validation predictions (Youden's J), never on test.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medbench.errors import ConfigError
from medbench.runs.saved_run import SavedRun
from medbench.serving.uploads import Upload

__all__ = ["RunService"]

logger = logging.getLogger(__name__)


@dataclass
class RunService:
    """The run, its model and what the answers need (built by `load`, in a worker thread at startup)."""

    run: SavedRun
    model: Any
    params: Any
    thresholds: dict[str, float]
    info: dict[str, Any]
    single_label: bool
    views: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, run: SavedRun) -> RunService:
        from importlib import metadata

        from medbench.architectures.standardization import load_run_model
        from medbench.metrics.thresholds import choose_thresholds
        from medbench.preprocessing.dataset_cache import benchmark_params
        from medbench.preprocessing.samples import params_from_dict
        from medbench.preprocessing.volume import VolumeParams

        if run.kind != "run" or not run.run_dir.model_path.is_file():
            raise ConfigError(f"run {run.run_id}: no model.keras to serve (an ensemble, or a run that did not finish)")
        if run.config.get("metadata"):
            raise ConfigError(
                f"run {run.run_id} takes metadata besides the image; a served image alone cannot supply it"
            )
        stored = run.config.get("preprocessing")
        params = params_from_dict(stored) if stored else benchmark_params(run.spec.benchmark)
        if isinstance(params, VolumeParams):
            raise ConfigError(f"run {run.run_id} takes 3D volumes; the server takes 2D images (PNG, JPEG, DICOM)")
        model = load_run_model(run.run_dir.model_path, run.standardize_mode, run.image_channels)
        classes = run.classes
        single_label = run.config.get("task") == "multiclass"
        thresholds = {name: 1.0 / len(classes) for name in classes} if single_label else {}
        if not single_label:
            _, targets, scores, _ = run.run_dir.read_predictions("val")
            for name, point in choose_thresholds(targets, scores, classes).items():
                thresholds[name] = float(point.threshold) if not isinstance(point, str) else 0.5
        result = run.run_dir.read_result()
        spec = run.spec
        info = {
            "run_id": run.run_id,
            "experiment": run.name,
            "architecture": spec.architecture,
            "benchmark": spec.benchmark.name,
            "task": run.config.get("task", "multilabel"),
            "classes": list(classes),
            "input_size": [params.image_size, params.image_size, params.channels],
            "val_mean_auroc": ((result.get("val") or {}).get("macro") or {}).get("auroc"),
            "test_mean_auroc": ((result.get("test") or {}).get("macro") or {}).get("auroc"),
            "thresholds": thresholds,
            "medbench_version": metadata.version("medbench"),
        }
        logger.info("serving run %s (%s)", run.run_id, run.name)
        return cls(run, model, params, thresholds, info, single_label)

    def image(self, upload: Upload) -> np.ndarray:
        """The uint8 pixels the model takes for `upload` (ImageError for a file that does not decode)."""
        from medbench.preprocessing.samples import preprocess_sample

        handle, path = tempfile.mkstemp(prefix="medbench-upload-", suffix=upload.suffix)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(upload.data)
            return preprocess_sample(path, self.params)
        finally:
            os.unlink(path)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) of a uint8 batch (called in a worker thread by the batcher)."""
        return np.asarray(self.model.predict_on_batch(images), dtype=np.float64)

    def layers(self) -> list[str]:
        """The backbone's feature-map layers an explanation may name."""
        from medbench.xai.view import ModelView, spatial_layers

        if "" not in self.views:
            self.views[""] = ModelView(self.model, None)
        return spatial_layers(self.views[""].parts.backbone)

    def explain(self, image: np.ndarray, method: str, layer: str | None, target: str | None) -> dict[str, Any]:
        """TIML's explain answer: the method, layer, class and three base64 PNGs (grey map, heatmap, overlay)."""
        from medbench.xai.methods import explain_maps
        from medbench.xai.render import heatmap_image, map_image, overlay_image
        from medbench.xai.view import ModelView

        key = layer or ""
        if key not in self.views:
            self.views[key] = ModelView(self.model, layer)
        view = self.views[key]
        scores = self.predict(image[np.newaxis])[0]
        index = int(np.argmax(scores)) if target is None else self.run.classes.index(target)
        maps = explain_maps(view, image[np.newaxis], method, np.asarray([[index]]), class_names=self.run.classes)
        saliency = maps[0, 0]
        return {
            "method": method,
            "layer": layer or "auto",
            "class": self.run.classes[index],
            "probability": float(scores[index]),
            "grey": _base64_png(map_image(saliency)),
            "heatmap": _base64_png(heatmap_image(saliency)),
            "comp": _base64_png(overlay_image(image, saliency)),
        }


def _base64_png(picture: Any) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")

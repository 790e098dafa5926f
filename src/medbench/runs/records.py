"""The two records a run leaves: its config.json (what it was made from) and its log entry (what it achieved).

Pure functions of their inputs; `Experiment` writes them through `RunDir` and the log store.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import get_dataset
from medbench.data.label_policy import label_counts
from medbench.experiment_data import ExperimentData
from medbench.losses.class_weights import ClassWeights
from medbench.preprocessing.cache import ImageCache
from medbench.preprocessing.samples import params_to_dict
from medbench.runs.provenance import environment_versions, git_commit
from medbench.runs.run_dir import RunDir

TRAIN_KEYS = ("loss", "masked_auc", "learning_rate")
"""The training metrics of the best epoch that the log entry repeats."""


def run_config(
    run_id: str,
    spec: ExperimentSpec,
    data: ExperimentData,
    class_weights: ClassWeights | None,
    cache: ImageCache,
    root: Path,
) -> dict[str, Any]:
    """config.json: the spec, the data it met (sizes, label counts, skipped images), the pixels and provenance."""
    positives, negatives, masked = label_counts(data.train.targets)
    preset = spec.benchmark.uncertainty_preset
    return {
        "id": run_id,
        "name": spec.name,
        **spec.to_dict(),
        "dataset_spec": get_dataset(spec.benchmark.dataset).to_dict(),
        "classes": list(data.classes),
        "task": data.task,
        "seed": spec.benchmark.seed,
        "uncertainty_preset": asdict(preset) if preset else None,
        "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "train_label_counts": {
            name: {"pos": int(p), "neg": int(n), "masked": int(m)}
            for name, p, n, m in zip(data.classes, positives, negatives, masked)
        },
        "upsample_factors": data.upsample_factors,
        "metadata": data.metadata.to_dict() if data.metadata is not None else None,
        "class_weights": class_weights.to_dict() if class_weights is not None else None,
        "preprocessing": {"cache": cache.directory.name, **params_to_dict(cache.params)},
        "skipped_images": data.skipped,
        "versions": environment_versions(),
        "git_commit": git_commit(root),
        "created": datetime.now(UTC).isoformat(),
    }


def log_entry(
    run_dir: RunDir,
    config: dict[str, Any],
    history: list[dict[str, Any]],
    best_epoch: int,
    results: dict[str, dict[str, Any]],
    times: tuple[float, float, float],
    root: Path,
) -> dict[str, Any]:
    """The completed run's log entry (also its result.json): spec, best epoch, val/test metrics, timings, storage.

    `times` are the (started, trained, finished) timestamps; `results` the val and test metrics.
    """
    started, trained, finished = times
    best_row = history[best_epoch - 1]
    return {
        "id": config["id"],
        "name": config["name"],
        "status": "completed",
        **ExperimentSpec.from_dict(config).to_dict(),
        "classes": list(config["classes"]),
        "task": config.get("task", "multilabel"),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train": {key: best_row[key] for key in best_row if key in TRAIN_KEYS},
        "val": results["val"],
        "test": results["test"],
        "timings": {
            "started": datetime.fromtimestamp(started, UTC).isoformat(),
            "finished": datetime.fromtimestamp(finished, UTC).isoformat(),
            "train_s": round(trained - started, 3),
            "evaluate_s": round(finished - trained, 3),
            "total_s": round(finished - started, 3),
        },
        "storage": {
            "run_dir": relative_to_root(run_dir.path, root),
            "model": relative_to_root(run_dir.model_path, root),
            "remote": None,
        },
        "versions": config["versions"],
        "git_commit": config["git_commit"],
    }


def relative_to_root(path: Path, root: Path) -> str:
    """`path` relative to the project root as a log entry stores it (absolute when it lies outside the root)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)

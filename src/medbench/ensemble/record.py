"""An ensemble recorded like a run: its folder under models/, its config.json, result.json and log entry.

Layout (``models/Ensemble_<method>_<benchmark name>/<run id>/``)::

    config.json  predictions/{val,test}.csv  result.json  [meta_learner.joblib]

config.json names the members, the method and its fitted state (weights, or the meta-learner file and
its parameters), the test-time augmentation and the shared split; the log entry (also result.json)
holds the same val/test metrics a run's entry holds, computed by the same metric functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medbench.ensemble.combination import Combination
from medbench.ensemble.members import MemberStack, member_record
from medbench.ensemble.options import ENSEMBLE_KIND, EnsembleOptions
from medbench.runs.provenance import environment_versions, git_commit
from medbench.runs.records import relative_to_root
from medbench.runs.run_dir import RunDir
from medbench.runs.saved_run import SavedRun

PREFIX = "Ensemble"


def ensemble_name(options: EnsembleOptions, benchmark_name: str, *, bagging: int | None = None) -> str:
    """The experiment folder: ``Ensemble_<method>_<benchmark name>`` (``Ensemble_bagging5-mean_…`` for bagging)."""
    label = options.label if bagging is None else f"bagging{bagging}-{options.label}"
    return f"{PREFIX}_{label}_{benchmark_name}"


def ensemble_config(
    run_id: str,
    name: str,
    runs: Sequence[SavedRun],
    options: EnsembleOptions,
    combination: Combination,
    signature: dict[str, Any],
    stacks: dict[str, MemberStack],
    *,
    root: Path,
    bagging: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.json of an ensemble: members, method and fitted state, TTA, the shared split, provenance."""
    return {
        "id": run_id,
        "name": name,
        "kind": ENSEMBLE_KIND,
        "members": [member_record(run) for run in runs],
        **combination.to_config(),
        "seed": options.seed,
        "tta": options.tta.to_dict() if options.tta is not None else None,
        "bagging": bagging,
        "classes": signature["classes"],
        "task": signature["task"],
        "split": {key: value for key, value in signature.items() if key not in ("classes", "task")},
        "sizes": {part: len(stack.ids) for part, stack in stacks.items()},
        "versions": environment_versions(),
        "git_commit": git_commit(root),
        "created": datetime.now(UTC).isoformat(),
    }


def ensemble_entry(
    run_dir: RunDir, config: dict[str, Any], results: dict[str, dict[str, Any]], times: tuple[float, float], root: Path
) -> dict[str, Any]:
    """The ensemble's log entry (also its result.json), with the metric fields of a run's entry.

    `times` are the (started, finished) timestamps; `results` the val and test metrics.
    """
    started, finished = times
    return {
        "id": config["id"],
        "name": config["name"],
        "status": "completed",
        "kind": ENSEMBLE_KIND,
        "method": config["method"],
        "members": [member["id"] for member in config["members"]],
        "architectures": [member["architecture"] for member in config["members"]],
        "classes": list(config["classes"]),
        "task": config["task"],
        "best_epoch": None,
        "val": results["val"],
        "test": results["test"],
        "timings": {
            "started": datetime.fromtimestamp(started, UTC).isoformat(),
            "finished": datetime.fromtimestamp(finished, UTC).isoformat(),
            "total_s": round(finished - started, 3),
        },
        "storage": {"run_dir": relative_to_root(run_dir.path, root), "model": None, "remote": None},
        "versions": config["versions"],
        "git_commit": config["git_commit"],
    }

"""Re-evaluation of an ensemble: its members' predictions recomputed from their models, recombined with the
stored weights or meta-learner, scored again and logged beside the runs' re-evaluations.

Nothing is fitted again. `medbench reevaluate` hands ensembles here (`reevaluate_runs(...,
ensembles=reevaluate_ensemble)`), since `medbench.reevaluation` sits below this package.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from medbench.ensemble.build import member_stacks, score
from medbench.ensemble.combination import load_combination
from medbench.ensemble.members import check_members
from medbench.ensemble.options import ENSEMBLE_KIND, EnsembleOptions, TTAOptions
from medbench.errors import ConfigError
from medbench.reevaluation import Reevaluation, reevaluate_runs
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings
from medbench.tracking.logs import REEVALUATION_LOG, ExperimentLog
from medbench.tracking.storage import find_or_pull_runs


def _member_ids(run: SavedRun) -> list[str]:
    members = run.config.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) and "id" in m for m in members):
        raise ConfigError(
            f"{run.run_dir.config_path}: 'members' is not a list of runs; expected the ensemble's members"
        )
    return [str(member["id"]) for member in members]


def reevaluate_ensemble(run: SavedRun, settings: Settings) -> dict[str, Any]:
    """Recompute an ensemble's val/test metrics from its members' models; upserts and returns the entry.

    Raises:
        ConfigError: not an ensemble, an unfinished one, missing members or a damaged meta-learner file.
    """
    if run.config.get("kind") != ENSEMBLE_KIND:
        raise ConfigError(f"run {run.run_id} ({run.run_dir.path}) is not an ensemble")
    if not run.run_dir.is_complete():
        raise ConfigError(f"ensemble {run.run_id} ({run.run_dir.path}) did not finish (no result.json)")
    members = find_or_pull_runs(settings, _member_ids(run))
    signature = check_members(members)
    classes, task = signature["classes"], signature["task"]
    tta = TTAOptions.from_dict(run.config["tta"]) if run.config.get("tta") else None
    stacks = member_stacks(members, settings, EnsembleOptions(tta=tta), from_models=True)
    combination = load_combination(run.run_dir, run.config, len(members), len(classes))
    _, results = score(combination, stacks, classes, task)
    entry = {
        "id": run.run_id,
        "name": run.name,
        "kind": ENSEMBLE_KIND,
        "method": run.config.get("method"),
        "members": [member.run_id for member in members],
        "classes": list(classes),
        "reevaluated": datetime.now(UTC).isoformat(),
        "val_again": results["val"],
        "test_again": results["test"],
    }
    ExperimentLog(settings.logs_dir / REEVALUATION_LOG).upsert(entry)
    return entry


def reevaluate_all(
    settings: Settings | None = None,
    run_ids: Iterable[str] | None = None,
    *,
    epochs: bool = False,
    progress: bool = True,
) -> Reevaluation:
    """`medbench.reevaluation.reevaluate_runs` that re-evaluates ensembles too (after the runs)."""
    return reevaluate_runs(settings, run_ids, epochs=epochs, progress=progress, ensembles=reevaluate_ensemble)

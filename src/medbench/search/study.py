"""`run_search`: an Optuna study over a search space, stored so that it resumes and scales to many workers.

The storage is an SQLite file under ``logs/search/`` unless a URL is given (any Optuna RDB URL, e.g.
PostgreSQL shared by workers on many machines: see docs/scaling.md). Each worker runs trials until the
study holds the requested number of finished (complete or pruned) trials; a killed worker's trial stops
sending heartbeats, is marked failed by the next worker that starts and is retried once with the same
values, so killing a search and starting it again continues the study. Results: ``leaderboard.csv`` (the
best trials first, with their runs), ``history.png``, ``intermediate.png`` (the per-epoch values the
pruner saw) and, with two or more complete trials, ``importances.png`` / ``importances.csv`` (fANOVA).
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.errors import ConfigError, MedbenchError
from medbench.search.objective import run_trial
from medbench.search.space import SearchSpace
from medbench.settings import Settings

__all__ = ["SearchSummary", "open_study", "run_search", "storage_url"]

logger = logging.getLogger(__name__)

HEARTBEAT_S = 10
OPEN_ATTEMPTS = 5
GRACE_S = 30
FINISHED = ("COMPLETE", "PRUNED")


def storage_url(space: SearchSpace, settings: Settings, storage: str | None = None) -> str:
    """The study's storage: `storage` when given, else ``sqlite:///<logs>/search/<study>.sqlite3``."""
    if storage:
        return storage
    folder = settings.logs_dir / "search"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'{space.study}.sqlite3').resolve()}"


def open_study(space: SearchSpace, url: str) -> Any:
    """The study `space` names in `url`, created on first use (maximising validation mean AUROC)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    # heartbeats and the retry callback are marked experimental; medbench relies on them knowingly
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            storage = RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
            break
        except Exception as error:  # SQLAlchemy's and the drivers' errors have no common base
            # workers that start together race to create the schema; the loser finds it made on retry
            if attempt + 1 == OPEN_ATTEMPTS:
                raise ConfigError(f"search storage {url.split('@')[-1]!r} cannot be opened: {error}") from None
            logger.info("search storage not ready (%s); retrying", str(error).splitlines()[0][:200])
            time.sleep(1.0 + random.random())
    seed = space.sampler.get("seed")
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if space.sampler["name"] == "random"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(space.sampler.get("startup_trials", 4)))
    )
    if space.pruner["name"] == "median":
        pruner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner(
            n_startup_trials=int(space.pruner.get("startup_trials", 2)),
            n_warmup_steps=int(space.pruner.get("warmup_epochs", 1)),
        )
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(
        study_name=space.study,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


@dataclass(frozen=True)
class SearchSummary:
    """What a search left: the study's trials by state, its best trial and the files written."""

    study: str
    storage: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    files: list[Path]

    def text(self) -> str:
        counts = ", ".join(f"{count} {state.lower()}" for state, count in sorted(self.counts.items()))
        lines = [f"study {self.study}: {counts or 'no trials'}"]
        if self.best is not None:
            lines.append(
                f"best trial {self.best['number']}: val mean AUROC {self.best['value']:.4f}, runs "
                f"{', '.join(self.best['run_ids'])}, {self.best['params']}"
            )
        lines += [str(path) for path in self.files]
        return "\n".join(lines)


def _finished(study: Any) -> int:
    return sum(1 for trial in study.get_trials(deepcopy=False) if trial.state.name in FINISHED)


def run_search(
    space: SearchSpace,
    settings: Settings,
    *,
    storage: str | None = None,
    trials: int | None = None,
    out: str | Path | None = None,
) -> SearchSummary:
    """Run trials until the study holds `trials` (default the space's) finished ones; write its results."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    target = trials or space.trials
    url = storage_url(space, settings, storage)
    study = open_study(space, url)
    remaining = max(0, target - _finished(study))
    logger.info(
        "study %s: %d of %d trials finished; running up to %d", space.study, target - remaining, target, remaining
    )
    if remaining:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            lambda trial: run_trial(trial, space, settings),
            n_trials=remaining,
            callbacks=[MaxTrialsCallback(target, states=(TrialState.COMPLETE, TrialState.PRUNED))],
            catch=(MedbenchError,),
            show_progress_bar=False,
        )
    from medbench.search.results import best_trial, write_results

    folder = Path(out) if out else settings.logs_dir / "search" / space.study
    files = write_results(study, folder)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return SearchSummary(space.study, url.split("@")[-1], counts, best_trial(study), files)

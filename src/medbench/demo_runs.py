"""Runs to look at: the project folders a notebook works in, and a tiny demo batch run only when there are no runs.

The notebooks in `notebooks/` re-evaluate, plot and compare saved runs; each must also work on a
fresh checkout, so they share :func:`ensure_runs` instead of each training its own models.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.benchmark import Benchmark
from medbench.benchmarks import grid
from medbench.settings import Settings

if TYPE_CHECKING:
    from medbench.reevaluation import SavedRun

logger = logging.getLogger(__name__)

QUICK_ARCHITECTURE = "2D.SmallCNN"
QUICK_BENCHMARKS: tuple[Benchmark, ...] = tuple(
    grid(Benchmark.from_name("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), loss=["BCE", "WBCE"])
)
"""Two 32 px, 2-epoch SmallCNN benchmarks on the demo data (seconds each on a CPU)."""


def project_root(start: str | Path | None = None) -> Path:
    """MEDBENCH_ROOT when set, else the nearest folder at or above `start` (default: the working
    directory) holding the medbench checkout (pyproject.toml beside src/medbench), else `start`.

    A notebook runs with its own folder as working directory, so this finds the repository's
    data/, models/ and logs/ from `notebooks/` too.
    """
    if os.environ.get("MEDBENCH_ROOT"):
        return Path(os.environ["MEDBENCH_ROOT"]).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "medbench").is_dir():
            return folder
    return here


def project_settings(start: str | Path | None = None) -> Settings:
    """:meth:`Settings.from_env` rooted at :func:`project_root`."""
    return Settings.from_env(project_root(start))


def completed_runs(settings: Settings) -> list[SavedRun]:
    """Saved runs (:class:`medbench.reevaluation.SavedRun`) that finished: their folder holds result.json."""
    from medbench.reevaluation import find_runs

    return [run for run in find_runs(settings) if (run.run_dir / "result.json").is_file()]


def ensure_runs(settings: Settings, *, progress: bool = True) -> list[SavedRun]:
    """The completed runs; when there are none (or no completed log entry), run the quick demo batch first.

    The demo data is written under `<data dir>/demo` if it is missing.
    """
    from medbench.demo import ensure_demo_data
    from medbench.experiment_exec import BatchItem, run_batch
    from medbench.tracking.logs import all_entries

    runs = completed_runs(settings)
    logged = [entry for entry in all_entries(settings.logs_dir) if entry.get("status", "completed") == "completed"]
    if runs and logged:
        return runs
    logger.info("no completed runs under %s: running the quick demo batch", settings.models_dir)
    ensure_demo_data(settings)
    run_batch(
        [BatchItem(benchmark, QUICK_ARCHITECTURE, {}) for benchmark in QUICK_BENCHMARKS], settings, progress=progress
    )
    return completed_runs(settings)

"""The demo job behind `make demo`, and completed runs for the notebooks."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.predefined import grid
from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.vocabulary import DEFAULT_ARCHITECTURE
from medbench.demo.dataset import DEMO_FOLDER, write_demo_dataset, written_difficulty
from medbench.demo.difficulty import DEMO_DIFFICULTY, DemoDifficulty, get_difficulty
from medbench.experiment_exec import run_batch
from medbench.runs import SavedRun, find_runs
from medbench.settings import Settings
from medbench.tracking.logs import all_entries

logger = logging.getLogger(__name__)

DEMO_BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark.from_name("demo_BCE_E5_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam"),
    Benchmark.from_name("demo_WBCE_E5_B16_C0_N5_AugAffine_Uone_D64_DS8020_1LR3_LF5_Adam"),
)
"""The batch of `make demo`, trained with the default architecture."""

QUICK_BENCHMARKS: tuple[Benchmark, ...] = tuple(
    grid(Benchmark.from_name("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), loss=["BCE", "WBCE"])
)
"""Two 32 px, 2-epoch benchmarks on the demo data (seconds each on a CPU), for the notebooks."""


def ensure_demo_data(settings: Settings, *, seed: int = 0, difficulty: str | DemoDifficulty | None = None) -> Path:
    """The demo dataset under <data dir>/demo, written (at `difficulty`, default DEMO_DIFFICULTY) when missing.

    With a `difficulty`, demo data written at another one is replaced (only a folder medbench's marker says
    it wrote); without one, demo data already there is used whatever its difficulty (tests and notebooks
    share one folder).
    """
    root = settings.data_dir / "demo"
    level = get_difficulty(DEMO_DIFFICULTY if difficulty is None else difficulty)
    complete = (root / DEMO_FOLDER / "train.csv").is_file() and (root / DEMO_FOLDER / "valid.csv").is_file()
    written = written_difficulty(root)
    if complete and (difficulty is None or written == level):
        logger.info("demo data already at %s (difficulty %s)", root, written)
        return root
    if complete and written is not None:
        logger.info("demo data at %s was written at difficulty %s: writing it again at %s", root, written, level)
    return write_demo_dataset(root, seed=seed, difficulty=level, overwrite=written is not None)


def run_demo(settings: Settings | None = None) -> str:
    """Run the whole demo and return the leaderboard text of its runs and the paths of their HTML reports."""
    from medbench.leaderboard import format_leaderboard, leaderboard
    from medbench.reevaluation import reevaluate
    from medbench.report import write_reports

    settings = settings or Settings.from_env()
    started = time.time()
    ensure_demo_data(settings, difficulty=DEMO_DIFFICULTY)
    entries = run_batch([ExperimentSpec(benchmark, DEFAULT_ARCHITECTURE) for benchmark in DEMO_BENCHMARKS], settings)
    completed = [entry for entry in entries if entry["status"] == "completed"]
    reevaluate(settings, [entry["id"] for entry in completed], epochs=True)
    board = format_leaderboard(leaderboard(completed))
    ids = [entry["id"] for entry in completed]
    reports = write_reports(settings, ids, compare=len(ids) > 1) if ids else []
    logger.info(
        "demo finished in %.0f s (%d of %d runs completed)", time.time() - started, len(completed), len(entries)
    )
    return "\n".join([board, "", "reports (open in a browser):", *(f"  {path}" for path in reports)])


def completed_runs(settings: Settings) -> list[SavedRun]:
    """Saved runs that finished (their folder holds result.json)."""
    return [run for run in find_runs(settings.models_dir) if run.run_dir.is_complete()]


def ensure_runs(settings: Settings, *, progress: bool = True) -> list[SavedRun]:
    """The completed runs; when there are none (or no completed log entry), run the quick demo batch first.

    The demo data is written under `<data dir>/demo` if it is missing.
    """
    runs = completed_runs(settings)
    logged = [entry for entry in all_entries(settings.logs_dir) if entry.get("status", "completed") == "completed"]
    if runs and logged:
        return runs
    logger.info("no completed runs under %s: running the quick demo batch", settings.models_dir)
    ensure_demo_data(settings)
    run_batch(
        [ExperimentSpec(benchmark, DEFAULT_ARCHITECTURE) for benchmark in QUICK_BENCHMARKS], settings, progress=progress
    )
    return completed_runs(settings)

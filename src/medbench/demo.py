"""The demo job behind `make demo`: synthetic data → a small batch → per-epoch re-evaluation → leaderboard."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from medbench.benchmark import Benchmark
from medbench.settings import Settings

logger = logging.getLogger(__name__)

DEMO_ARCHITECTURE = "2D.SmallCNN"
DEMO_BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark.from_name("demo_BCE_E5_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam"),
    Benchmark.from_name("demo_WBCE_E5_B16_C0_N5_AugAffine_Uone_D64_DS8020_1LR3_LF5_Adam"),
)


def ensure_demo_data(settings: Settings, *, seed: int = 0) -> Path:
    """Write the demo dataset under <data dir>/demo unless it is already there."""
    from medbench.data.demo import write_demo_dataset

    root = settings.data_dir / "demo"
    if (root / "CheXpert-v1.0-small" / "train.csv").is_file() and (
        root / "CheXpert-v1.0-small" / "valid.csv"
    ).is_file():
        logger.info("demo data already at %s", root)
        return root
    return write_demo_dataset(root, seed=seed)


def run_demo(settings: Settings | None = None) -> str:
    """Run the whole demo and return the leaderboard text of its runs."""
    from medbench.experiment_exec import BatchItem, run_batch
    from medbench.leaderboard import format_leaderboard, leaderboard
    from medbench.reevaluation import reevaluate

    settings = settings or Settings.from_env()
    started = time.time()
    ensure_demo_data(settings)
    items = [BatchItem(benchmark, DEMO_ARCHITECTURE, {}) for benchmark in DEMO_BENCHMARKS]
    entries = run_batch(items, settings)
    completed = [entry for entry in entries if entry["status"] == "completed"]
    reevaluate(settings, [entry["id"] for entry in completed], epochs=True)
    board = format_leaderboard(leaderboard(completed))
    logger.info(
        "demo finished in %.0f s (%d of %d runs completed)", time.time() - started, len(completed), len(entries)
    )
    return board

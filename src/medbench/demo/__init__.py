"""The demo: a synthetic CheXpert look-alike at a chosen difficulty, the job behind `make demo`, runs for notebooks.

`write_demo_dataset` writes the CheXpert-v1.0-small layout (with NIH-format box files) in seconds, so
every part of medbench runs end to end without downloading anything. `run_demo` is `make demo`: demo
data at DEMO_DIFFICULTY → a small batch → per-epoch re-evaluation → leaderboard → reports.
`ensure_runs` gives the notebooks completed runs to look at, training a tiny batch only when there are none.
"""

from medbench.demo.dataset import DEMO_FOLDER, DEMO_MARKER, MAX_PATIENTS, PREVALENCE, write_demo_dataset
from medbench.demo.difficulty import DEMO_DIFFICULTY, DIFFICULTIES, DemoDifficulty, get_difficulty
from medbench.demo.job import (
    DEMO_BENCHMARKS,
    QUICK_BENCHMARKS,
    completed_runs,
    ensure_demo_data,
    ensure_runs,
    run_demo,
)
from medbench.demo.painter import BOX_FRACTION, Painter

__all__ = [
    "BOX_FRACTION",
    "DEMO_BENCHMARKS",
    "DEMO_DIFFICULTY",
    "DEMO_FOLDER",
    "DEMO_MARKER",
    "DIFFICULTIES",
    "MAX_PATIENTS",
    "PREVALENCE",
    "QUICK_BENCHMARKS",
    "DemoDifficulty",
    "Painter",
    "completed_runs",
    "ensure_demo_data",
    "ensure_runs",
    "get_difficulty",
    "run_demo",
    "write_demo_dataset",
]

"""Runs on disk (no TensorFlow): the run folder's layout and IO, saved runs, run ids and provenance.

Modules: `run_dir` (RunDir: every file of a run folder, its reads and writes, the per-run lock),
`saved_run` (SavedRun, find_runs), `predictions` (the predictions CSV), `run_id` (new and
multi-worker run ids) and `provenance` (versions and git commit recorded in config.json).
"""

from medbench.runs.predictions import read_predictions, write_predictions
from medbench.runs.run_dir import RunDir
from medbench.runs.run_id import new_run_id
from medbench.runs.saved_run import SavedRun, find_runs, saved_runs

__all__ = ["RunDir", "SavedRun", "find_runs", "new_run_id", "read_predictions", "saved_runs", "write_predictions"]

"""Experiment tracking: the JSON logs in logs/ (atomic, locked, safe with many writers), merging, uploads."""

from medbench.tracking.logs import ExperimentLog, all_entries, validate_entries

__all__ = ["ExperimentLog", "all_entries", "validate_entries"]

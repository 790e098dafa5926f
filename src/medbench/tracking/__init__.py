"""Experiment tracking: the JSON logs in logs/ (atomic, locked, safe with many writers)."""

from medbench.tracking.logs import ExperimentLog, all_entries, validate_entries, write_json_atomic

__all__ = ["ExperimentLog", "all_entries", "validate_entries", "write_json_atomic"]

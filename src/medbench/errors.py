"""Errors medbench raises for bad input: each names the file, row, column or token at fault."""

from __future__ import annotations

SHOWN = 200
"""Characters of a bad value an error message shows: a message never prints an unbounded value."""


def shown(value: object) -> str:
    """`repr(value)` as an error message shows it: cut to SHOWN characters, with a string's length."""
    if isinstance(value, str):
        return repr(value) if len(value) <= SHOWN else f"{value[:SHOWN]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({type(value).__name__})"


class MedbenchError(Exception):
    """Base class for every error medbench raises on purpose."""


class BenchmarkNameError(MedbenchError, ValueError):
    """A benchmark name or field that does not fit the name scheme."""


class DatasetError(MedbenchError, ValueError):
    """A label file or dataset folder that cannot be read as declared.

    The message names the file and, where it applies, the row (1-based, header = row 1) and column.
    """

    def __init__(self, message: str, *, file: object = None, row: int | None = None, column: str | None = None):
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.file = file
        self.row = row
        self.column = column


class ImageError(DatasetError):
    """An image file that is missing, unreadable or not an image."""


class LabelPolicyError(MedbenchError, ValueError):
    """Labels that a policy cannot be applied to (e.g. a class with no positives for class weights)."""


class WeightsNotFoundError(MedbenchError, FileNotFoundError):
    """Pretrained weights were asked for but the local file is missing (there is no download at run time)."""


class ConfigError(MedbenchError, ValueError):
    """A batch file, environment variable or option that is malformed."""


class StorageError(MedbenchError, OSError):
    """Files could not be written or fetched: a full disk, a read-only folder, an unreachable bucket."""


class CapacityError(MedbenchError):
    """Work that needs more memory or disk than the machine has free, refused before it starts."""


class RegistryError(ConfigError, DatasetError):
    """A name that no registry entry answers to, or a registration that clashes with another entry.

    One type for the dataset and the architecture registries; it is both a `ConfigError` (a name in a
    batch or option) and a `DatasetError` (an unknown dataset), so callers catching either still do.
    """


class LogCorruptError(MedbenchError):
    """A log file that is not a JSON list of entries."""


class MetricInputError(MedbenchError, ValueError):
    """Targets, predictions, class names or thresholds that cannot be evaluated as given."""


class UndefinedMetricError(MetricInputError):
    """A metric asked for on data where it has no value (e.g. AUROC without any positive label)."""

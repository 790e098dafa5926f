"""Batch runner: expand a YAML or CSV batch into experiments, run a shard of them, record failures.

YAML batch::

    architectures: [2D.SmallCNN]          # default for entries that name none
    options: {max_train_samples: 500}     # ExperimentOptions for every entry
    benchmarks:                            # names or field dicts
      - demo_BCE_E2_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam
      - {dataset: demo, loss: WBCE, epochs: 2, n_classes: 5, image_size: 64}
    grid:                                  # product of variations over a base benchmark
      base: {dataset: demo, epochs: 2, n_classes: 5, image_size: 64}
      vary: {loss: [BCE, WBCE], batch_size: [16, 32]}

CSV batch: one row per experiment with a `benchmark` column (a name) and an optional `architecture`.

Every entry becomes an `ExperimentSpec` and is checked (`ExperimentSpec.check`) when the batch
loads, so a dry run finds what a run would fail on; nothing here imports TensorFlow until a batch runs.
"""

from __future__ import annotations

import csv
import logging
import traceback
from collections.abc import Sequence
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medbench.architectures.registry import get_architecture
from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.predefined import grid
from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.yaml_text import load_yaml
from medbench.errors import BenchmarkNameError, ConfigError, MedbenchError, StorageError, shown
from medbench.settings import Settings
from medbench.tracking.logs import FAILED_LOG, ExperimentLog

logger = logging.getLogger(__name__)


def _benchmark(value: Any, where: str) -> Benchmark:
    try:
        if isinstance(value, str):
            return Benchmark.from_name(value)
        if isinstance(value, dict) and "name" in value:
            return Benchmark.from_name(value["name"])
        if isinstance(value, dict):
            _check_fields(value, where)
            return Benchmark.from_dict(value)
    except (BenchmarkNameError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    raise ConfigError(f"{where}: expected a benchmark name or a mapping of Benchmark fields, got {shown(value)}")


def _check_fields(value: dict[Any, Any], where: str) -> None:
    """A mapping of Benchmark fields names only known fields and every required one."""
    known = {item.name: item for item in fields(Benchmark)}
    unknown = [key for key in value if key not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown Benchmark fields {shown(unknown)}; valid: {', '.join(known)}")
    required = [name for name, item in known.items() if item.default is MISSING and item.default_factory is MISSING]
    missing = [name for name in required if name not in value]
    if missing:
        raise ConfigError(f"{where}: missing Benchmark fields {missing}; expected at least {', '.join(required)}")


def _architectures(value: Any, where: str) -> list[str | None]:
    """The architecture keys a batch names; None (each benchmark's dimension's default) when it names none."""
    if value is None:
        return [None]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"{where}: expected an architecture key or a non-empty list of them (e.g. [2D.SmallCNN]), "
            f"got {shown(value)}"
        )
    for name in names:
        try:
            get_architecture(name)
        except MedbenchError as error:
            raise ConfigError(f"{where}: {error}") from None
    return names


def load_batch(path: str | Path) -> list[ExperimentSpec]:
    """Expand a batch file into its experiments, in file order; errors name the file and entry."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a .yaml/.yml or .csv batch file")
    if not path.is_file():
        raise ConfigError(f"{path}: batch file not found; expected a .yaml/.yml or .csv batch file at this path")
    try:
        if path.suffix.lower() == ".csv":
            items = _load_csv_batch(path)
        elif path.suffix.lower() in (".yaml", ".yml"):
            items = _load_yaml_batch(path)
        else:
            raise ConfigError(f"{path}: expected a .yaml/.yml or .csv batch file")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: is not UTF-8 text ({error}); expected a UTF-8 YAML or CSV batch file") from None
    if not items:
        raise ConfigError(f"{path}: the batch holds no experiments (an empty file, or grids that expand to nothing)")
    for item in items:
        try:
            item.check()
        except MedbenchError as error:
            raise ConfigError(f"{path}: {error}") from None
    return items


def _load_yaml_batch(path: Path) -> list[ExperimentSpec]:
    spec = load_yaml(path.read_text(encoding="utf-8-sig"), str(path))
    if spec is None:
        return []
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping with 'benchmarks' and/or 'grid', got {type(spec).__name__}")
    unknown = set(spec) - {"architectures", "options", "benchmarks", "grid"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; expected architectures, options, benchmarks, grid")
    architectures = _architectures(spec.get("architectures"), f"{path}: architectures")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{path}: options: expected a mapping of ExperimentOptions fields")
    checked = _options(options, f"{path}: options")
    entries = spec.get("benchmarks") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: benchmarks: expected a list of benchmark names or mappings, got {shown(entries)}")
    benchmarks = [_benchmark(entry, f"{path}: benchmarks[{i}]") for i, entry in enumerate(entries)]
    grids = spec.get("grid") or []
    for index, entry in enumerate(grids if isinstance(grids, list) else [grids]):
        where = f"{path}: grid[{index}]"
        if not isinstance(entry, dict) or "base" not in entry:
            raise ConfigError(f"{where}: expected a mapping with 'base' (benchmark) and 'vary' (field: [values])")
        vary = entry.get("vary") or {}
        if not isinstance(vary, dict) or not all(isinstance(k, str) and isinstance(v, list) for k, v in vary.items()):
            raise ConfigError(f"{where}: vary: expected a mapping of field name to a list of values")
        empty = [key for key, values in vary.items() if not values]
        if empty:
            raise ConfigError(
                f"{where}: vary: {empty[0]!r} has an empty list of values, so the grid would expand to nothing; "
                "expected at least one value per varied field"
            )
        try:
            benchmarks += grid(_benchmark(entry["base"], f"{where}: base"), **vary)
        except (BenchmarkNameError, TypeError) as error:
            raise ConfigError(f"{where}: {error}") from None
    return [ExperimentSpec(b, arch, checked) for b in benchmarks for arch in architectures]


def _load_csv_batch(path: Path) -> list[ExperimentSpec]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        try:
            rows = list(reader)
        except csv.Error as error:
            raise ConfigError(f"{path}: near line {reader.line_num + 1}: {error}; expected a CSV batch file") from None
        header = reader.fieldnames or []
    if rows and "benchmark" not in header:
        raise ConfigError(
            f"{path}: missing column 'benchmark' (found {header[:10]}); expected benchmark[,architecture]"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ConfigError(f"{path}: row 1: column {repeated[0]!r} appears twice in the header; expected each once")
    items = []
    for number, row in enumerate(rows, start=2):
        where = f"{path}: row {number}"
        if None in row:
            raise ConfigError(
                f"{where}: has {len(header) + len(row[None])} fields, the header has {len(header)}; "
                "expected benchmark[,architecture] (a comma inside a value needs quotes)"
            )
        architecture = _architectures((row.get("architecture") or "").strip() or None, where)[0]
        items.append(
            ExperimentSpec(
                _benchmark((row.get("benchmark") or "").strip(), f"{where}, column 'benchmark'"), architecture
            )
        )
    return items


def _options(options: dict[str, Any], where: str) -> ExperimentOptions:
    """Fail at load time, not once per experiment, on an unknown or malformed ExperimentOptions field."""
    try:
        return ExperimentOptions.from_dict(options)
    except MedbenchError as error:
        raise ConfigError(f"{where}: {error}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}; expected ExperimentOptions fields") from None


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' → (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n with whole numbers i and n, e.g. 0/4") from None
    if count < 1:
        raise ConfigError(f"--shard {text!r}: the number of shards n is {count}; expected n >= 1, e.g. 0/4")
    if not 0 <= index < count:
        raise ConfigError(
            f"--shard {text!r}: shard index {index} is out of range for {count} shard(s); "
            f"expected 0 <= i < {count} (shards are numbered from 0)"
        )
    return index, count


def shard(items: Sequence[ExperimentSpec], index: int, count: int) -> list[ExperimentSpec]:
    """The deterministic share of shard `index` of `count`: every count-th item from `index`."""
    return list(items[index::count])


def run_batch(
    items: Sequence[ExperimentSpec],
    settings: Settings | None = None,
    *,
    progress: bool = True,
    rerun: bool = False,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run each experiment; a failure is logged to the failed-experiment log and the batch goes on.

    An unfinished run of the same spec is resumed and a completed one is skipped (its result returned
    with `"skipped": True`) unless `rerun`. `options` override every spec's options (e.g. the
    strategy). A full disk or unwritable folder stops the whole batch, since every later experiment
    would fail the same way.
    """
    from medbench.experiment import Experiment

    settings = settings or Settings.from_env()
    results = []
    for item in tqdm(items, desc="experiments", unit="exp", disable=not progress):
        try:
            experiment = Experiment(item.with_options(**(options or {})), settings)
        except MedbenchError as error:
            results.append(_record_failure(item, None, error, settings))
            continue
        try:
            results.append(experiment.run_or_resume(rerun=rerun))
        except StorageError:
            raise
        except Exception as error:  # noqa: BLE001 — one failing experiment must not stop the batch
            results.append(_record_failure(item, experiment.run_id, error, settings))
    return results


def _record_failure(item: ExperimentSpec, run_id: str | None, error: Exception, settings: Settings) -> dict[str, Any]:
    logger.error("experiment %s failed: %s", item.name, error)
    entry = {
        "id": run_id or f"failed-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}",
        "name": item.name,
        "status": "failed",
        "benchmark": item.benchmark.to_dict(),
        "architecture": item.architecture,
        "error": f"{type(error).__name__}: {error}",
        "traceback": traceback.format_exception(error)[-5:],
        "time": datetime.now(UTC).isoformat(),
    }
    ExperimentLog(settings.logs_dir / FAILED_LOG).append(entry)
    return entry

"""`train_table`: every row of a TIML training table trained as an ordinary medbench experiment.

A row becomes an `ExperimentSpec` (its `Benchmark` and `ExperimentOptions`, see `row_spec`), so each model
is a run folder with its config, checkpoints, predictions and log entry, which `medbench reevaluate`,
`predict`, `ensemble`, `report` and `sync` take like any other. The output folder
``train_output-YYYYMMDD-hhmmss/`` holds TIML's artefacts: ``automation_result.csv`` (the input columns plus
the statistics, rewritten after every row, so a killed table keeps what finished) and per row
``<i>-automation_result.csv``, the model, the training results and the loss, accuracy and ROC plots. A row
that fails is recorded in its ``exceptions`` cell and the table goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medbench.atomic import write_bytes_atomic
from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.data.datasets import DatasetSpec, register_dataset
from medbench.errors import ConfigError, MedbenchError
from medbench.experiment import Experiment
from medbench.settings import Settings
from medbench.table_training.artefacts import table_csv, write_row_artefacts
from medbench.table_training.splits import row_dataset
from medbench.table_training.statistics import split_statistics
from medbench.table_training.table import INPUT_COLUMNS, OUTPUT_COLUMNS, TableRow, read_training_table

__all__ = ["RESULT_FILE", "row_spec", "train_table"]

logger = logging.getLogger(__name__)

RESULT_FILE = "automation_result.csv"
_STAMP = "%Y%m%d-%H%M%S"


def row_spec(row: TableRow, dataset: DatasetSpec, options: Mapping[str, Any] | None = None) -> ExperimentSpec:
    """The experiment a row is: method → architecture, head and task; its cells → the benchmark's fields.

    ``imgaug`` is the benchmark's enumeration, ``resizefilter`` and ``colorspace`` its transformation tokens,
    ``classweights compute`` the weighted loss of the task (WCCE, WBCE), the split its dataset's files.
    """
    multiclass = not row.method.multilabel
    loss = ("WCCE" if row.compute_class_weights else "CCE") if multiclass else "BCE"
    if not multiclass and row.compute_class_weights:
        loss = "WBCE"
    benchmark = Benchmark(
        dataset=dataset.name,
        loss=loss,
        epochs=row.epochs,
        batch_size=row.batch_size,
        n_classes=len(dataset.classes),
        image_size=row.image_size,
        learning_rate=row.learning_rate,
        enumeration=row.enumeration,
        transformations=tuple(token for token in (row.resize_filter, row.color_space) if token),
        optimizer=row.method.optimizer,
        seed=row.seed,
    )
    chosen = {
        **dict(options or {}),
        "weights": row.weights,
        "fcl": row.method.fcl_units is not None,
        "fcl_units": list(row.method.fcl_units) if row.method.fcl_units else None,
        "class_weight_fallback": row.compute_class_weights,
    }
    return ExperimentSpec(benchmark, row.method.architecture, ExperimentOptions.from_dict(chosen))


def _statistics(result: dict[str, Any], experiment: Experiment, multiclass: bool) -> None:
    for part, prefix in (("val", "val"), ("test", "test")):
        _, targets, scores, classes = experiment.run_dir.read_predictions(part)
        for key, value in split_statistics(targets, scores, classes, multiclass).items():
            result[f"{prefix}{key}"] = None if value is None else round(value, 6)


def _train_row(row: TableRow, image_dir: Path, out: Path, stamp: str, settings: Settings, options: Any) -> dict:
    result: dict[str, Any] = {}
    dataset = register_dataset(row_dataset(row, image_dir, out), replace=True)
    spec = row_spec(row, dataset, options)
    spec.check()
    began = time.perf_counter()
    experiment = Experiment(spec, settings)
    entry = experiment.run()
    result["traintime"] = round(time.perf_counter() - began, 3)
    config = experiment.run_dir.read_config()
    sizes = config.get("sizes") or {}
    result.update(trainsize=sizes.get("train"), valsize=sizes.get("val"), testsize=sizes.get("test"))
    result.update(run_id=entry["id"], experiment=entry["name"])
    _statistics(result, experiment, multiclass=spec.task == "multiclass")
    notes = [f"benchmark {spec.benchmark.name}", f"architecture {spec.architecture}"]
    if row.method.fcl_units:
        notes.append(f"head dense {'x'.join(map(str, row.method.fcl_units))}")
    result["notes"] = "; ".join(notes)
    write_row_artefacts(out, row.index, stamp, experiment.run_dir)
    return result


def train_table(
    table: str | Path,
    image_dir: str | Path,
    *,
    out_dir: str | Path = ".",
    settings: Settings | None = None,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Train every row of `table` on the images in `image_dir`; returns the ``train_output-…`` folder.

    The table is checked whole first (a malformed cell is a ConfigError naming its row and column, and
    nothing trains); `options` are ExperimentOptions for every row (a row's weights, head and class-weight
    fallback come from its cells).
    """
    settings = settings or Settings.from_env()
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ConfigError(f"image folder {image_dir} does not exist; expected the folder of the tables' images")
    rows = read_training_table(table)
    ExperimentOptions.from_dict(dict(options or {}))
    stamp = datetime.now().strftime(_STAMP)
    out = Path(out_dir) / f"train_output-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    extra = [column for column in rows[0].cells if column not in INPUT_COLUMNS and column not in OUTPUT_COLUMNS]
    columns = [*INPUT_COLUMNS, *extra, *OUTPUT_COLUMNS]
    results: list[dict[str, Any]] = []
    for row in tqdm(rows, desc="table", unit="model"):
        result = {**{column: "" for column in OUTPUT_COLUMNS}, **row.cells}
        try:
            result.update(_train_row(row, image_dir, out, stamp, settings, options))
        except MedbenchError as error:
            logger.error("model %d (%s) failed: %s", row.index, row.cells.get("method"), error)
            result["exceptions"] = f"{type(error).__name__}: {error}"[:2000]
        except Exception as error:  # a failing row is recorded and the table goes on, as TIML's does
            logger.exception("model %d (%s) failed", row.index, row.cells.get("method"))
            result["exceptions"] = f"{type(error).__name__}: {error}"[:2000]
        results.append(result)
        write_bytes_atomic(out / f"{row.index}-{RESULT_FILE}", table_csv([result], columns))
        write_bytes_atomic(out / RESULT_FILE, table_csv(results, columns))
        logger.info("model %d: %s", row.index, result.get("exceptions") or f"test AUROC {result.get('testauc')}")
    return out

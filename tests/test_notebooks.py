"""The notebooks in notebooks/: committed without outputs, and each one runs top to bottom on the demo data.

Every notebook is executed with nbclient in a kernel started from this interpreter (a kernel spec
written by the test, so nothing installed by hand is needed), with the MEDBENCH_* folders pointing
at a temporary project. A cell that raises fails the test. Each test appends one cell that prints
the notebook's own results as JSON and checks them against the files and logs on disk.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from cli_process import medbench_env
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from medbench.leaderboard import leaderboard
from medbench.metrics.thresholds import OperatingPoint, choose_threshold, operating_point
from medbench.runs.predictions import read_predictions
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, REEVALUATION_LOG, UNVALIDATED_LOG, ExperimentLog, all_entries

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("experiment_exec", "reevaluation", "plot_roc", "compare_experiments")
RESULT = "MEDBENCH_NOTEBOOK_RESULT "


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and any(cell.cell_type == "markdown" for cell in nb.cells)
    assert [cell.outputs for cell in code] == [[]] * len(code), f"{name}.ipynb has outputs; clear them"
    assert {cell.execution_count for cell in code} == {None}
    assert nb.metadata.kernelspec.name == "python3"


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec named python3 that starts a kernel with this very interpreter (the .venv one)."""
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / "python3"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_json = {"argv": argv, "display_name": "Python 3 (medbench tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(spec_json), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def notebook_project(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> Settings:
    """A project with the quick demo batch (2 runs, 32 px, 2 epochs) already run, via ensure_runs."""
    from medbench.demo import QUICK_BENCHMARKS, ensure_runs

    root = tmp_path_factory.mktemp("notebook-project")
    settings = Settings(
        root=root,
        data_dir=demo_data_dir,
        models_dir=root / "models",
        logs_dir=root / "logs",
        weights_dir=root / "weights",
    )
    runs = ensure_runs(settings, progress=False)
    assert sorted(run.config["benchmark"]["loss"] for run in runs) == sorted(b.loss for b in QUICK_BENCHMARKS)
    assert [run.run_id for run in ensure_runs(settings, progress=False)] == [run.run_id for run in runs]
    return settings


def execute(name: str, settings: Settings, kernel_dir: Path, report: str) -> nbformat.NotebookNode:
    """Run a notebook plus one cell printing `report` (a JSON-able expression) in the given project."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import json\nprint({RESULT!r} + json.dumps({report}))"))
    env = medbench_env(settings)
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = NotebookClient(
        nb, km=manager, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(settings.root)}}
    )
    client.execute(env=env)
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


def figures(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs(nb))


def text(nb: nbformat.NotebookNode) -> str:
    parts = [output.get("text", "") for output in outputs(nb)]
    parts += [output.get("data", {}).get(kind, "") for output in outputs(nb) for kind in ("text/plain", "text/html")]
    return "\n".join(parts)


def result(nb: nbformat.NotebookNode) -> Any:
    lines = [line for line in text(nb).splitlines() if line.startswith(RESULT)]
    assert len(lines) == 1, "the appended result cell printed nothing"
    return json.loads(lines[0].removeprefix(RESULT))


@pytest.mark.slow
def test_experiment_exec_runs_its_batch_and_shows_the_leaderboard(settings: Settings, kernel_dir: Path) -> None:
    nb = execute("experiment_exec", settings, kernel_dir, "[entry['id'] for entry in entries]")
    logged = ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()
    assert [entry["id"] for entry in logged] == result(nb)
    assert sorted(entry["benchmark"]["loss"] for entry in logged) == ["BCE", "WBCE"]
    assert {(e["status"], e["benchmark"]["image_size"], e["epochs_run"]) for e in logged} == {("completed", 32, 2)}
    dry_run_cell = next(cell for cell in nb.cells if "item.check()" in cell.source)
    dry_run = "".join(output["text"] for output in dry_run_cell.outputs if output.get("name") == "stdout").split()
    assert dry_run == [entry["name"] for entry in logged]
    shown = text(nb)
    assert all(entry["id"] in shown for entry in logged) and "val mean AUROC" in shown
    assert figures(nb) == 1


@pytest.mark.slow
def test_reevaluation_reevaluates_every_epoch_and_plots_them(notebook_project: Settings, kernel_dir: Path) -> None:
    nb = execute(
        "reevaluation",
        notebook_project,
        kernel_dir,
        "{'run_ids': run_ids, 'difference': check['largest difference'].tolist()}",
    )
    shown = result(nb)
    run_ids = sorted(entry["id"] for entry in all_entries(notebook_project.logs_dir))
    assert sorted(shown["run_ids"]) == run_ids
    assert max(shown["difference"]) < 1e-6, "re-evaluated mean AUROC differs from the logged one"
    assert (
        sorted(entry["id"] for entry in ExperimentLog(notebook_project.logs_dir / REEVALUATION_LOG).read()) == run_ids
    )
    epochs = ExperimentLog(notebook_project.logs_dir / EPOCH_REEVALUATION_LOG).read()
    assert sorted((entry["id"], entry["epoch_model"]) for entry in epochs) == [(i, e) for i in run_ids for e in (1, 2)]
    assert figures(nb) == 1


@pytest.mark.slow
def test_plot_roc_chooses_thresholds_on_validation_and_reports_test(
    notebook_project: Settings, kernel_dir: Path
) -> None:
    nb = execute(
        "plot_roc",
        notebook_project,
        kernel_dir,
        "{'run': RUN_ID, 'method': METHOD, 'table': thresholds.reset_index().to_dict('records')}",
    )
    shown = result(nb)
    assert shown["method"] == "youden"
    assert shown["run"] == leaderboard(all_entries(notebook_project.logs_dir))["run"].iat[0]
    run_dir = next(notebook_project.models_dir.glob(f"*/{shown['run']}"))
    _, val_true, val_pred, classes = read_predictions(run_dir / "predictions" / "val.csv")
    _, test_true, test_pred, _ = read_predictions(run_dir / "predictions" / "test.csv")
    rows = {row["class"]: row for row in shown["table"]}
    assert list(rows) == list(classes) and {row["chosen on"] for row in rows.values()} == {"val"}
    chosen = 0
    for column, name in enumerate(classes):
        labels = val_true[:, column][~np.isnan(val_true[:, column])]
        if not (labels.any() and not labels.all()):
            assert rows[name]["note"].startswith("no threshold"), name
            continue
        on_val = choose_threshold(val_true[:, column], val_pred[:, column], "youden")
        on_test = operating_point(test_true[:, column], test_pred[:, column], on_val.threshold)
        assert isinstance(on_val, OperatingPoint) and rows[name]["threshold"] == on_val.threshold, name
        assert rows[name]["val sensitivity"] == pytest.approx(on_val.sensitivity)
        for rate in ("sensitivity", "specificity"):
            expected, got = getattr(on_test, rate), rows[name][f"test {rate}"]
            assert np.isnan(got) if expected is None else got == pytest.approx(expected), (name, rate)
        chosen += 1
    assert chosen >= 1
    assert figures(nb) == 2


@pytest.mark.slow
def test_compare_experiments_groups_runs_by_loss(notebook_project: Settings, kernel_dir: Path) -> None:
    nb = execute(
        "compare_experiments",
        notebook_project,
        kernel_dir,
        "{'runs': runs['run'].tolist(), 'by_loss': runs.groupby('loss')['val_auroc'].mean().to_dict()}",
    )
    shown = result(nb)
    entries = all_entries(notebook_project.logs_dir)
    assert sorted(shown["runs"]) == sorted(entry["id"] for entry in entries)
    expected = {entry["benchmark"]["loss"]: entry["val"]["macro"]["auroc"] for entry in entries}
    assert shown["by_loss"] == pytest.approx(expected)
    assert figures(nb) == 1

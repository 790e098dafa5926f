"""`medbench report`: self-contained HTML pages of real runs, opened in headless Chromium through Playwright.

Three tiny runs (two multi-label demo runs, one multi-class shapes run; 32 px, 1-2 epochs) are trained
once per module. Their pages must load without a console or page error, without a single request
besides the page itself, with every image decoded, and with AUROC cells equal to scikit-learn's on the
runs' own predictions files.

Set MEDBENCH_REPORT_SCREENSHOT=<file.png> to also save a screenshot of the first run's page (see
docs/screenshot.py for the README's, taken of a real demo run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.cli import main
from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, register_dataset
from medbench.demo import write_demo_dataset
from medbench.errors import ConfigError
from medbench.experiment import Experiment
from medbench.metrics.thresholds import OperatingPoint, choose_thresholds
from medbench.report import write_reports
from medbench.report.markup import document, escape, table
from medbench.runs.predictions import read_predictions
from medbench.runs.saved_run import SavedRun
from medbench.settings import Settings

MULTILABEL = ("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam", "demo_WBCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")
MULTICLASS = "shapes_CCE_E1_B8_C0_N3_D32_DS602020_1LR3_LF5_Adam"
SHAPES = ("Circle", "Square", "Stripes")


def _shape(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    image = rng.integers(0, 50, (size, size), dtype=np.uint8)
    x, y = (int(value) for value in rng.integers(9, size - 9, 2))
    if kind == "Circle":
        cv2.circle(image, (x, y), 6, 230, -1)
    elif kind == "Square":
        cv2.rectangle(image, (x - 6, y - 6), (x + 6, y + 6), 230, -1)
    else:
        image[:, ::5] = 230
    return image


def _write_shapes(root: Path) -> DatasetSpec:
    """A one-hot dataset of 60 images (30 patients), one shape per image."""
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(5)
    rows = []
    for index in range(60):
        kind = SHAPES[index % 3]
        name = f"p{index // 2:03d}_{index % 2}"
        cv2.imwrite(str(root / "img" / f"{name}.png"), _shape(kind, rng))
        rows.append([name, *("1" if kind == shape else "0" for shape in SHAPES)])
    pd.DataFrame(rows, columns=["image", *SHAPES]).to_csv(root / "gt.csv", index=False)
    fields = {"format": "onehot", "root": "shapes", "train": "gt.csv", "image_dir": "img", "image_extension": "png"}
    return DatasetSpec(name="shapes", patient_pattern=r"(p\d+)_", classes=SHAPES, **fields)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[SavedRun]]]:
    """Settings and three trained runs: two multi-label demo runs and a multi-class one (the last)."""
    root = tmp_path_factory.mktemp("report")
    write_demo_dataset(root / "data" / "demo", n_train_patients=40, n_valid_patients=12, seed=2, size=(64, 64))
    settings = Settings(root, root / "data", root / "models", root / "logs", root / "weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
        register_dataset(_write_shapes(root / "data" / "shapes"))
        runs = []
        for name in (*MULTILABEL, MULTICLASS):
            experiment = Experiment(ExperimentSpec(name, "2D.SmallCNN", ExperimentOptions(tensorboard=False)), settings)
            experiment.run()
            runs.append(SavedRun.load(experiment.run_dir))
        yield settings, runs


@pytest.fixture(scope="module")
def pages(project: tuple[Settings, list[SavedRun]]) -> dict[str, Path]:
    """The pages: "multilabel" (first run), "multiclass" and "comparison" (of the two multi-label runs)."""
    settings, runs = project
    out = settings.root / "reports"
    first, second, comparison = write_reports(settings, [runs[0].run_id, runs[1].run_id], out, compare=True)
    (multiclass,) = write_reports(settings, [runs[2].run_id], out)
    assert first.name == f"{runs[0].run_id}.html" and comparison.name == "comparison.html"
    return {"multilabel": first, "second": second, "comparison": comparison, "multiclass": multiclass}


def _open(browser, path: Path) -> tuple[object, dict[str, list[str]]]:  # type: ignore[no-untyped-def]
    """The page loaded from `path`, and what it logged: console errors, page errors, requests."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen: dict[str, list[str]] = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda message: seen["console"].append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def _auroc_cells(page) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """() => [...document.querySelectorAll('td[data-metric="auroc"]')].map(cell => ({
            run: cell.dataset.run || '', split: cell.dataset.split, name: cell.dataset.class,
            text: (cell.querySelector('span.auroc') || {textContent: ''}).textContent }))"""
    )


def _sklearn_aurocs(run: SavedRun, part: str) -> dict[str, float | None]:
    """scikit-learn's AUROC of each class (masked labels dropped; None with one label only) and their mean, from
    the run's predictions file."""
    _, targets, scores, classes = read_predictions(run.run_dir.predictions_path(part))
    values: dict[str, float | None] = {}
    for j, name in enumerate(classes):
        known = ~np.isnan(targets[:, j])
        labels = targets[known, j]
        values[name] = roc_auc_score(labels, scores[known, j]) if len(set(labels)) == 2 else None
    values["macro"] = float(np.mean([value for value in values.values() if value is not None]))
    return values


def _check(cell: dict[str, str], expected: float | None) -> None:
    if expected is None:
        assert cell["text"] == "", cell  # a dash titled with the reason
    else:
        assert float(cell["text"]) == pytest.approx(expected, abs=5.1e-5), cell


@pytest.mark.slow
@pytest.mark.parametrize("which", ["multilabel", "multiclass", "comparison"])
def test_a_page_loads_in_chromium_without_errors_or_requests(browser, pages: dict[str, Path], which: str) -> None:
    page, seen = _open(browser, pages[which])
    images = page.evaluate("() => [...document.images].map(image => [image.complete, image.naturalWidth, image.alt])")
    text = page.evaluate("() => document.body.innerText")
    page.close()
    assert seen["console"] == [] and seen["errors"] == []
    assert seen["requests"] == [pages[which].as_uri()], "the page must request nothing but itself"
    assert len(images) >= (3 if which == "comparison" else 8)
    assert [alt for complete, width, alt in images if not complete or width == 0] == []
    html = pages[which].read_text(encoding="utf-8")
    assert "<script" not in html.lower() and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    if which == "multiclass":
        assert "confusion matrix" in text and "Top-1 accuracy" in text
    if which != "comparison":
        assert "Training curves" in text and "Grad-CAM" in text and "macro" in text


@pytest.mark.slow
@pytest.mark.parametrize("which", ["multilabel", "multiclass"])
def test_the_auroc_cells_are_scikit_learns_on_the_runs_predictions(
    browser, project: tuple[Settings, list[SavedRun]], pages: dict[str, Path], which: str
) -> None:
    run = project[1][0 if which == "multilabel" else 2]
    page, _ = _open(browser, pages[which])
    cells = _auroc_cells(page)
    page.close()
    expected = {part: _sklearn_aurocs(run, part) for part in ("val", "test")}
    assert len(cells) == 2 * (len(run.classes) + 1)
    for cell in cells:
        _check(cell, expected[cell["split"]][cell["name"]])


@pytest.mark.slow
def test_the_comparison_shows_every_runs_aurocs(
    browser, project: tuple[Settings, list[SavedRun]], pages: dict[str, Path]
) -> None:
    runs = project[1][:2]
    page, _ = _open(browser, pages["comparison"])
    links = page.evaluate("() => [...document.querySelectorAll('a')].map(link => link.getAttribute('href'))")
    cells = _auroc_cells(page)
    page.close()
    assert links == [f"{run.run_id}.html" for run in runs]
    for run in runs:
        expected = {part: _sklearn_aurocs(run, part) for part in ("val", "test")}
        mine = [cell for cell in cells if cell["run"] == run.run_id]
        assert len(mine) == 2 + 2 * (len(run.classes) + 1)  # the runs table's two macros, then both class tables
        for cell in mine:
            _check(cell, expected[cell["split"]][cell["name"]])
    if os.environ.get("MEDBENCH_REPORT_SCREENSHOT"):
        shot = browser.new_page(viewport={"width": 1200, "height": 900})
        shot.goto(pages["multilabel"].as_uri())
        shot.screenshot(path=os.environ["MEDBENCH_REPORT_SCREENSHOT"], full_page=True)
        shot.close()


@pytest.mark.slow
def test_thresholds_are_chosen_on_validation_and_applied_to_test(
    project: tuple[Settings, list[SavedRun]], pages: dict[str, Path]
) -> None:
    run = project[1][0]
    html = pages["multilabel"].read_text(encoding="utf-8")
    _, targets, scores, classes = read_predictions(run.run_dir.predictions_path("val"))
    chosen = choose_thresholds(targets, scores, classes, "youden")
    shown = re.findall(r'<span title="([^"]*)">([0-9.]+)</span>', html)
    expected = [f"{point.threshold:.3f}" for point in chosen.values() if isinstance(point, OperatingPoint)]
    assert [value for title, value in shown if title.startswith("validation")] == expected * 2  # val table, test table


@pytest.mark.slow
def test_the_command_line_writes_the_pages(
    project: tuple[Settings, list[SavedRun]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    settings, runs = project
    for key, folder in (("ROOT", settings.root), ("DATA_DIR", settings.data_dir), ("MODELS_DIR", settings.models_dir)):
        monkeypatch.setenv(f"MEDBENCH_{key}", str(folder))
    monkeypatch.setenv("MEDBENCH_LOGS_DIR", str(settings.logs_dir))
    monkeypatch.delenv("MEDBENCH_GCS_BUCKET", raising=False)
    assert main(["report", runs[0].run_id, "--out", str(tmp_path), "--no-gradcam", "--bootstrap", "50"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / f"{runs[0].run_id}.html")
    assert "Grad-CAM overlays were not asked for" in (tmp_path / f"{runs[0].run_id}.html").read_text()
    assert main(["report", "20990101T000000Z-000000", "--out", str(tmp_path)]) == 2
    assert "no saved run with id" in capsys.readouterr().err
    assert main(["report", runs[0].run_id, "--compare", "--out", str(tmp_path)]) == 2
    assert "expected at least two runs" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a folder without config.json; expected a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_damaged_runs_are_named_and_a_run_without_a_model_still_gets_its_page(
    project: tuple[Settings, list[SavedRun]], tmp_path: Path
) -> None:
    settings, runs = project
    copy = tmp_path / "copy"
    shutil.copytree(runs[0].run_dir.path, copy)
    (copy / "model.keras").unlink()
    (path,) = write_reports(settings, [str(copy)], tmp_path / "out", n_resamples=50)
    assert "has no model.keras" in path.read_text(encoding="utf-8")

    (copy / "predictions" / "test.csv").write_text("sample_id,true:Atelectasis\nx,2\n")
    with pytest.raises(ConfigError, match=r"run .*test\.csv.*expected"):
        write_reports(settings, [str(copy)], tmp_path / "out")
    (copy / "predictions" / "test.csv").unlink()
    with pytest.raises(ConfigError, match=r"has no predictions/test\.csv; expected the test predictions"):
        write_reports(settings, [str(copy)], tmp_path / "out")
    shutil.copy(runs[0].run_dir.predictions_path("test"), copy / "predictions" / "test.csv")
    (copy / "history.json").write_text("[{")
    with pytest.raises(ConfigError, match=r"history\.json: is not valid JSON"):
        write_reports(settings, [str(copy)], tmp_path / "out")
    (copy / "config.json").write_text(json.dumps({"id": 3}))
    with pytest.raises(ConfigError, match=r"config\.json: has no 'id'"):
        write_reports(settings, [str(copy)], tmp_path / "out")


def test_every_string_is_escaped_and_the_document_forbids_other_sources() -> None:
    hostile = '<script>alert("x")</script>'
    cell = table(["class", "n"], [[hostile, 1]], cell_attributes=[[{"data-class": hostile}, None]])
    assert "<script" not in cell and escape(hostile) in cell and 'data-class="&lt;script&gt;' in cell
    page = document(hostile, [cell])
    assert "<script" not in page and "default-src 'none'; img-src data:" in page

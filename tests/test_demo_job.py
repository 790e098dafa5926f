"""`make demo` end to end: demo data at the demo's difficulty, its batch, re-evaluation, leaderboard and reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbench.demo import DEMO_BENCHMARKS, DEMO_DIFFICULTY, DIFFICULTIES, run_demo
from medbench.demo.dataset import written_difficulty
from medbench.leaderboard import leaderboard
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, ExperimentLog, all_entries


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    root = tmp_path_factory.mktemp("demo-job")
    settings = Settings(
        root=root,
        data_dir=root / "data",
        models_dir=root / "models",
        logs_dir=root / "logs",
        weights_dir=root / "weights",
    )
    return settings, run_demo(settings)


@pytest.mark.slow
def test_the_demo_scores_below_one_and_its_benchmarks_differ(demo_project: tuple[Settings, str]) -> None:
    """At the demo's difficulty the best run scores 0.75-0.95 mean AUROC on validation, and the runs differ."""
    settings, text = demo_project
    assert written_difficulty(settings.data_dir / "demo") == DIFFICULTIES[DEMO_DIFFICULTY]
    board = leaderboard(all_entries(settings.logs_dir), per_class=False)
    assert len(board) == len(DEMO_BENCHMARKS)
    scores = board["val_mean_auroc"].tolist()
    assert 0.75 <= scores[0] <= 0.95, f"best validation mean AUROC {scores[0]:.3f}"
    assert scores[0] - scores[-1] >= 0.02, f"the demo's runs score alike: {scores}"
    for run in board["run"]:
        assert run in text
    epochs = ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG).read()
    assert len(epochs) == sum(benchmark.epochs for benchmark in DEMO_BENCHMARKS)


@pytest.mark.slow
def test_the_demo_writes_a_report_per_run_and_a_comparison_and_prints_their_paths(
    demo_project: tuple[Settings, str],
) -> None:
    settings, text = demo_project
    listed = [Path(line.strip()) for line in text.split("reports (open in a browser):")[1].splitlines() if line.strip()]
    assert len(listed) == len(DEMO_BENCHMARKS) + 1
    assert listed[-1].name == "comparison.html" and all(path.parent == settings.root / "reports" for path in listed)
    for path in listed:
        page = path.read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page

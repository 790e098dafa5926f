"""One bad file is one error: a damaged run folder or log entry is named, and the command goes on with the rest.

Real damaged files in real run folders, every command a real `medbench` process: the exit code, one
`medbench: error:` line naming the damaged path, no traceback, the healthy runs' results, and every
pre-existing file byte-identical (except the re-evaluation logs a re-evaluation is meant to write).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cli_process import run_medbench

from medbench.settings import Settings

BENCHMARK = "demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
COPY_ID = "20990101T000000Z-bbbbbb"
REEVALUATION_LOGS = {"logs/reevaluation_experiments.json", "logs/epoch_reevaluation_experiments.json"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> Path:
    """models/ holding one real two-epoch run (trained once for the module)."""
    from medbench.benchmark.options import ExperimentOptions
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment

    root = tmp_path_factory.mktemp("trained")
    settings = Settings(
        root=root,
        data_dir=demo_data_dir,
        models_dir=root / "models",
        logs_dir=root / "logs",
        weights_dir=root / "weights",
    )
    Experiment(ExperimentSpec(BENCHMARK, options=ExperimentOptions(tensorboard=False)), settings).run()
    return settings.models_dir


def _two_runs(settings: Settings, trained: Path) -> tuple[Path, Path]:
    """The trained run (A) and a copy of it under another run id (B), in this test's models/."""
    shutil.copytree(trained, settings.models_dir)
    (healthy,) = sorted(path.parent for path in settings.models_dir.glob("*/*/config.json"))
    copy = healthy.parent / COPY_ID
    shutil.copytree(healthy, copy)
    for name in ("config.json", "result.json"):
        (copy / name).write_text((copy / name).read_text().replace(healthy.name, COPY_ID))
    return healthy, copy


def _truncate(path: Path, size: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _hand_made_run(settings: Settings, run_id: str, result: str | None = None) -> Path:
    """A run folder with a minimal config.json (and a result.json when given): enough for the logs' commands."""
    folder = settings.models_dir / "SmallCNN_x" / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"id": run_id, "name": "SmallCNN_x"}))
    if result is not None:
        (folder / "result.json").write_text(result)
    return folder


def _entry(run_id: str) -> dict:
    metrics = {"macro": {"auroc": 0.75}, "per_class": {"A": {"auroc": 0.75}}}
    return {"id": run_id, "name": "SmallCNN_x", "status": "completed", "best_epoch": 1, "classes": ["A"]} | {
        "val": metrics,
        "test": metrics,
    }


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _assert_unchanged(before: dict[str, str], root: Path, written: set[str] = frozenset()) -> None:
    after = _tree(root)
    changed = [path for path, digest in before.items() if path not in written and after.get(path) != digest]
    assert changed == [], "pre-existing files changed or removed"


def _error_line(stderr: str) -> str:
    """The one `medbench: error:` line (and no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "medbench: error:" in line]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_reevaluate_names_a_damaged_config_and_evaluates_the_other_run(settings: Settings, trained: Path) -> None:
    healthy, damaged = _two_runs(settings, trained)
    (damaged / "config.json").write_text("{broken")
    # re-evaluation reads neither the history nor the stored predictions: damaging them changes nothing
    (healthy / "history.json").write_text('[{"epoch": 1')
    (healthy / "predictions" / "val.csv").write_bytes(b"\xff\xfe not a csv")
    before = _tree(settings.root)

    for args in (["reevaluate"], ["reevaluate", "--run", healthy.name, "--run", COPY_ID]):
        done = run_medbench(args, settings)
        assert done.returncode == 1, done.stderr[-3000:]
        line = _error_line(done.stderr)
        assert f"{damaged}/config.json: is not valid JSON (line 1, column 2: " in line
        assert "expected the run's configuration written by medbench" in line
        assert line.startswith("medbench: error: skipped 1 damaged item(s), the others were re-evaluated: ")
        assert f"{healthy.name}  val mean AUROC " in done.stdout and COPY_ID not in done.stdout
        _assert_unchanged(before, settings.root, REEVALUATION_LOGS)
    logged = json.loads((settings.logs_dir / "reevaluation_experiments.json").read_text())
    assert [entry["id"] for entry in logged] == [healthy.name]


@pytest.mark.slow
def test_reevaluate_skips_a_truncated_model_and_checkpoint_and_evaluates_everything_else(
    settings: Settings, trained: Path
) -> None:
    healthy, damaged = _two_runs(settings, trained)
    _truncate(damaged / "model.keras")
    _truncate(healthy / "checkpoints" / "epoch-001.keras")
    before = _tree(settings.root)

    done = run_medbench(["reevaluate", "--epochs"], settings)
    assert done.returncode == 1, done.stderr[-3000:]
    line = _error_line(done.stderr)
    assert line.startswith("medbench: error: skipped 2 damaged item(s), the others were re-evaluated: ")
    for path in (damaged / "model.keras", healthy / "checkpoints" / "epoch-001.keras"):
        assert f"{path}: is not a complete Keras model file (truncated or corrupt zip: BadZipFile: " in line
    assert "File not found" not in done.stderr, "not Keras' misleading message"
    assert f"{healthy.name}  val mean AUROC " in done.stdout and COPY_ID not in done.stdout
    epochs = json.loads((settings.logs_dir / "epoch_reevaluation_experiments.json").read_text())
    assert sorted((entry["id"], entry["epoch_model"]) for entry in epochs) == sorted(
        [(healthy.name, 2), (COPY_ID, 1), (COPY_ID, 2)]
    )
    assert [e["id"] for e in json.loads((settings.logs_dir / "reevaluation_experiments.json").read_text())] == [
        healthy.name
    ]
    _assert_unchanged(before, settings.root, REEVALUATION_LOGS)


@pytest.mark.slow
def test_predict_of_a_damaged_run_is_one_error_and_a_healthy_run_is_unaffected(
    settings: Settings, trained: Path, demo_data_dir: Path
) -> None:
    healthy, damaged = _two_runs(settings, trained)
    _truncate(damaged / "model.keras")
    image = str(next(demo_data_dir.glob("demo/**/*.jpg")))
    before = _tree(settings.root)

    refused = run_medbench(["predict", COPY_ID, image], settings)
    assert refused.returncode == 2
    line = _error_line(refused.stderr)
    assert line.startswith(f"medbench: error: {damaged}/model.keras: is not a complete Keras model file (")
    assert "expected a .keras model as medbench saves it" in line and refused.stdout == ""

    (damaged / "config.json").write_text("{broken")
    before = _tree(settings.root)
    for run in (COPY_ID, str(damaged)):
        refused = run_medbench(["predict", run, image], settings)
        assert refused.returncode == 2
        assert "config.json: is not valid JSON (line 1, column 2: " in _error_line(refused.stderr)

    predicted = run_medbench(["predict", healthy.name, image], settings)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert predicted.stdout.splitlines()[1].startswith(image + ",")
    _assert_unchanged(before, settings.root)


def test_leaderboard_lists_the_good_entries_and_names_each_bad_one(settings: Settings) -> None:
    damaged = _hand_made_run(settings, "20260101T000000Z-cccccc")
    (damaged / "config.json").write_text("[1, 2")
    bad_metrics = _entry("wrong-metrics") | {"val": [0.5]}
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps([_entry("good"), 5, {"name": "no id"}, bad_metrics]))
    before = _tree(settings.root)

    done = run_medbench(["leaderboard"], settings)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith("medbench: error: skipped 4 damaged item(s), the others are listed: ")
    assert f"{log}: entry 2 of 4: is a JSON int, not an object; expected an experiment entry" in line
    assert f"{log}: entry 3 of 4: has no 'id' (a non-empty string)" in line
    assert f"{log}: entry 4 of 4: 'val' is a JSON list, not an object" in line
    assert f"{damaged}/config.json: is not valid JSON (line 1, column 6: " in line
    assert "good" in done.stdout and "0.7500" in done.stdout and "wrong-metrics" not in done.stdout
    _assert_unchanged(before, settings.root)


def test_validate_moves_the_good_entries_and_leaves_the_bad_ones_in_place(settings: Settings) -> None:
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.parent.mkdir(parents=True)
    bad = [5, {"name": "no id"}]
    log.write_text(json.dumps([bad[0], _entry("good"), bad[1]]))

    done = run_medbench(["validate"], settings)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert f"{log}: entry 1 of 3: is a JSON int, not an object" in line
    assert f"{log}: entry 3 of 3: has no 'id' (a non-empty string)" in line and "(left in place)" in line
    assert "validated 1 experiment(s)" in done.stdout
    assert json.loads(log.read_text()) == bad, "the bad entries stay, unchanged"
    assert [e["id"] for e in json.loads((settings.logs_dir / "experiment-log.json").read_text())] == ["good"]


def test_a_log_that_is_not_json_is_named_and_never_overwritten(settings: Settings) -> None:
    _hand_made_run(settings, "20260101T000000Z-aaaaaa", json.dumps(_entry("20260101T000000Z-aaaaaa")))
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.parent.mkdir(parents=True)
    log.write_bytes(b'[{"id": "x"} cut here')
    before = _tree(settings.root)

    for args in (["validate"], ["repair-logs"], ["leaderboard"]):
        done = run_medbench(args, settings)
        assert done.returncode == 2, args
        assert _error_line(done.stderr).startswith(f"medbench: error: {log}: not valid JSON (")
        _assert_unchanged(before, settings.root)


def test_repair_logs_names_a_damaged_result_and_config_and_logs_the_other_runs(settings: Settings) -> None:
    good = "20260101T000000Z-aaaaaa"
    _hand_made_run(settings, good, json.dumps(_entry(good)))
    cut = _hand_made_run(settings, "20260102T000000Z-bbbbbb", '{"id": "20260102T000000Z-bbbbbb", "val"')
    no_id = _hand_made_run(settings, "20260103T000000Z-cccccc", "[]")
    broken = _hand_made_run(settings, "20260104T000000Z-dddddd", json.dumps(_entry("20260104T000000Z-dddddd")))
    (broken / "config.json").write_bytes(b"\xff\xfe")
    before = _tree(settings.root)

    done = run_medbench(["repair-logs"], settings)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith("medbench: error: skipped 3 damaged item(s), the other runs were checked: ")
    assert f"{cut}/result.json: is not valid JSON (line 1, column 40: " in line
    assert f"{no_id}/result.json: is a JSON list, not an object; expected the run's result written by medbench" in line
    assert f"{broken}/config.json: is not UTF-8 text (" in line
    assert f"logged 1 completed run(s) missing from the logs: {good}" in done.stdout
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    assert [entry["id"] for entry in json.loads(log.read_text())] == [good]
    _assert_unchanged(before, settings.root)


def test_a_damaged_log_entry_is_kept_and_named_while_missing_runs_are_logged_beside_it(settings: Settings) -> None:
    good = "20260101T000000Z-aaaaaa"
    _hand_made_run(settings, good, json.dumps(_entry(good)))
    log = settings.logs_dir / "unvalidated-experiment-log.json"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps([5, {"name": "no id"}]))

    done = run_medbench(["repair-logs"], settings)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith("medbench: error: skipped 2 damaged item(s), the other runs were checked: ")
    assert f"{log}: entry 1 of 2: is a JSON int, not an object; expected an experiment entry" in line
    assert f"{log}: entry 2 of 2: has no 'id' (a non-empty string); expected an experiment entry" in line
    assert line.count("(left in place)") == 2
    assert f"logged 1 completed run(s) missing from the logs: {good}" in done.stdout
    assert json.loads(log.read_text()) == [5, {"name": "no id"}, _entry(good)], "the damaged entries kept as they were"

    again = run_medbench(["repair-logs"], settings)
    assert again.returncode == 1 and "logged 0 completed run(s)" in again.stdout


def test_a_run_log_write_keeps_a_damaged_entry_of_the_log(tmp_path: Path) -> None:
    from medbench.tracking.logs import ExperimentLog

    log = ExperimentLog(tmp_path / "unvalidated-experiment-log.json")
    log.path.write_text(json.dumps([5, {"name": "no id"}, _entry("20260101T000000Z-aaaaaa")]))
    log.append(_entry("20260102T000000Z-bbbbbb"))
    log.upsert(_entry("20260101T000000Z-aaaaaa") | {"best_epoch": 2})
    items = json.loads(log.path.read_text())
    assert items[:2] == [5, {"name": "no id"}]
    assert [(item["id"], item["best_epoch"]) for item in items[2:]] == [
        ("20260102T000000Z-bbbbbb", 1),
        ("20260101T000000Z-aaaaaa", 2),
    ]
    assert log.ids() == {"20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("history", "problem"),
    [
        ('[{"epoch": 1, "chec', "is not valid JSON (line 1, column 15: Unterminated string starting at)"),
        ("[5]", "row 1 is a JSON int, not an object"),
        ('[{"epoch": 1, "checkpoint": "../../../x.keras"}]', "row 1 names checkpoint '../../../x.keras'"),
    ],
    ids=["cut", "not-rows", "checkpoint-outside"],
)
def test_an_unfinished_run_with_a_damaged_history_is_not_resumed(
    settings: Settings, trained: Path, history: str, problem: str
) -> None:
    healthy, copy = _two_runs(settings, trained)
    shutil.rmtree(copy)
    for name in ("result.json", "model.keras"):
        (healthy / name).unlink()
    (healthy / "history.json").write_text(history)
    before = _tree(settings.root)

    done = run_medbench(["exec", BENCHMARK, "--option", "tensorboard=false"], settings)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    listing = done.stderr[done.stderr.index("medbench: error: 1 of 1 experiment(s) failed") :]
    assert f"{healthy}/history.json: {problem}" in listing
    assert "cannot be resumed from it: start it over with `medbench exec --rerun` (this folder is left as it is)" in (
        " ".join(listing.split())
    )
    _assert_unchanged(before, settings.root, written={"logs/failed-experiment-log.json"})


def test_merge_logs_merges_the_good_entries_and_names_the_damaged_ones(tmp_path: Path, settings: Settings) -> None:
    first, second, merged = tmp_path / "shard-0", tmp_path / "shard-1", tmp_path / "merged"
    for folder in (first, second):
        folder.mkdir()
    (first / "unvalidated-experiment-log.json").write_text(json.dumps([_entry("20260101T000000Z-aaaaaa"), 5]))
    (second / "unvalidated-experiment-log.json").write_text(
        json.dumps([{"name": "no id"}, _entry("20260102T000000Z-bbbbbb")])
    )
    epoch = {"id": "20260101T000000Z-aaaaaa", "name": "SmallCNN_x"}  # no epoch_model
    (second / "epoch_reevaluation_experiments.json").write_text(json.dumps([epoch]))
    before = _tree(tmp_path)

    done = run_medbench(["merge-logs", str(first), str(second), "--into", str(merged)], settings)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith("medbench: error: skipped 3 damaged item(s), the others were merged: ")
    assert f"{first}/unvalidated-experiment-log.json: entry 2 of 2: is a JSON int, not an object" in line
    assert f"{second}/unvalidated-experiment-log.json: entry 1 of 2: has no 'id' (a non-empty string)" in line
    assert f"{second}/epoch_reevaluation_experiments.json: entry 1 of 1: lacks a field its log is keyed by" in line
    assert line.count("(not merged)") == 3
    ids = [entry["id"] for entry in json.loads((merged / "unvalidated-experiment-log.json").read_text())]
    assert ids == ["20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"]
    _assert_unchanged(before, tmp_path)


def test_merge_logs_with_a_source_log_that_is_not_json_writes_nothing(tmp_path: Path, settings: Settings) -> None:
    first, second, merged = tmp_path / "shard-0", tmp_path / "shard-1", tmp_path / "merged"
    for folder in (first, second):
        folder.mkdir()
    (first / "unvalidated-experiment-log.json").write_text(json.dumps([_entry("20260101T000000Z-aaaaaa")]))
    (second / "reevaluation_experiments.json").write_text("[{cut")

    done = run_medbench(["merge-logs", str(first), str(second), "--into", str(merged)], settings)
    assert done.returncode == 2
    assert _error_line(done.stderr).startswith(
        f"medbench: error: {second}/reevaluation_experiments.json: not valid JSON"
    )
    assert not merged.exists() or not any(merged.iterdir()), "nothing merged before the damaged source was read"

"""RunDir and SavedRun: the run folder's layout and IO, the lock, the upload list, the write guard (no TensorFlow)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError, StorageError
from medbench.runs import RunDir, SavedRun, find_runs, saved_runs
from medbench.runs.run_dir import checkpoint_name

SPEC = ExperimentSpec("demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")


def _run(models: Path, run_id: str = "20260101T000000Z-aaaaaa", spec: ExperimentSpec = SPEC) -> RunDir:
    run_dir = RunDir(models / spec.name / run_id)
    run_dir.write_config({"id": run_id, "name": spec.name, **spec.to_dict(), "classes": ["A", "B"]})
    return run_dir


def test_paths_follow_the_documented_layout(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "SmallCNN_x" / "run-1")
    assert run_dir.run_id == "run-1" and run_dir.parent == tmp_path / "SmallCNN_x"
    assert run_dir.config_path == tmp_path / "SmallCNN_x" / "run-1" / "config.json"
    assert run_dir.checkpoint_path(3) == run_dir / "checkpoints" / "epoch-003.keras"
    assert run_dir.predictions_path("val") == run_dir / "predictions" / "val.csv"
    assert run_dir.model_path.name == "model.keras" and run_dir.result_path.name == "result.json"
    assert (
        run_dir.tensorboard_dir.name == "tensorboard" and run_dir.lock_path == tmp_path / "SmallCNN_x" / ".run-1.lock"
    )
    assert run_dir == tmp_path / "SmallCNN_x" / "run-1" and run_dir != tmp_path
    assert run_dir.relative(run_dir.checkpoint_path(12)) == checkpoint_name(12) == "checkpoints/epoch-012.keras"


def test_config_history_result_and_predictions_round_trip(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    assert run_dir.exists() and run_dir.has_config() and not run_dir.is_complete()
    assert run_dir.read_history() == []
    rows = [{"epoch": 1, "checkpoint": checkpoint_name(1)}, {"epoch": 2, "checkpoint": checkpoint_name(2)}]
    run_dir.write_history(rows)
    run_dir.checkpoint_path(1).parent.mkdir()
    run_dir.checkpoint_path(1).write_bytes(b"weights")
    assert run_dir.read_history() == rows
    assert run_dir.completed_history() == rows[:1], "an epoch without its checkpoint is not complete"
    targets = np.array([[1.0, np.nan], [0.0, 1.0]])
    predictions = np.array([[0.25, 0.5], [0.125, 0.875]])
    run_dir.write_predictions("val", ("A", "B"), ["s1", "s2"], targets, predictions)
    ids, read_targets, read_predictions, classes = run_dir.read_predictions("val")
    assert ids == ["s1", "s2"] and classes == ("A", "B")
    np.testing.assert_array_equal(read_targets, targets)
    np.testing.assert_array_equal(read_predictions, predictions)
    run_dir.write_result({"id": run_dir.run_id})
    assert run_dir.is_complete() and run_dir.read_result() == {"id": run_dir.run_id}


def test_best_checkpoint_becomes_the_model_byte_for_byte(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    for epoch in (1, 2, 3):
        path = run_dir.checkpoint_path(epoch)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"epoch {epoch}".encode())
    (run_dir / "checkpoints" / "epoch-x.keras").write_bytes(b"not a checkpoint name")
    assert [epoch for epoch, _ in run_dir.checkpoints()] == [1, 2, 3]
    assert run_dir.keep_as_model(2) == run_dir.checkpoint_path(2)
    assert run_dir.model_path.read_bytes() == b"epoch 2"


def test_partial_checkpoints_are_removed_and_finished_ones_kept(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    run_dir.checkpoint_path(1).parent.mkdir()
    run_dir.checkpoint_path(1).write_bytes(b"done")
    orphan = run_dir / "checkpoints" / ".epoch-002.keras.1a2b3c4d.tmp.keras"
    orphan.write_bytes(b"half")
    run_dir.remove_partial_checkpoints()
    assert not orphan.exists() and run_dir.checkpoint_path(1).exists()


def test_upload_list_names_what_exists(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    for epoch in (1, 2):
        run_dir.checkpoint_path(epoch).parent.mkdir(exist_ok=True)
        run_dir.checkpoint_path(epoch).write_bytes(b"w")
    run_dir.write_history([])
    run_dir.write_predictions("test", ("A",), ["s"], np.ones((1, 1)), np.ones((1, 1)))
    assert run_dir.upload_files(2) == [
        "config.json",
        "history.json",
        "checkpoints/epoch-002.keras",
        "predictions/test.csv",
    ]
    assert run_dir.upload_files(None, all_checkpoints=True)[2:4] == [checkpoint_name(1), checkpoint_name(2)]
    assert "checkpoints/epoch-009.keras" not in run_dir.upload_files(9)


def test_a_second_holder_of_the_lock_is_refused(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "SmallCNN_x" / "run-1")
    with run_dir.exclusive():
        assert run_dir.lock_path.exists()
    run_dir.parent.mkdir(exist_ok=True)
    with FileLock(run_dir.lock_path), pytest.raises(ConfigError, match="run run-1 is being run by another process"):
        with run_dir.exclusive():
            pass


def test_a_full_disk_becomes_one_storage_error_naming_what_is_saved(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "SmallCNN_x" / "run-1")
    with pytest.raises(StorageError) as caught, run_dir.guard_writes(lambda: 2):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "history.json"))
        except OSError as error:
            raise RuntimeError("a library wrapped it") from error
    message = str(caught.value)
    assert "history.json: No space left on device" in message and "epochs 1–2 are saved" in message
    assert "resume run run-1" in message
    with pytest.raises(KeyError), run_dir.guard_writes(lambda: 0):
        raise KeyError("not a storage problem")


def test_saved_runs_are_found_by_id_and_by_experiment(tmp_path: Path) -> None:
    first = _run(tmp_path, "20260101T000000Z-aaaaaa")
    other_spec = ExperimentSpec("demo_WBCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")
    second = _run(tmp_path, "20260102T000000Z-bbbbbb", other_spec)
    broken = tmp_path / SPEC.name / "20260103T000000Z-cccccc"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert [run.run_id for run in saved_runs(tmp_path)] == [first.run_id, second.run_id]
    assert [run.run_id for run in saved_runs(tmp_path, other_spec.name)] == [second.run_id]
    [found] = find_runs(tmp_path, [second.run_id])
    assert found.spec == other_spec and found.run_dir == second and found.classes == ("A", "B")
    assert SavedRun.load(first.path).spec == SPEC
    with pytest.raises(ConfigError, match="no saved run with id"):
        find_runs(tmp_path, ["20990101T000000Z-ffffff"])


def test_a_config_written_before_the_spec_existed_still_reads(tmp_path: Path) -> None:
    """config.json keeps benchmark/architecture/options as top-level keys, so older runs load as specs."""
    folder = tmp_path / SPEC.name / "20251101T000000Z-old000"
    folder.mkdir(parents=True)
    old = {
        "id": folder.name,
        "name": SPEC.name,
        "benchmark": SPEC.benchmark.to_dict(),
        "architecture": "2D.SmallCNN",
        "options": json.loads(json.dumps(SPEC.options.to_dict())),
        "classes": ["A"],
    }
    (folder / "config.json").write_text(json.dumps(old))
    assert SavedRun.load(folder).spec == SPEC


def test_a_run_whose_config_holds_no_readable_spec_is_not_made_from_any(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    config = run_dir.read_config()
    config["options"]["no_such_option"] = 1
    run_dir.write_config(config)
    [saved] = saved_runs(tmp_path)
    assert not saved.made_from(SPEC)
    assert SavedRun.load(_run(tmp_path, "20260101T000000Z-bbbbbb").path).made_from(SPEC)

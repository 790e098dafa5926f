"""Shards of one batch run as parallel processes; their logs hold every experiment exactly once."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cli_process import run_medbench, start_medbench

from medbench.cli import main
from medbench.experiment_exec import load_batch
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, all_entries

pytestmark = pytest.mark.slow

BATCH = """\
architectures: [2D.SmallCNN]
grid:
  - base: {dataset: demo, epochs: 1, n_classes: 5, image_size: 32, learning_rate: 0.001, split: [80, 20]}
    vary: {loss: [BCE, WBCE], batch_size: [16, 32]}
"""


def _batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.yaml"
    path.write_text(BATCH)
    return path


def _run_shards(batch: Path, settings_per_shard: list[Settings]) -> None:
    count = len(settings_per_shard)
    processes = [
        start_medbench(["exec", "--batch", str(batch), "--shard", f"{index}/{count}"], shard_settings)
        for index, shard_settings in enumerate(settings_per_shard)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=400)
        assert process.returncode == 0, stderr[-3000:]


def test_parallel_shards_share_one_log(settings: Settings, tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    names = sorted(item.name for item in load_batch(batch))
    assert len(names) == 4
    _run_shards(batch, [settings, settings])
    entries = json.loads((settings.logs_dir / UNVALIDATED_LOG).read_text())
    assert sorted(entry["name"] for entry in entries) == names
    assert len({entry["id"] for entry in entries}) == 4


def test_shard_logs_merge_with_no_entry_lost(settings: Settings, tmp_path: Path, capsys) -> None:
    batch = _batch(tmp_path)
    shards = [replace(settings, logs_dir=tmp_path / f"logs-shard-{index}") for index in range(2)]
    _run_shards(batch, shards)
    per_shard = [json.loads((shard.logs_dir / UNVALIDATED_LOG).read_text()) for shard in shards]
    assert [len(entries) for entries in per_shard] == [2, 2]

    merged = tmp_path / "logs"
    args = ["merge-logs", *(str(shard.logs_dir) for shard in shards), "--into", str(merged)]
    assert main(args) == 0
    assert main(args) == 0, "merging again must be harmless"
    entries = all_entries(merged)
    assert sorted(entry["id"] for entry in entries) == sorted(e["id"] for shard in per_shard for e in shard)
    assert sorted(entry["name"] for entry in entries) == sorted(item.name for item in load_batch(batch))
    assert len(json.loads((merged / UNVALIDATED_LOG).read_text())) == 4


def test_merge_logs_names_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert main(["merge-logs", str(tmp_path / "nope"), "--into", str(tmp_path / "logs")]) == 2
    assert "nope" in capsys.readouterr().err


def test_shard_retry_skips_what_is_done(settings: Settings, tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    first = run_medbench(["exec", "--batch", str(batch), "--shard", "0/2"], settings)
    assert first.returncode == 0, first.stderr
    again = run_medbench(["exec", "--batch", str(batch), "--shard", "0/2"], settings)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split().count("skipped") == 2
    assert len(json.loads((settings.logs_dir / UNVALIDATED_LOG).read_text())) == 2

"""Unreadable images in a dataset: one error listing them all, or a run without them when allowed."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ImageError
from medbench.experiment import Experiment
from medbench.settings import Settings

BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS701515_1LR3_LF5_Adam"

pytestmark = pytest.mark.slow


@pytest.fixture
def broken_settings(settings: Settings, tmp_path: Path) -> tuple[Settings, list[str]]:
    """A copy of the demo data with three training images broken in three different ways."""
    data_dir = tmp_path / "data"
    shutil.copytree(settings.data_dir / "demo", data_dir / "demo", ignore=shutil.ignore_patterns("cache"))
    root = data_dir / "demo" / "CheXpert-v1.0-small"
    paths = pd.read_csv(root / "train.csv")["Path"].tolist()
    broken = [data_dir / "demo" / path for path in (paths[3], paths[40], paths[77])]
    broken[0].write_bytes(broken[0].read_bytes()[:200])
    broken[1].write_bytes(b"")
    broken[2].write_text("this is not an image")
    return replace(settings, data_dir=data_dir), sorted(str(path) for path in broken)


def test_unreadable_images_stop_the_run_with_one_list(broken_settings: tuple[Settings, list[str]]) -> None:
    settings, broken = broken_settings
    with pytest.raises(ImageError) as caught:
        Experiment(ExperimentSpec(BENCHMARK), settings).run()
    message = str(caught.value)
    assert message.startswith("3 image(s) cannot be read")
    for path in broken:
        assert path in message
    assert not settings.models_dir.exists() or not list(settings.models_dir.rglob("config.json"))


def test_skip_unreadable_runs_without_them(broken_settings: tuple[Settings, list[str]]) -> None:
    settings, broken = broken_settings
    experiment = Experiment(ExperimentSpec(BENCHMARK, options=ExperimentOptions(skip_unreadable=True)), settings)
    entry = experiment.run()
    assert entry["status"] == "completed"
    config = json.loads((experiment.run_dir / "config.json").read_text())
    assert sorted(config["skipped_images"]) == broken
    used = set()
    for part in ("val", "test"):
        used |= set(pd.read_csv(experiment.run_dir / "predictions" / f"{part}.csv")["sample_id"])
    assert not any(path.endswith(sample) for path in broken for sample in used)

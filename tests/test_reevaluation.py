"""Re-evaluation of saved runs and of every saved epoch, each with its own metrics."""

from __future__ import annotations

import json

import pytest

from medbench.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError
from medbench.experiment import Experiment
from medbench.reevaluation import reevaluate
from medbench.runs.saved_run import find_runs
from medbench.settings import Settings
from medbench.tracking.logs import EPOCH_REEVALUATION_LOG, REEVALUATION_LOG, ExperimentLog

pytestmark = pytest.mark.slow

BENCHMARK = Benchmark.from_name("demo_BCE_E3_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")


def test_reevaluation_reproduces_the_logged_metrics_and_each_epoch_its_own(settings: Settings) -> None:
    experiment = Experiment(ExperimentSpec(BENCHMARK, options=ExperimentOptions(tensorboard=False)), settings)
    entry = experiment.run()
    [again] = reevaluate(settings, [entry["id"]], epochs=True, progress=False)

    assert again["val_again"] == entry["val"] and again["test_again"] == entry["test"]
    assert [e["id"] for e in ExperimentLog(settings.logs_dir / REEVALUATION_LOG).read()] == [entry["id"]]

    epochs = ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG).read()
    assert [e["epoch_model"] for e in epochs] == [1, 2, 3]
    history = json.loads((experiment.run_dir / "history.json").read_text())
    for row, epoch_entry in zip(history, epochs):
        # the original copied the last epoch's metrics into every epoch entry
        assert epoch_entry["val"] == row["val"]
    assert len({json.dumps(e["val"], sort_keys=True) for e in epochs}) == 3

    # re-running replaces entries instead of duplicating them
    reevaluate(settings, [entry["id"]], epochs=True, progress=False)
    assert len(ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG).read()) == 3
    assert len(ExperimentLog(settings.logs_dir / REEVALUATION_LOG).read()) == 1


def test_unknown_run_id_is_an_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="no saved run with id"):
        find_runs(settings.models_dir, ["20990101T000000Z-abcdef"])


def test_an_unfinished_run_still_gets_its_epochs_reevaluated(settings: Settings) -> None:
    experiment = Experiment(
        ExperimentSpec(BENCHMARK.with_(epochs=2), options=ExperimentOptions(tensorboard=False)), settings
    )
    entry = experiment.run()
    (experiment.run_dir / "model.keras").unlink()  # as if the process died after its epochs
    assert reevaluate(settings, epochs=True, progress=False) == []
    assert [e["epoch_model"] for e in ExperimentLog(settings.logs_dir / EPOCH_REEVALUATION_LOG).read()] == [1, 2]
    assert not (settings.logs_dir / REEVALUATION_LOG).exists()
    assert entry["id"] == find_runs(settings.models_dir)[0].run_id

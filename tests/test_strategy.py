"""Distribution strategies: a mirrored run on two logical CPU devices, and a one-worker multi-worker run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest
from cli_process import medbench_env

from medbench.benchmark.options import ExperimentOptions
from medbench.errors import ConfigError
from medbench.runs.run_id import is_chief, multiworker_run_id
from medbench.settings import Settings
from medbench.training.distribution import distribution_strategy

pytestmark = pytest.mark.slow

BENCHMARK = "demo_BCE_E2_B16_C0_N5_AugAffine_D32_DS8020_1LR3_LF5_Adam"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from medbench.benchmark import ExperimentOptions, ExperimentSpec
    from medbench.experiment import Experiment
    from medbench.settings import Settings
    from medbench.training.distribution import distribution_strategy
    strategy = sys.argv[2]
    replicas = distribution_strategy(strategy, Settings.from_env().tf_config).num_replicas_in_sync
    spec = ExperimentSpec(sys.argv[1], options=ExperimentOptions(strategy=strategy))
    entry = Experiment(spec, Settings.from_env()).run()
    print(json.dumps({"replicas": replicas, "entry": entry}))
    """
)


def _run(settings: Settings, strategy: str, **extra: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, BENCHMARK, strategy],
        env=medbench_env(settings, **extra),
        cwd=settings.root,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_trains_on_two_devices(settings: Settings) -> None:
    result = _run(settings, "mirrored")
    assert result["replicas"] == 2
    entry = result["entry"]
    assert entry["status"] == "completed" and entry["epochs_run"] == 2
    assert entry["options"]["strategy"] == "mirrored"
    auroc = entry["val"]["macro"]["auroc"]
    assert auroc is not None and 0.0 <= auroc <= 1.0
    history = json.loads((settings.root / entry["storage"]["run_dir"] / "history.json").read_text())
    assert all(row["loss"] == row["loss"] for row in history), "loss is NaN"


def test_multiworker_strategy_with_one_worker(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tf_config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}})
    result = _run(settings, "multiworker", TF_CONFIG=tf_config)
    entry = result["entry"]
    assert entry["status"] == "completed"
    assert entry["id"].startswith("multiworker-")
    logged = json.loads((settings.logs_dir / "unvalidated-experiment-log.json").read_text())
    assert [item["id"] for item in logged] == [entry["id"]]


def test_multiworker_needs_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        distribution_strategy("multiworker")


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ConfigError, match="strategy 'tpu'"):
        ExperimentOptions(strategy="tpu")


def test_only_the_chief_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    first = multiworker_run_id("SmallCNN_x", Settings.from_env().tf_config)
    assert is_chief(Settings.from_env().tf_config)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not is_chief(Settings.from_env().tf_config)
    assert multiworker_run_id("SmallCNN_x", Settings.from_env().tf_config) == first, (
        "all workers must agree on the run id"
    )
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert not is_chief(Settings.from_env().tf_config)


def test_mixed_precision_and_xla_train_and_leave_the_global_policy_alone(settings: Settings) -> None:
    import keras

    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment

    options = ExperimentOptions(mixed_precision="mixed_bfloat16", jit_compile=True, tensorboard=False)
    experiment = Experiment(ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam", options=options), settings)
    entry = experiment.run()
    assert entry["status"] == "completed" and entry["val"]["macro"]["auroc"] is not None
    assert keras.config.dtype_policy().name == "float32"
    model = keras.models.load_model(experiment.run_dir / "model.keras", compile=False)
    policies = {layer.dtype_policy.name for layer in model.layers if layer.weights}
    assert "mixed_bfloat16" in policies
    assert model.output.dtype == "float32"
    with pytest.raises(ConfigError, match="mixed_precision 'fp8'"):
        ExperimentOptions(mixed_precision="fp8")

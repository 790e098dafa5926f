"""GCS storage against a real emulator: outbox, sync with retries, pull, and what happens when the bucket is down."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gcs_emulator import StorageEmulator

from medbench.errors import ConfigError, StorageError
from medbench.runs.run_id import is_folder_name
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, VALIDATED_LOG, ExperimentLog, validate_entries
from medbench.tracking.storage import (
    SyncReport,
    enqueue_run,
    make_client,
    pending_items,
    pull,
    sync,
    upload_run,
)

BUCKET = "medbench-test"
PREFIX = "team/medbench"
BENCHMARK = "demo_BCE_E2_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
CREDENTIAL_VARIABLES = ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A run folder laid out as Experiment.run() writes it, with a small real Keras model (made once per module)."""
    import keras
    import numpy as np

    from medbench.atomic import write_json_atomic

    run_id, name = "20260101T000000Z-abc123", f"SmallCNN_{BENCHMARK}"
    run_dir = tmp_path_factory.mktemp("trained") / "models" / name / run_id
    classes = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
    )
    model.add(keras.layers.Dense(len(classes), activation="sigmoid"))
    (run_dir / "checkpoints").mkdir(parents=True)
    for epoch in (1, 2):
        model.layers[-1].set_weights([w + epoch for w in model.layers[-1].get_weights()])
        model.save(run_dir / "checkpoints" / f"epoch-{epoch:03d}.keras")
    shutil.copyfile(run_dir / "checkpoints" / "epoch-002.keras", run_dir / "model.keras")
    config = {"id": run_id, "name": name, "architecture": "2D.SmallCNN", "classes": classes}
    write_json_atomic(run_dir / "config.json", config)
    write_json_atomic(run_dir / "history.json", [{"epoch": e, "val_mean_auroc": 0.5 + e / 10} for e in (1, 2)])
    (run_dir / "predictions").mkdir()
    rng = np.random.default_rng(0)
    for part in ("val", "test"):
        rows = [f"s{i}," + ",".join(f"{v:.6f}" for v in rng.random(len(classes))) for i in range(20)]
        (run_dir / "predictions" / f"{part}.csv").write_text("sample_id," + ",".join(classes) + "\n" + "\n".join(rows))
    (run_dir / "tensorboard").mkdir()
    (run_dir / "tensorboard" / "events.out").write_bytes(b"not uploaded")
    entry = {
        **config,
        "status": "completed",
        "best_epoch": 2,
        "epochs_run": 2,
        "val": {"macro": {"auroc": 0.7}},
        "test": {"macro": {"auroc": 0.6}},
        "storage": {
            "run_dir": f"models/{name}/{run_id}",
            "model": f"models/{name}/{run_id}/model.keras",
            "remote": None,
        },
    }
    write_json_atomic(run_dir / "result.json", entry)
    return run_dir, entry


@pytest.fixture
def gcs_settings(tmp_path: Path) -> Settings:
    """Private folders (no dataset needed) and the emulator's bucket."""
    root = tmp_path / "project"
    return Settings(root, root / "data", root / "models", root / "logs", root / "weights", None, BUCKET, PREFIX)


@pytest.fixture
def run(trained: tuple[Path, dict[str, Any]], gcs_settings: Settings) -> tuple[Path, dict[str, Any]]:
    """This test's copy of the trained run under its own models/, with its entry in its own unvalidated log."""
    source, entry = trained
    run_dir = gcs_settings.models_dir / source.parent.name / source.name
    shutil.copytree(source, run_dir)
    ExperimentLog(gcs_settings.logs_dir / UNVALIDATED_LOG).append(entry)
    return run_dir, entry


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[StorageEmulator]:
    """A real gcp-storage-emulator (not started yet) that STORAGE_EMULATOR_HOST points to."""
    server = StorageEmulator(BUCKET)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    yield server
    server.stop()


@pytest.fixture
def gcs(emulator: StorageEmulator) -> StorageEmulator:
    emulator.start()
    return emulator


def _objects(settings: Settings) -> dict[str, Any]:
    client = make_client(settings)
    return {blob.name: blob for blob in client.list_blobs(BUCKET, prefix=PREFIX + "/")}


def _uploaded_files(run_dir: Path, entry: dict[str, Any]) -> list[str]:
    best = f"checkpoints/epoch-{entry['best_epoch']:03d}.keras"
    files = ["config.json", "history.json", "model.keras", "result.json", best]
    return sorted(files + [f"predictions/{name}" for name in ("test.csv", "val.csv")])


def test_enqueue_writes_a_manifest_and_touches_no_network(
    run: tuple[Path, dict[str, Any]], gcs_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, entry = run
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing listens: any request would fail
    item = enqueue_run(run_dir, entry, gcs_settings)
    manifest = json.loads(item.read_text())
    assert item.parent == gcs_settings.outbox_dir and item.name == f"{entry['id']}.json"
    assert manifest["run_id"] == entry["id"] and manifest["experiment"] == run_dir.parent.name
    assert sorted(manifest["files"]) == _uploaded_files(run_dir, entry)
    assert manifest["entry"] == entry
    everything = json.loads(enqueue_run(run_dir, entry, gcs_settings, all_checkpoints=True).read_text())
    assert {"checkpoints/epoch-001.keras", "checkpoints/epoch-002.keras"} <= set(everything["files"])
    assert not any(name.startswith("tensorboard") for name in everything["files"])
    assert pending_items(gcs_settings) == [item]
    with pytest.raises(ConfigError, match="run id"):
        enqueue_run(run_dir, {**entry, "id": "../escape"}, gcs_settings)


def test_sync_uploads_every_file_byte_for_byte_and_records_the_remote(
    run: tuple[Path, dict[str, Any]], gcs: StorageEmulator, gcs_settings: Settings
) -> None:
    run_dir, entry = run
    enqueue_run(run_dir, entry, gcs_settings)
    report = sync(gcs_settings, deadline_s=10)
    uri = f"gs://{BUCKET}/{PREFIX}/runs/{run_dir.parent.name}/{entry['id']}"
    assert report == SyncReport(uploaded=[entry["id"]], remote={entry["id"]: uri})
    assert pending_items(gcs_settings) == []
    objects = _objects(gcs_settings)
    run_prefix = f"{PREFIX}/runs/{run_dir.parent.name}/{entry['id']}/"
    assert sorted(name.removeprefix(run_prefix) for name in objects if name.startswith(run_prefix)) == (
        _uploaded_files(run_dir, entry)
    )
    for relative in _uploaded_files(run_dir, entry):
        assert objects[run_prefix + relative].download_as_bytes() == (run_dir / relative).read_bytes(), relative
    assert json.loads((run_dir / "result.json").read_text())["storage"]["remote"] == uri
    logged = ExperimentLog(gcs_settings.logs_dir / UNVALIDATED_LOG).read()
    assert [e["storage"]["remote"] for e in logged] == [uri]
    remote_entry = json.loads(objects[f"{PREFIX}/logs/{entry['id']}.json"].download_as_bytes())
    assert remote_entry["storage"]["remote"] == uri and remote_entry["val"] == entry["val"]


def test_pull_round_trips_into_a_fresh_models_dir_and_the_model_loads(
    run: tuple[Path, dict[str, Any]], gcs: StorageEmulator, gcs_settings: Settings, tmp_path: Path
) -> None:
    import keras

    from medbench.prediction import resolve_run

    run_dir, entry = run
    validate_entries(gcs_settings.logs_dir)  # the remote URI must reach the entry in the validated log too
    enqueue_run(run_dir, entry, gcs_settings)
    assert sync(gcs_settings, deadline_s=10).complete
    assert ExperimentLog(gcs_settings.logs_dir / VALIDATED_LOG).read()[0]["storage"]["remote"].startswith("gs://")

    fresh = replace(gcs_settings, models_dir=tmp_path / "elsewhere" / "models")
    pulled = pull(entry["id"], fresh)
    assert pulled == fresh.models_dir / run_dir.parent.name / entry["id"]
    for relative in _uploaded_files(run_dir, entry):
        assert (pulled / relative).read_bytes() == (run_dir / relative).read_bytes(), relative
    assert [p.name for p in pulled.parent.iterdir()] == [entry["id"]]  # no temporary folder left
    model = keras.models.load_model(pulled / "model.keras", compile=False)
    assert model.output_shape[-1] == len(entry["classes"])
    assert pull(entry["id"], fresh) == pulled  # already local: nothing downloaded again

    third = replace(gcs_settings, models_dir=tmp_path / "third" / "models")
    saved = resolve_run(entry["id"], third)  # `medbench predict RUN_ID` on a machine without the run
    assert saved.run_dir == third.models_dir / run_dir.parent.name / entry["id"]
    assert saved.config["id"] == entry["id"]

    with pytest.raises(ConfigError, match="no run with id 'nope' in gs://medbench-test/team/medbench/runs/"):
        pull("nope", fresh)


def test_bucket_down_keeps_the_outbox_then_bucket_up_empties_it(
    run: tuple[Path, dict[str, Any]],
    emulator: StorageEmulator,
    gcs_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_dir, entry = run
    result_before = (run_dir / "result.json").read_bytes()
    item = upload_run(run_dir, entry, gcs_settings, deadline_s=1.0)  # what the end of Experiment.run() does
    assert item.pending == [entry["id"]] and item.uploaded == [] and item.failed == {}
    assert "unreachable" in (item.warning or "")
    assert any(record.levelno == logging.WARNING and "unreachable" in record.message for record in caplog.records)
    assert [path.stem for path in pending_items(gcs_settings)] == [entry["id"]]
    assert (run_dir / "result.json").read_bytes() == result_before

    emulator.start()
    report = sync(gcs_settings, deadline_s=10)
    assert report.uploaded == [entry["id"]] and report.complete
    assert pending_items(gcs_settings) == []


def test_a_transient_failure_is_retried_until_the_server_comes_up(
    run: tuple[Path, dict[str, Any]],
    emulator: StorageEmulator,
    gcs_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_dir, entry = run
    enqueue_run(run_dir, entry, gcs_settings)
    first_failure = threading.Event()

    class StartOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("retrying"):
                first_failure.set()

    starter = threading.Thread(target=lambda: first_failure.wait(30) and emulator.start())
    handler = StartOnRetry()
    logger = logging.getLogger("medbench.tracking.storage")
    caplog.set_level(logging.INFO, logger=logger.name)
    logger.addHandler(handler)
    try:
        starter.start()
        report = sync(gcs_settings, deadline_s=30)
    finally:
        logger.removeHandler(handler)
        first_failure.set()
        starter.join(30)
    assert first_failure.is_set() and report.retries >= 1
    assert report.uploaded == [entry["id"]] and report.complete


def test_resync_is_idempotent(run: tuple[Path, dict[str, Any]], gcs: StorageEmulator, gcs_settings: Settings) -> None:
    run_dir, entry = run
    enqueue_run(run_dir, entry, gcs_settings)
    assert sync(gcs_settings, deadline_s=10).complete
    before = {name: (blob.generation, blob.md5_hash) for name, blob in _objects(gcs_settings).items()}
    result = (run_dir / "result.json").read_bytes()

    enqueue_run(run_dir, entry, gcs_settings)
    again = sync(gcs_settings, deadline_s=10)
    assert again.uploaded == [entry["id"]] and again.complete
    after = {name: (blob.generation, blob.md5_hash) for name, blob in _objects(gcs_settings).items()}
    assert after == before  # identical objects are not uploaded again
    assert (run_dir / "result.json").read_bytes() == result
    assert [e["id"] for e in ExperimentLog(gcs_settings.logs_dir / UNVALIDATED_LOG).read()] == [entry["id"]]
    assert sync(gcs_settings, deadline_s=10) == SyncReport()


def test_a_broken_item_fails_alone(
    run: tuple[Path, dict[str, Any]], gcs: StorageEmulator, gcs_settings: Settings
) -> None:
    run_dir, entry = run
    other_dir = run_dir.parent / "zzz-other"
    shutil.copytree(run_dir, other_dir)
    broken = enqueue_run(run_dir, entry, gcs_settings)
    enqueue_run(other_dir, {**entry, "id": "zzz-other"}, gcs_settings)
    (run_dir / "model.keras").unlink()
    report = sync(gcs_settings, deadline_s=10)
    assert report.uploaded == ["zzz-other"]
    assert list(report.failed) == [entry["id"]] and "model.keras" in report.failed[entry["id"]]
    assert pending_items(gcs_settings) == [broken]


def test_cli_sync_and_pull(
    run: tuple[Path, dict[str, Any]],
    gcs: StorageEmulator,
    gcs_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from medbench.cli import main

    run_dir, entry = run
    enqueue_run(run_dir, entry, gcs_settings)
    monkeypatch.setenv("MEDBENCH_ROOT", str(gcs_settings.root))
    monkeypatch.setenv("MEDBENCH_LOGS_DIR", str(gcs_settings.logs_dir))
    monkeypatch.setenv("MEDBENCH_MODELS_DIR", str(gcs_settings.root / "pulled"))
    monkeypatch.setenv("MEDBENCH_GCS_BUCKET", BUCKET)
    monkeypatch.setenv("MEDBENCH_GCS_PREFIX", PREFIX)
    assert main(["sync", "--deadline", "10"]) == 0
    assert f"uploaded  {entry['id']}  gs://{BUCKET}/{PREFIX}/runs/" in capsys.readouterr().out
    assert main(["pull", entry["id"]]) == 0
    pulled = Path(capsys.readouterr().out.strip())
    assert (pulled / "model.keras").read_bytes() == (run_dir / "model.keras").read_bytes()
    assert main(["pull", "no-such-run"]) == 2
    assert "medbench: error: no run with id 'no-such-run'" in capsys.readouterr().err


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CREDENTIAL_VARIABLES}
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true")
    return env


def test_missing_credentials_are_named_for_explicit_commands_and_only_warned_after_a_run(
    run: tuple[Path, dict[str, Any]], gcs_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run_dir, entry = run
    env = _without_credentials(tmp_path)
    env.update(MEDBENCH_ROOT=str(tmp_path), MEDBENCH_LOGS_DIR=str(gcs_settings.logs_dir), MEDBENCH_GCS_BUCKET=BUCKET)
    done = subprocess.run(
        [sys.executable, "-m", "medbench.cli", "sync"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "medbench: error: no Google Cloud credentials found for MEDBENCH_GCS_BUCKET='medbench-test'" in done.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in done.stderr

    for key in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        pull(entry["id"], gcs_settings)
    report = upload_run(run_dir, entry, gcs_settings)
    assert report.pending == [entry["id"]] and "MEDBENCH_GCS_BUCKET" in (report.warning or "")
    assert [path.stem for path in pending_items(gcs_settings)] == [entry["id"]]
    with pytest.raises(ConfigError, match="MEDBENCH_GCS_BUCKET is not set"):
        sync(replace(gcs_settings, gcs_bucket=None))


def test_the_emulator_and_credentials_can_come_from_the_env_file(
    run: tuple[Path, dict[str, Any]], gcs: StorageEmulator, gcs_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, entry = run
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    (gcs_settings.root / ".env").write_text(f"STORAGE_EMULATOR_HOST={gcs.url}\n")
    enqueue_run(run_dir, entry, gcs_settings)
    assert sync(gcs_settings, deadline_s=10).uploaded == [entry["id"]]
    assert f"{PREFIX}/logs/{entry['id']}.json" in _objects(gcs_settings)

    (gcs_settings.root / ".env").write_text(f"GOOGLE_APPLICATION_CREDENTIALS={gcs_settings.root / 'missing.json'}\n")
    with pytest.raises(ConfigError, match="missing.json"):
        pull(entry["id"], gcs_settings)


@pytest.mark.slow
def test_an_experiment_uploads_itself_and_a_pulled_copy_predicts_the_same(
    settings: Settings, gcs: StorageEmulator, tmp_path: Path
) -> None:
    import numpy as np

    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment
    from medbench.experiment_data import prepare_data
    from medbench.prediction import predict_images, resolve_run
    from medbench.runs.predictions import read_predictions

    settings = replace(settings, gcs_bucket=BUCKET, gcs_prefix=PREFIX)
    experiment = Experiment(ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), settings)
    entry = experiment.run()
    remote = entry["storage"]["remote"]
    assert remote and remote.startswith(f"gs://{BUCKET}/{PREFIX}/runs/{experiment.name}/{experiment.run_id}")
    assert not list(settings.outbox_dir.glob("*.json")), "the outbox must be empty after a reachable upload"
    assert json.loads((experiment.run_dir / "result.json").read_text())["storage"]["remote"] == remote
    logged = ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()
    assert [item["storage"]["remote"] for item in logged] == [remote]

    elsewhere = replace(settings, models_dir=tmp_path / "other-models")
    pulled = resolve_run(entry["id"], elsewhere)
    assert pulled.run_dir == elsewhere.models_dir / experiment.name / experiment.run_id
    data = prepare_data(experiment.spec, settings.data_dir)
    ids, _, stored, classes = read_predictions(experiment.run_dir / "predictions" / "test.csv")
    frame = predict_images(pulled, data.test.paths[:4], elsewhere)
    np.testing.assert_allclose(frame[list(classes)].to_numpy(), stored[:4], atol=1e-5)


@pytest.mark.slow
def test_an_experiment_with_the_bucket_down_completes_and_sync_sends_it_later(
    settings: Settings, emulator: StorageEmulator
) -> None:
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment import Experiment

    settings = replace(settings, gcs_bucket=BUCKET, gcs_prefix=PREFIX)
    entry = Experiment(ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"), settings).run()
    assert entry["status"] == "completed" and entry["storage"]["remote"] is None
    assert [path.stem for path in settings.outbox_dir.glob("*.json")] == [entry["id"]]
    emulator.start()
    report = sync(settings)
    assert report.complete and report.uploaded == [entry["id"]]
    assert not list(settings.outbox_dir.glob("*.json"))


# gcp-storage-emulator cannot hold object names with '..' components (it drops the connection), which
# real GCS accepts; the names it can hold go through the real client and server, and the rule itself is
# checked on the escaping names below.
@pytest.mark.parametrize("experiment", ["a\\b", "tab\tname"], ids=["backslash", "control-character"])
def test_pull_never_writes_outside_models_whatever_the_bucket_says(
    gcs: StorageEmulator, gcs_settings: Settings, experiment: str
) -> None:
    run_id = "20260101T000000Z-abcdef"
    bucket = make_client(gcs_settings).bucket(BUCKET)
    bucket.blob(f"{PREFIX}/logs/{run_id}.json").upload_from_string(json.dumps({"id": run_id, "name": experiment}))
    for relative in ("config.json", "model.keras"):
        bucket.blob(f"{PREFIX}/runs/{experiment}/{run_id}/{relative}").upload_from_string(b"{}")
    root = gcs_settings.root
    before = sorted(path for path in root.parent.rglob("*"))
    with pytest.raises(StorageError, match="which is not one folder name.*Nothing was downloaded"):
        pull(run_id, gcs_settings, deadline_s=10)
    assert sorted(path for path in root.parent.rglob("*")) == before


def test_an_unreadable_log_object_falls_back_to_listing(
    gcs: StorageEmulator, gcs_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = "20260101T000000Z-abcdef"
    bucket = make_client(gcs_settings).bucket(BUCKET)
    bucket.blob(f"{PREFIX}/logs/{run_id}.json").upload_from_string(b"{not json")
    bucket.blob(f"{PREFIX}/runs/Exp_A/{run_id}/config.json").upload_from_string(b"{}")
    with caplog.at_level(logging.WARNING):
        pulled = pull(run_id, gcs_settings, deadline_s=10)
    assert pulled == gcs_settings.models_dir / "Exp_A" / run_id and (pulled / "config.json").read_bytes() == b"{}"
    assert "unreadable log object" in caplog.text


@pytest.mark.parametrize(
    "name", ["..", ".", "", "../../escaped", "a/../../escaped", "a/b", "a\\b", "x" * 256, "a\x00b"]
)
def test_names_that_would_leave_models_are_not_folder_names(name: str) -> None:
    assert not is_folder_name(name)


def test_experiment_names_are_folder_names() -> None:
    assert is_folder_name("SmallCNN_demo_BCE_E5_B16_C0_N5_D64_DS8020_1LR3_LF5_Adam")

"""`medbench search`: the YAML search space, cross-validation folds, a pruned study on the demo data, a study
killed and resumed, and two worker processes sharing one study through a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_process import run_medbench, start_medbench

from medbench.benchmark.benchmark import Benchmark
from medbench.benchmark.options import ExperimentOptions
from medbench.benchmark.spec import ExperimentSpec
from medbench.errors import ConfigError
from medbench.search.objective import trial_specs
from medbench.search.space import Choice, Range, load_search_space
from medbench.settings import Settings
from medbench.tracking.logs import UNVALIDATED_LOG, ExperimentLog

BASE = {"dataset": "demo", "epochs": 3, "batch_size": 16, "n_classes": 5, "image_size": 32, "split": [80, 20]}
OPTIONS = {"max_train_samples": 64, "tensorboard": False}


def _space(folder: Path, **changes: object) -> Path:
    data = {
        "study": "lr",
        "architecture": "2D.SmallCNN",
        "base": BASE,
        "options": OPTIONS,
        "space": {"learning_rate": {"low": 1.0e-8, "high": 1.0e-2, "log": True}},
        "trials": 6,
        "sampler": {"name": "random", "seed": 3},
        "pruner": {"name": "median", "startup_trials": 2, "warmup_epochs": 1},
        **changes,
    }
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# the search space


def test_the_space_reads_ranges_choices_and_options(tmp_path: Path) -> None:
    space = load_search_space(
        _space(
            tmp_path,
            space={
                "learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
                "batch_size": {"low": 8, "high": 32, "step": 8},
                "augmentations": [[], ["affine"]],
                "options.fcl": [False, True],
                "uncertainty": ["zeros", "ones"],
            },
        )
    )
    assert isinstance(space.parameters["learning_rate"], Range) and space.parameters["learning_rate"].log
    assert space.parameters["batch_size"].integer
    assert space.parameters["augmentations"] == Choice(([], ["affine"]))
    fields, architecture, options = space.trial_fields(
        {"augmentations": ["affine"], "options.fcl": True, "learning_rate": 0.001, "batch_size": 16}
    )
    assert fields["augmentations"] == ("affine",) and fields["learning_rate"] == 0.001
    assert architecture == "2D.SmallCNN" and options == {**OPTIONS, "fcl": True}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {"learnin_rate": [0.1]}}, "unknown search field 'learnin_rate'"),
        ({"space": {"options.fcll": [True]}}, "unknown search field 'options.fcll'"),
        ({"space": {"learning_rate": {"low": 0.0, "high": 1.0, "log": True}}}, "a log range needs low > 0"),
        ({"space": {"learning_rate": {"low": 0.1, "high": 0.01}}}, "expected numbers low < high"),
        ({"space": {"batch_size": []}}, "expected at least one value"),
        ({"space": {"batch_size": 16}}, "expected a list of values or"),
        ({"trials": 0}, "trials 0: expected a whole number of at least 1"),
        ({"sampler": "grid"}, "sampler 'grid': expected one of tpe, random"),
        ({"pruner": {"name": "hyperband"}}, "pruner 'hyperband': expected one of median, none"),
        ({"folds": 1}, "folds 1"),
        ({"options": {"max_train_sample": 3}}, "unknown experiment options"),
        ({"grid": {}}, "unknown keys \\['grid'\\]"),
    ],
)
def test_a_malformed_space_is_refused_naming_what_is_wrong(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_search_space(_space(tmp_path, **changes))


def test_a_trial_is_one_tagged_run_or_one_per_fold(tmp_path: Path) -> None:
    space = load_search_space(_space(tmp_path, folds=3))
    specs = trial_specs(space, {"learning_rate": 0.001}, trial=4)
    assert [spec.options.cv_fold for spec in specs] == ["0/3", "1/3", "2/3"]
    assert all(spec.options.tags == {"study": "lr", "trial": "4"} for spec in specs)
    assert specs[0].benchmark.learning_rate == 0.001 and specs[0].architecture == "2D.SmallCNN"
    with pytest.raises(ConfigError, match="bagging_fold and cv_fold: expected at most one"):
        ExperimentOptions(bagging_fold="0/2", cv_fold="0/2")
    with pytest.raises(ConfigError, match="cv_fold '3/3'"):
        ExperimentOptions(cv_fold="3/3")


def test_cross_validation_folds_partition_the_development_patients(settings: Settings) -> None:
    from medbench.experiment_data import prepare_data

    benchmark = Benchmark.from_dict({**BASE, "split": (80, 20)})
    plain = prepare_data(ExperimentSpec(benchmark), settings.data_dir)
    development = set(plain.train.sample_ids) | set(plain.val.sample_ids)
    folds = [
        prepare_data(ExperimentSpec(benchmark, options={"cv_fold": f"{i}/3"}), settings.data_dir) for i in range(3)
    ]
    vals = [set(fold.val.sample_ids) for fold in folds]
    assert set().union(*vals) == development and sum(map(len, vals)) == len(development)
    for fold, val in zip(folds, vals):
        assert set(fold.train.sample_ids) == development - val
        assert fold.test.sample_ids == plain.test.sample_ids
    patients = [set(fold.val.sample_ids) for fold in folds]
    assert all(a.isdisjoint(b) for i, a in enumerate(patients) for b in patients[i + 1 :])


def test_the_example_space_loads() -> None:
    space = load_search_space(Path(__file__).resolve().parents[1] / "examples" / "search-demo.yaml")
    assert space.study == "search-demo" and set(space.parameters) == {
        "learning_rate",
        "loss",
        "augmentations",
        "options.fcl",
    }


# studies on the demo data


def _study(url: str, name: str = "lr"):  # type: ignore[no-untyped-def]
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def _entries(settings: Settings) -> list[dict]:
    return ExperimentLog(settings.logs_dir / UNVALIDATED_LOG).read()


@pytest.mark.slow
def test_a_study_prunes_hopeless_trials_and_records_every_trial_as_a_run(settings: Settings) -> None:
    from medbench.search.study import open_study, run_search, storage_url

    space = load_search_space(_space(settings.root))
    url = storage_url(space, settings)
    study = open_study(space, url)
    for rate in (3e-3, 5e-3):  # two good trials first, so the median has something to compare with
        study.enqueue_trial({"learning_rate": rate})
    summary = run_search(space, settings)

    trials = _study(url).get_trials()
    states = [trial.state.name for trial in trials]
    assert len(trials) == 6 and set(states) <= {"COMPLETE", "PRUNED"}, states
    pruned = [trial for trial in trials if trial.state.name == "PRUNED"]
    assert pruned, f"no trial was pruned: {[(t.params, t.intermediate_values) for t in trials]}"
    entries = {entry["id"]: entry for entry in _entries(settings)}
    for trial in trials:
        (run_id,) = trial.user_attrs["run_ids"]
        entry = entries[run_id]
        assert entry["options"]["tags"] == {"study": "lr", "trial": str(trial.number)}
        assert entry["benchmark"]["learning_rate"] == pytest.approx(trial.params["learning_rate"], rel=5e-3)
        if trial.state.name == "PRUNED":
            assert entry["epochs_run"] == trial.user_attrs["pruned_at_epoch"] < BASE["epochs"]
        else:
            assert entry["epochs_run"] == BASE["epochs"]
            assert trial.value == pytest.approx(entry["val"]["macro"]["auroc"])
    assert len(entries) == 6
    folder = settings.logs_dir / "search" / "lr"
    board = pd.read_csv(folder / "leaderboard.csv")
    assert len(board) == 6 and board["state"].iloc[0] == "COMPLETE"
    assert board["value"].iloc[0] == pytest.approx(max(t.value for t in trials if t.value is not None))
    for name in ("history.png", "intermediate.png", "importances.png", "importances.csv"):
        assert (folder / name).stat().st_size > 0, name
    assert "best trial" in summary.text() and f"{len(pruned)} pruned" in summary.text()


@pytest.mark.slow
def test_a_killed_search_continues_where_it_stopped(settings: Settings) -> None:
    path = _space(settings.root, trials=2, pruner="none", study="resume", base={**BASE, "epochs": 2})
    url = f"sqlite:///{settings.logs_dir / 'search' / 'resume.sqlite3'}"
    worker = start_medbench(["search", str(path)], settings)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(2)
        if (settings.logs_dir / "search" / "resume.sqlite3").exists():
            try:
                if any(t.state.name == "COMPLETE" for t in _study(url, "resume").get_trials()):
                    break
            except Exception:  # the study may not exist yet
                continue
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    before = _study(url, "resume").get_trials()
    assert sum(t.state.name == "COMPLETE" for t in before) == 1
    done = run_medbench(["search", str(path)], settings, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = _study(url, "resume").get_trials()
    assert sum(t.state.name == "COMPLETE" for t in after) == 2
    kept = {t.number: t.params for t in before if t.state.name == "COMPLETE"}
    assert {t.number: t.params for t in after if t.number in kept} == kept, "finished trials are kept, not rerun"
    run_ids = [run for t in after if t.state.name == "COMPLETE" for run in t.user_attrs["run_ids"]]
    assert len(run_ids) == len(set(run_ids)) == 2


@pytest.mark.slow
def test_a_cross_validated_trial_scores_the_mean_of_its_folds(settings: Settings) -> None:
    from medbench.search.study import run_search

    space = load_search_space(
        _space(settings.root, trials=1, folds=2, pruner="none", study="cv", base={**BASE, "epochs": 1})
    )
    summary = run_search(space, settings)
    assert summary.counts == {"COMPLETE": 1} and len(summary.best["run_ids"]) == 2
    entries = {entry["id"]: entry for entry in _entries(settings)}
    folds = [entries[run_id] for run_id in summary.best["run_ids"]]
    assert [entry["options"]["cv_fold"] for entry in folds] == ["0/2", "1/2"]
    mean = sum(entry["val"]["macro"]["auroc"] for entry in folds) / 2
    assert summary.best["value"] == pytest.approx(mean)
    assert folds[0]["test"]["n_samples"] == folds[1]["test"]["n_samples"], "the test set is the benchmark's"


# two workers, one PostgreSQL study


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server on a Unix socket in a fresh folder, run as the `postgres` user when root."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed")
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("Debian's postgresql is not installed (.ci/run installs it with apt-get as root)")
    folder = Path(tempfile.mkdtemp(prefix="medbench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, socket_dir, port = folder / "data", folder, "5439"

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-k {socket_dir} -c listen_addresses='' -p {port}"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        run(str(binaries / "createdb"), "-h", str(socket_dir), "-p", port, "-U", "postgres", "medbench")
        yield f"postgresql+psycopg2://postgres@/medbench?host={socket_dir}&port={port}"
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study_and_record_each_trial_once(settings: Settings, postgres: str) -> None:
    path = _space(settings.root, trials=4, pruner="none", study="shared", base={**BASE, "epochs": 2})
    workers = [start_medbench(["search", str(path), "--storage", postgres], settings) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    trials = _study(postgres, "shared").get_trials()
    finished = [t for t in trials if t.state.name == "COMPLETE"]
    assert 4 <= len(finished) <= 5, [t.state.name for t in trials]  # a worker may start one as the other ends one
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in finished}) == 2, "both workers ran trials"
    run_ids = [run for t in finished for run in t.user_attrs["run_ids"]]
    logged = [entry for entry in _entries(settings) if (entry["options"].get("tags") or {}).get("study") == "shared"]
    assert sorted(entry["id"] for entry in logged) == sorted(run_ids) and len(set(run_ids)) == len(run_ids)
    for entry in logged:
        number = int(entry["options"]["tags"]["trial"])
        assert json.dumps(entry["options"]["tags"]) and number in {t.number for t in finished}

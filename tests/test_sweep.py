"""The hostile-input sweep: a corpus of broken inputs crossed with the commands that read them, as real processes.

Every case copies one small project (demo data, a saved run, its log), breaks one thing in it for real,
runs one `medbench` command in a child process and checks what a user would: the exit code (2, or 1
for a batch or re-evaluation that records a failed member), exactly one ``medbench: error:`` line that
names what is at fault, no ``Traceback``, and every file that existed before byte-identical after.
The fixed corpus is `CASES`; `REPAIRS` damages a built cache, which must be named and rebuilt exactly as
it was; the Hypothesis tests below generate more batch files and label files.

Set MEDBENCH_SWEEP_REPORT=<file> to write every case's outcome as JSON (how the "before the fixes"
count in docs/hostile-inputs.md was taken, against an older checkout on PYTHONPATH).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cli_process import run_medbench
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from medbench.settings import Settings

LEGACY_RUNS = Path(__file__).parent / "data" / "legacy-run"
EXPERIMENT = "SmallCNN_demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
RUN_ID = "20261202T014332Z-116315"
BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
DATASET = Path("data/demo/CheXpert-v1.0-small")
LOG = Path("logs/unvalidated-experiment-log.json")
ERROR_LINE = re.compile(r"^medbench(?: [a-z-]+)?: error: ")


def project_settings(root: Path, **folders: Path) -> Settings:
    return Settings(
        root=root,
        data_dir=folders.get("data_dir", root / "data"),
        models_dir=folders.get("models_dir", root / "models"),
        logs_dir=folders.get("logs_dir", root / "logs"),
        weights_dir=root / "weights",
    )


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data (64 px), the saved legacy run under models/ and its log entry: the project every case breaks."""
    from medbench.demo import write_demo_dataset

    root = tmp_path_factory.mktemp("sweep-base")
    write_demo_dataset(root / "data" / "demo", n_train_patients=30, n_valid_patients=8, seed=3, size=(64, 64))
    shutil.copytree(LEGACY_RUNS / EXPERIMENT, root / "models" / EXPERIMENT)
    entry = json.loads((root / "models" / EXPERIMENT / RUN_ID / "result.json").read_text(encoding="utf-8"))
    (root / LOG).parent.mkdir()
    (root / LOG).write_text(json.dumps([entry], indent=2), encoding="utf-8")
    return root


# Ways to break a project -------------------------------------------------------------------------------------


def write(relative: str | Path, content: str | bytes) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)

    return prepare


def edit_labels(change: Callable[[list[list[str]]], list[list[str]] | str]) -> Callable[[Path], None]:
    """Rewrite the demo train.csv through `change` (rows in, rows or raw text out)."""

    def prepare(root: Path) -> None:
        path = root / DATASET / "train.csv"
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        changed = change(rows)
        if isinstance(changed, str):
            path.write_text(changed, encoding="utf-8")
            return
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(changed)
        path.write_text(out.getvalue(), encoding="utf-8")

    return prepare


def first_image(root: Path, split: str = "train") -> Path:
    path = (root / DATASET / f"{split}.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    return root / "data" / "demo" / path


def replace_first_image(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        image = first_image(root)
        image.unlink()
        make(image)

    return prepare


def fifo(path: Path) -> None:
    os.mkfifo(path)


def link_to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def bomb(path: Path) -> None:
    """A few-KB JPEG of 9000 × 9000 pixels (243 MB decoded as RGB)."""
    Image.new("L", (9000, 9000)).save(path, format="JPEG")


def bomb_png(root: Path) -> None:
    Image.new("L", (9000, 9000)).save(root / "bomb.png")


def copy_image(root: Path) -> None:
    shutil.copyfile(first_image(root, "valid"), root / "x.jpg")


def run_file(name: str, content: str | bytes) -> Callable[[Path], None]:
    return write(Path("models") / EXPERIMENT / RUN_ID / name, content)


def truncate_run_file(name: str) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        path = root / "models" / EXPERIMENT / RUN_ID / name
        path.write_bytes(path.read_bytes()[:1000])

    return prepare


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        for step in steps:
            step(root)

    return prepare


def nothing(root: Path) -> None:
    """The project as it is: the command line alone is hostile."""


def batch(text: str, name: str = "batch.yaml") -> Callable[[Path], None]:
    return write(name, text)


def dry_run(name: str = "batch.yaml") -> tuple[str, ...]:
    return ("exec", "--batch", name, "--dry-run")


def predict(image: str) -> tuple[str, ...]:
    return ("predict", RUN_ID, image)


# The corpus ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input: how to make it, the command that reads it, and what the error line must name."""

    name: str
    prepare: Callable[[Path], None]
    args: tuple[str, ...]
    names: tuple[str, ...]
    codes: tuple[int, ...] = (2,)
    env: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)


B = BENCHMARK
NAME = f"benchmarks: [{B}]\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)
CASES: tuple[Case, ...] = (
    # batch files and the command line
    Case("batch-architectures-int", batch(NAME + "architectures: 5\n"), dry_run(), ("architectures", "5")),
    Case("batch-architectures-empty", batch(NAME + "architectures: []\n"), dry_run(), ("architectures",)),
    Case("batch-architectures-list-of-int", batch(NAME + "architectures: [5]\n"), dry_run(), ("architectures",)),
    Case("batch-benchmarks-int", batch("benchmarks: 5\n"), dry_run(), ("benchmarks", "5")),
    Case("batch-benchmarks-string", batch(f"benchmarks: {B}\n"), dry_run(), ("benchmarks", "list")),
    Case("batch-top-level-list", batch(f"- {B}\n"), dry_run(), ("batch.yaml", "mapping")),
    Case("batch-unknown-key", batch(NAME + "option: {}\n"), dry_run(), ("option",)),
    Case("batch-learning-rate-option", batch(NAME + "options: {learning_rate: abc}\n"), dry_run(), ("learning_rate",)),
    Case("batch-patience-abc", batch(NAME + "options: {plateau_patience: abc}\n"), dry_run(), ("plateau_patience",)),
    Case("batch-patience-negative", batch(NAME + "options: {plateau_patience: -5}\n"), dry_run(), ("-5", "1..1000")),
    Case("batch-patience-huge", batch(NAME + "options: {plateau_patience: 10000000000}\n"), dry_run(), ("1..1000",)),
    Case("batch-early-stop-0", batch(NAME + "options: {early_stopping_patience: 0}\n"), dry_run(), ("early_stop",)),
    Case("batch-samples-0", batch(NAME + "options: {max_train_samples: 0}\n"), dry_run(), ("max_train_samples",)),
    Case("batch-bool-as-text", batch(NAME + "options: {tensorboard: maybe}\n"), dry_run(), ("tensorboard",)),
    Case("batch-weights-int", batch(NAME + "options: {weights: 5}\n"), dry_run(), ("weights",)),
    Case("batch-schedule", batch(NAME + "options: {lr_schedule: cosine}\n"), dry_run(), ("lr_schedule", "cosine")),
    Case(
        "batch-upsample-factor",
        batch(NAME + "options: {upsample_factors: {Edema: 1000}}\n"),
        dry_run(),
        ("upsample_factors", "1000"),
    ),
    Case("batch-options-list", batch(NAME + "options: [1]\n"), dry_run(), ("options",)),
    Case("batch-duplicate-key", batch(NAME + NAME), dry_run(), ("line 2", "twice")),
    Case("batch-billion-laughs", batch(LAUGHS + NAME), dry_run(), ("alias",)),
    Case("batch-deep-nesting", batch("benchmarks: " + "[" * 5000 + "]" * 5000 + "\n"), dry_run(), ("deeper",)),
    Case("batch-unknown-field", batch("benchmarks: [{dataset: demo, epoch: 3}]\n"), dry_run(), ("epoch",)),
    Case("batch-missing-dataset", batch("benchmarks: [{epochs: 3}]\n"), dry_run(), ("dataset",)),
    Case("batch-field-type", batch("benchmarks: [{dataset: demo, epochs: abc}]\n"), dry_run(), ("epochs", "abc")),
    Case("batch-bad-name", batch(f"benchmarks: [{B}_blur99999]\n"), dry_run(), ("benchmarks[0]", "blur99999")),
    Case(
        "batch-grid-vary-key",
        batch(f"grid: [{{base: {B}, vary: {{1: [2]}}}}]\n"),
        dry_run(),
        ("grid[0]", "vary"),
    ),
    Case(
        "batch-grid-vary-scalar",
        batch(f"grid: [{{base: {B}, vary: {{epochs: 3}}}}]\n"),
        dry_run(),
        ("grid[0]", "vary"),
    ),
    Case("batch-grid-not-mapping", batch("grid: 5\n"), dry_run(), ("grid[0]",)),
    Case("batch-not-utf8", batch(b"benchmarks: [d\xf6mo]\n"), dry_run(), ("batch.yaml", "UTF-8")),
    Case(
        "csv-extra-field", batch(f"benchmark,architecture\n{B},2D.SmallCNN,x\n", "b.csv"), dry_run("b.csv"), ("row 2",)
    ),
    Case("csv-repeated-column", batch(f"benchmark,benchmark\n{B},{B}\n", "b.csv"), dry_run("b.csv"), ("benchmark",)),
    Case("csv-no-benchmark-column", batch(f"name\n{B}\n", "b.csv"), dry_run("b.csv"), ("benchmark",)),
    Case("csv-huge-field", batch("benchmark\n" + "x" * 200_000 + "\n", "b.csv"), dry_run("b.csv"), ("b.csv",)),
    Case("csv-architecture-int", batch(f"benchmark,architecture\n{B},5\n", "b.csv"), dry_run("b.csv"), ("'5'",)),
    Case("csv-batch-latin1", batch(b"benchmark\nd\xf6mo\n", "b.csv"), dry_run("b.csv"), ("UTF-8",)),
    Case("batch-missing", nothing, dry_run("nope.yaml"), ("nope.yaml", "not found")),
    Case("batch-is-folder", write("dir.yaml/x", ""), dry_run("dir.yaml"), ("folder",)),
    Case("name-blur99999", nothing, ("inspect", f"{B}_blur99999"), ("blur99999",)),
    Case("name-D100000", nothing, ("inspect", B.replace("D32", "D100000")), ("D100000", "8..4096")),
    Case("name-E100000", nothing, ("exec", B.replace("E1_", "E100000_"), "--dry-run"), ("E100000", "1..1000")),
    Case("name-B0", nothing, ("exec", B.replace("B16", "B0"), "--dry-run"), ("B0",)),
    Case("name-empty", nothing, ("inspect", ""), ("benchmark name",)),
    Case("option-negative", nothing, ("exec", B, "--dry-run", "--option", "plateau_patience=-5"), ("plateau",)),
    Case("option-unknown", nothing, ("exec", B, "--dry-run", "--option", "foo=1"), ("foo",)),
    Case("option-no-equals", nothing, ("exec", B, "--dry-run", "--option", "fcl"), ("key=value",)),
    Case("option-alias", nothing, ("exec", B, "--dry-run", "--option", "fcl=&a *a"), ("fcl",)),
    Case("shard-3/2", nothing, ("exec", B, "--dry-run", "--shard", "3/2"), ("--shard",)),
    Case("shard-empty", nothing, ("exec", B, "--dry-run", "--shard="), ("--shard",)),
    # environment and .env
    Case("env-not-utf8", write(".env", b"MEDBENCH_GCS_BUCKET=b\xf6\n"), ("leaderboard",), (".env", "UTF-8")),
    Case("env-garbage-line", write(".env", "MEDBENCH_GCS_BUCKET\n"), ("leaderboard",), (".env", "line 1")),
    Case(
        "models-dir-a-file",
        write("afile", "x"),
        ("leaderboard",),
        ("MEDBENCH_MODELS_DIR",),
        folders={"models_dir": "afile"},
    ),
    Case("logs-dir-a-file", write("afile", "x"), ("validate",), ("MEDBENCH_LOGS_DIR",), folders={"logs_dir": "afile"}),
    Case(
        "data-dir-a-file", write("afile", "x"), ("preprocess", B), ("MEDBENCH_DATA_DIR",), folders={"data_dir": "afile"}
    ),
    Case(
        "cache-dir-a-file",
        write("afile", "x"),
        ("preprocess", B),
        ("MEDBENCH_CACHE_DIR",),
        env={"MEDBENCH_CACHE_DIR": "afile"},
    ),
    Case("deadline-nan", nothing, ("sync", "--deadline", "nan"), ("deadline", "nan"), env={"MEDBENCH_GCS_BUCKET": "b"}),
    Case("deadline-negative", nothing, ("sync", "--deadline=-5"), ("deadline",), env={"MEDBENCH_GCS_BUCKET": "b"}),
    Case(
        "deadline-inf", nothing, ("pull", RUN_ID, "--deadline", "inf"), ("deadline",), env={"MEDBENCH_GCS_BUCKET": "b"}
    ),
    Case(
        "bucket-name-invalid",
        nothing,
        ("sync", "--deadline", "5"),
        ("Bad Bucket!",),
        env={"MEDBENCH_GCS_BUCKET": "Bad Bucket!", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"},
    ),
    Case(
        "gcs-prefix-dotdot",
        nothing,
        ("sync", "--deadline", "5"),
        ("MEDBENCH_GCS_PREFIX", "'..'"),
        env={
            "MEDBENCH_GCS_BUCKET": "b-runs",
            "MEDBENCH_GCS_PREFIX": "lab/../x",
            "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        },
    ),
    Case(
        "repair-logs-entry-not-object",
        lambda root: (root / LOG).write_text(json.dumps([5, *json.loads((root / LOG).read_text())]), encoding="utf-8"),
        ("repair-logs",),
        (LOG.name, "entry 1 of 2", "left in place"),
        codes=(1,),
    ),
    Case("pull-run-id-escape", nothing, ("pull", "../../etc"), ("../../etc",), env={"MEDBENCH_GCS_BUCKET": "b"}),
    # label files
    Case("labels-header-only", edit_labels(lambda rows: rows[:1]), ("preprocess", B), ("train.csv",)),
    Case("labels-empty-file", edit_labels(lambda rows: ""), ("preprocess", B), ("train.csv",)),
    Case(
        "labels-repeated-class",
        edit_labels(lambda rows: [rows[0] + ["Edema"]] + [row + ["1.0"] for row in rows[1:]]),
        ("preprocess", B),
        ("train.csv", "Edema"),
    ),
    Case(
        "labels-space-before-class",
        edit_labels(lambda rows: [rows[0] + [" Edema"]] + [row + ["1.0"] for row in rows[1:]]),
        ("preprocess", B),
        ("train.csv", "Edema"),
    ),
    Case(
        "labels-short-row",
        edit_labels(lambda rows: [row[:5] if i == 3 else row for i, row in enumerate(rows)]),
        ("preprocess", B),
        ("train.csv", "row 4"),
    ),
    Case(
        "labels-long-row",
        edit_labels(lambda rows: [row + ["1"] if i == 3 else row for i, row in enumerate(rows)]),
        ("preprocess", B),
        ("train.csv", "row 4"),
    ),
    Case(
        "labels-trailing-comma-on-rows",
        edit_labels(lambda rows: rows[:1] + [row + [""] for row in rows[1:]]),
        ("preprocess", B),
        ("train.csv", "row 2"),
    ),
    Case(
        "labels-value-2",
        edit_labels(lambda rows: rows[:2] + [rows[2][:-1] + ["2.0"]] + rows[3:]),
        ("preprocess", B),
        ("train.csv", "row 3", "2.0"),
    ),
    Case(
        "labels-path-escape",
        edit_labels(lambda rows: rows[:1] + [["../../../etc/passwd"] + rows[1][1:]] + rows[2:]),
        ("preprocess", B),
        ("train.csv", "row 2"),
    ),
    Case(
        "labels-missing-column",
        edit_labels(lambda rows: [row[:-1] for row in rows]),
        ("preprocess", B),
        ("train.csv", "Support Devices"),
    ),
    Case("labels-not-utf8", write(DATASET / "train.csv", b"Path,Sex\nx\xf6,Male\n"), ("preprocess", B), ("UTF-8",)),
    Case(
        "labels-is-folder",
        both(lambda root: (root / DATASET / "train.csv").unlink(), write(DATASET / "train.csv/x", "")),
        ("preprocess", B),
        ("train.csv",),
    ),
    Case("labels-missing", lambda root: (root / DATASET / "valid.csv").unlink(), ("preprocess", B), ("valid.csv",)),
    # images in a dataset
    Case("image-fifo", replace_first_image(fifo), ("preprocess", "--strict", B), ("FIFO",)),
    Case("image-link-to-dev-zero", replace_first_image(link_to_dev_zero), ("preprocess", "--strict", B), ("device",)),
    Case("image-decompression-bomb", replace_first_image(bomb), ("preprocess", "--strict", B), ("too large",)),
    Case("image-folder", replace_first_image(lambda path: path.mkdir()), ("preprocess", "--strict", B), ("folder",)),
    # saved runs and logs
    Case("leaderboard-log-not-json", write(LOG, "{broken"), ("leaderboard",), (LOG.name,)),
    Case("leaderboard-log-entry-not-mapping", write(LOG, "[5]"), ("leaderboard",), (LOG.name,), codes=(1, 2)),
    Case("validate-log-not-json", write(LOG, "{broken"), ("validate",), (LOG.name,)),
    Case("repair-logs-log-not-json", write(LOG, "[{broken"), ("repair-logs",), (LOG.name,)),
    Case(
        "merge-logs-shard-not-json",
        write("shard/unvalidated-experiment-log.json", "{"),
        ("merge-logs", "--into", "logs", "shard"),
        ("shard",),
    ),
    Case(
        "leaderboard-log-entry-without-metrics",
        write(LOG, json.dumps([{"id": RUN_ID, "name": EXPERIMENT}])),
        ("leaderboard",),
        (LOG.name,),
        codes=(1, 2),
    ),
    Case("repair-logs-config-damaged", run_file("config.json", "{"), ("repair-logs",), ("config.json",), codes=(1, 2)),
    Case("reevaluate-config-damaged", run_file("config.json", "{"), ("reevaluate",), ("config.json",), codes=(1, 2)),
    Case(
        "reevaluate-unknown-run",
        nothing,
        ("reevaluate", "--run", "20990101T000000Z-abcdef"),
        ("20990101T000000Z-abcdef",),
    ),
    Case("predict-unknown-run", nothing, ("predict", "20990101T000000Z-abcdef", "x.png"), ("20990101T000000Z-abcdef",)),
    Case(
        "predict-model-truncated",
        both(truncate_run_file("model.keras"), copy_image),
        predict("x.jpg"),
        ("model.keras",),
    ),
    Case("predict-fifo", lambda root: os.mkfifo(root / "p.png"), predict("p.png"), ("p.png", "FIFO")),
    Case(
        "predict-dev-zero", lambda root: (root / "z.png").symlink_to("/dev/zero"), predict("z.png"), ("z.png", "device")
    ),
    Case("predict-bomb", bomb_png, predict("bomb.png"), ("bomb.png", "too large")),
    # experiments that fail when they run: the batch records them and exits 1
    Case(
        "exec-batch-too-large-for-memory",
        nothing,
        ("exec", B.replace("B16", "B4096").replace("D32", "D4096")),
        ("memory", "B4096"),
        codes=(1,),
    ),
    Case(
        "exec-labels-short-row",
        edit_labels(lambda rows: rows[:3] + [rows[3][:5]]),
        ("exec", B),
        ("train.csv",),
        codes=(1,),
    ),
    Case(
        "predict-run-id-in-two-folders",
        both(
            copy_image,
            lambda root: shutil.copytree(
                root / "models" / EXPERIMENT / RUN_ID, root / "models" / "SmallCNN_copy" / RUN_ID
            ),
        ),
        predict("x.jpg"),
        (RUN_ID, "two run folders", "SmallCNN_copy"),
    ),
    Case(
        "predict-damaged-local-run-with-a-bucket",
        both(copy_image, run_file("config.json", "{")),
        predict("x.jpg"),
        ("config.json",),
        env={"MEDBENCH_GCS_BUCKET": "b-runs", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"},
    ),
    Case("preprocess-workers-huge", nothing, ("preprocess", B, "--workers", "1000000"), ("workers", "1..256")),
    Case(
        "merge-logs-entry-not-object",
        write("shard/unvalidated-experiment-log.json", "[5]"),
        ("merge-logs", "shard", "--into", "merged"),
        ("shard/unvalidated-experiment-log.json", "entry 1 of 1", "not merged"),
        codes=(1,),
    ),
    Case("list-unknown-kind", nothing, ("list", "nope"), ("nope",)),
    Case(
        "batch-name-too-long", nothing, ("exec", "--batch", "b" * 300 + ".yaml", "--dry-run"), ("File name too long",)
    ),
    Case(
        "models-dir-link-loop",
        lambda root: (root / "loop").symlink_to("loop"),
        ("leaderboard",),
        ("MEDBENCH_MODELS_DIR", "loop"),
        folders={"models_dir": "loop"},
    ),
    Case(
        "models-dir-name-too-long",
        nothing,
        ("leaderboard",),
        ("MEDBENCH_MODELS_DIR",),
        folders={"models_dir": "m" * 300},
    ),
    # demo data
    Case(
        "demo-data-overwrite-real-download",
        lambda root: (root / DATASET / ".medbench-demo").unlink(missing_ok=True),
        ("demo-data", "--overwrite"),
        ("CheXpert-v1.0-small", "marker"),
    ),
    Case("demo-data-negative-patients", nothing, ("demo-data", "--out", "d2", "--patients", "-3"), ("patients",)),
    Case("demo-data-huge-patients", nothing, ("demo-data", "--out", "d2", "--patients", "10000000000"), ("patients",)),
)


def _snapshot(root: Path) -> dict[str, str]:
    """The hash of every regular file under `root` (links are recorded, not followed)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            digests[str(path.relative_to(root))] = f"link:{os.readlink(path)}"
        elif path.is_file():
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def message_at(lines: list[str], index: int) -> str:
    """The error line at `index` with the indented lines that continue it (a listing of files)."""
    end = index + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return "\n".join(lines[index:end])


def problems_of(case: Case, base: Path, work: Path) -> tuple[list[str], str]:
    """Run one case in its own copy of the project; the list of what went wrong (empty = handled well)."""
    root = work / case.name
    shutil.copytree(base, root, symlinks=True)
    try:
        case.prepare(root)
    except OSError as error:
        return [f"the case cannot be made here: {error}"], ""
    before = _snapshot(root)
    folders = {key: root / value for key, value in case.folders.items()}
    env = dict(case.env)
    if "MEDBENCH_CACHE_DIR" in env:
        env["MEDBENCH_CACHE_DIR"] = str(root / env["MEDBENCH_CACHE_DIR"])
    try:
        result = run_medbench(list(case.args), project_settings(root, **folders), timeout=120, **env)
    except subprocess.TimeoutExpired:
        return ["hangs: no exit within 120 s"], ""
    return judged(result, case.codes, case.names, before, _snapshot(root))


def judged(
    result: subprocess.CompletedProcess[str],
    codes: tuple[int, ...],
    names: tuple[str, ...],
    before: dict[str, str],
    after: dict[str, str],
) -> tuple[list[str], str]:
    """What is wrong with how a command answered a hostile input, and its error message."""
    lines = result.stderr.splitlines()
    starts = [index for index, line in enumerate(lines) if ERROR_LINE.match(line)]
    errors = [message_at(lines, index) for index in starts]
    found = []
    if result.returncode not in codes:
        found.append(f"exit {result.returncode}, expected {' or '.join(map(str, codes))}")
    if "Traceback" in result.stderr:
        found.append("traceback: " + result.stderr.strip().splitlines()[-1][:300])
    if result.returncode != 0 and len(errors) != 1:
        found.append(f"{len(errors)} 'medbench: error:' lines")
    elif errors and (missing := [name for name in names if name not in errors[0]]):
        found.append(f"the error does not name {missing}: {errors[0][:300]}")
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    if changed:
        found.append(f"pre-existing files changed or removed: {changed[:5]}")
    return found, (errors[0] if errors else result.stderr.strip()[-300:])


def test_every_case_is_refused_in_one_line_without_a_traceback_and_loses_nothing(
    base_project: Path, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(zip(CASES, pool.map(lambda case: problems_of(case, base_project, tmp_path), CASES)))
    if report := os.environ.get("MEDBENCH_SWEEP_REPORT"):
        Path(report).write_text(
            json.dumps({case.name: {"problems": found, "line": line} for case, (found, line) in outcomes}, indent=1)
        )
    failures = {case.name: found for case, (found, _) in outcomes if found}
    assert not failures, f"{len(failures)} of {len(CASES)} cases mishandled:\n" + "\n".join(
        f"  {name}: {'; '.join(found)}" for name, found in failures.items()
    )


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


# Generated inputs ---------------------------------------------------------------------------------------------

GENERATED = hypothesis_settings(
    max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from([BENCHMARK, "2D.SmallCNN", "imagenet", "plateau", "demo", "-5", "1e999", "~"]),
)
_KEYS = st.sampled_from(
    ["benchmarks", "architectures", "options", "grid", "base", "vary", "name", "dataset", "epochs", "loss"]
    + ["plateau_patience", "max_train_samples", "weights", "upsample_factors", "lr_schedule", "fcl", "x"]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


_TOP_KEYS = st.sampled_from(["benchmarks", "architectures", "options", "grid"])


@GENERATED
@given(document=st.dictionaries(_TOP_KEYS, _VALUES, min_size=1, max_size=4))
def test_generated_batch_files_are_run_or_refused_in_one_line(
    document: dict[str, object], base_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Any YAML mapping of batch-like keys and values: a dry run lists experiments or says in one line why not."""
    root = tmp_path_factory.mktemp("generated-batch")
    (root / "batch.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    before = _snapshot(root)
    result = run_medbench(list(dry_run()), project_settings(root), timeout=60)
    found, _ = judged(result, (0, 2), (), before, _snapshot(root))
    assert not found, f"{document!r}: {found}"


def misshapen(data: bytes) -> bool:
    """Whether a label file is not UTF-8, or has a row whose field count differs from its header's: such a file
    must be refused (a short row would otherwise be read with its labels blank)."""
    try:
        rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) if row]
    except (UnicodeDecodeError, csv.Error):
        return True
    return bool(rows) and any(len(row) != len(rows[0]) for row in rows[1:])


@GENERATED
@given(
    damage=st.one_of(
        st.tuples(st.just("cut"), st.floats(min_value=0.0, max_value=1.0)),
        st.tuples(st.just("cell"), st.floats(min_value=0.0, max_value=1.0), st.text(max_size=12)),
        st.tuples(st.just("bytes"), st.floats(min_value=0.0, max_value=1.0), st.binary(min_size=1, max_size=8)),
    )
)
def test_damaged_label_files_are_refused_in_one_line_or_read_faithfully(
    damage: tuple[object, ...], base_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A label file cut short, with one cell rewritten, or with bytes spliced in: preprocessing either reads it
    or refuses it in one line naming the file; nothing is written over."""
    root = tmp_path_factory.mktemp("generated-labels") / "project"
    shutil.copytree(base_project, root, symlinks=True)
    path = root / DATASET / "train.csv"
    data = path.read_bytes()
    kind, where = damage[0], int(float(damage[1]) * (len(data) - 1))
    if kind == "cut":
        data = data[:where]
    elif kind == "cell":
        text = data.decode()
        cells = [match.span() for match in re.finditer(r"[^,\n]*", text)]
        start, end = cells[int(float(damage[1]) * (len(cells) - 1))]
        data = (text[:start] + str(damage[2]).replace("\r", "") + text[end:]).encode()
    else:
        data = data[:where] + bytes(damage[2]) + data[where:]
    path.write_bytes(data)
    before = _snapshot(root)
    result = run_medbench(["preprocess", BENCHMARK], project_settings(root), timeout=60)
    found, line = judged(result, (2,) if misshapen(data) else (0, 2), (), before, _snapshot(root))
    if result.returncode == 2 and "train.csv" not in line:
        found.append(f"the error does not name train.csv: {line[:300]}")
    assert not found, f"{damage!r}: {found}"


# Damaged caches: rebuilt, never read ---------------------------------------------------------------------------


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip(offset: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset if offset >= 0 else len(data) + offset] ^= 0xFF
        path.write_bytes(bytes(data))

    return damage


def _rewrite(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def _with_record(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """Damage the manifest and the shard's own record (which a build reads when the manifest is gone)."""

    def both_files(manifest: Path) -> None:
        damage(manifest)
        (manifest.parent / "shard-00000.json").write_text("{", encoding="utf-8")

    return both_files


def _cache_snapshot(root: Path) -> dict[str, str]:
    """`_snapshot`, with the build time left out of the cache's manifest and report (a rebuild has its own)."""
    digests = _snapshot(root)
    for path in root.glob("data/cache/*/*.json"):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # damaged: its hash stays, and differs from the intact file's
        if isinstance(content, dict):
            content.pop("created", None)
        digests[str(path.relative_to(root))] = json.dumps(content, sort_keys=True)
    return digests


@dataclass(frozen=True)
class Repair:
    """One damaged cache file and the command that meets it: the file must be named and rebuilt as it was."""

    name: str
    file: str
    damage: Callable[[Path], None]
    args: tuple[str, ...] = ("preprocess", BENCHMARK)


REPAIRS: tuple[Repair, ...] = (
    Repair("shard-truncated", "shard-00000.npy", _cut),
    Repair("shard-deleted", "shard-00000.npy", Path.unlink),
    Repair("shard-header-flipped", "shard-00000.npy", _flip(8)),
    Repair("shard-pixel-flipped-verify", "shard-00000.npy", _flip(-1), ("preprocess", BENCHMARK, "--verify")),
    Repair(
        "shard-zeroed-verify",
        "shard-00000.npy",
        lambda p: p.write_bytes(b"\0" * p.stat().st_size),
        ("preprocess", BENCHMARK, "--verify"),
    ),
    Repair("manifest-and-shard-record-not-json", "manifest.json", _with_record(_rewrite("{"))),
    Repair("manifest-not-json", "manifest.json", _cut),
    Repair("manifest-a-list", "manifest.json", _rewrite("[]")),
    Repair(
        "manifest-shard-outside", "manifest.json", lambda p: p.write_text(p.read_text().replace("shard-00000", "../x"))
    ),
)


def repair_problems(repair: Repair, base: Path, work: Path) -> list[str]:
    """Build the cache in a copy of the project, damage one file, run the command: what went wrong (empty = fine)."""
    from medbench.benchmark.benchmark import Benchmark
    from medbench.preprocessing.dataset_cache import build_benchmark_cache

    root = work / repair.name
    shutil.copytree(base, root, symlinks=True)
    settings = project_settings(root)
    cache = build_benchmark_cache(Benchmark.from_name(BENCHMARK), settings, workers=1, progress=False)
    intact = _cache_snapshot(root)
    repair.damage(cache.directory / repair.file)
    damaged = cache.directory / repair.file
    try:
        result = run_medbench(list(repair.args), settings, timeout=120)
    except subprocess.TimeoutExpired:
        return ["hangs: no exit within 120 s"]
    found = []
    if result.returncode != 0:
        found.append(f"exit {result.returncode}, expected 0 (the cache rebuilt): {result.stderr.strip()[-300:]}")
    if "Traceback" in result.stderr:
        found.append("traceback: " + result.stderr.strip().splitlines()[-1][:300])
    if f"damaged cache file {damaged}" not in result.stderr and f"damaged {damaged}" not in result.stdout:
        found.append(f"{damaged} is not named as damaged: {result.stderr.strip()[-300:]}")
    after = _cache_snapshot(root)
    changed = [name for name, digest in intact.items() if after.get(name) != digest]
    if changed:
        found.append(f"not rebuilt as it was (or other files changed): {changed[:5]}")
    return found


def test_every_damaged_cache_file_is_named_and_rebuilt_as_it_was(base_project: Path, tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(zip(REPAIRS, pool.map(lambda repair: repair_problems(repair, base_project, tmp_path), REPAIRS)))
    failures = {repair.name: found for repair, found in outcomes if found}
    assert not failures, f"{len(failures)} of {len(REPAIRS)} damaged caches mishandled:\n" + "\n".join(
        f"  {name}: {'; '.join(found)}" for name, found in failures.items()
    )

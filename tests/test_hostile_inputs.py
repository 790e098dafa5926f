"""Hostile and broken input: every case ends in a clear error (or a faithful conversion), never a traceback.

Each case below builds its hostile file for real in a temporary folder and returns the message the
user sees. ``docs/hostile-inputs.md`` documents one row per case; `test_documented_message_is_the_real_one`
checks every documented message against the message the case really produces.
"""

from __future__ import annotations

import csv
import logging
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medbench.cli import main
from medbench.data import datasets
from medbench.data.datasets import DatasetSpec, load_dataset, register_dataset
from medbench.data.images import read_image, unreadable_images_error, verify_images
from medbench.errors import ConfigError, DatasetError, ImageError, LabelPolicyError
from medbench.experiment_exec import load_batch
from medbench.losses.class_weights import compute_class_weights
from medbench.tracking.logs import FAILED_LOG, UNVALIDATED_LOG, ExperimentLog

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "hostile-inputs.md"
BASE = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
CLASSES = ("A", "B")

Capture = pytest.CaptureFixture[str]
Case = Callable[[Path, Capture], str]


# --------------------------------------------------------------------------------------------------
# Hostile files
# --------------------------------------------------------------------------------------------------


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def png(path: Path, pixels: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise((16, 16)) if pixels is None else pixels).save(path)
    return path


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_jpeg(folder: Path) -> Path:
    path = folder / "cut.jpg"
    Image.fromarray(noise((128, 128))).save(path, quality=90)
    return cut_in_half(path)


def truncated_png(folder: Path) -> Path:
    return cut_in_half(png(folder / "cut.png", noise((128, 128))))


def zero_byte(folder: Path) -> Path:
    (folder / "empty.png").write_bytes(b"")
    return folder / "empty.png"


def text_as_png(folder: Path) -> Path:
    (folder / "notes.png").write_text("Patient notes, not a picture\n", encoding="utf-8")
    return folder / "notes.png"


def png16(path: Path, values: np.ndarray, colour_type: int) -> Path:
    """A 16-bit PNG written byte by byte (gray 0, RGB 2, gray + alpha 4, RGBA 6), as scanners export them."""
    height, width = values.shape[:2]
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


# --------------------------------------------------------------------------------------------------
# A small generic-CSV dataset
# --------------------------------------------------------------------------------------------------


def csv_file(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def csv_dataset(folder: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = ("path", "A", "B")) -> DatasetSpec:
    """A ``csv``-format dataset under folder/ds: train.csv plus a real PNG per row path (when it can exist)."""
    root = folder / "ds"
    for row in rows:
        relative = row[0]
        if relative and not relative.startswith("/") and ".." not in relative:
            png(root / relative, noise((16, 16), seed=len(relative)))
    csv_file(root / "train.csv", header, rows)
    return DatasetSpec(
        name="hostile", format="csv", root=str(root), train="train.csv", path_column="path", classes=CLASSES
    )


def good_rows(count: int = 4) -> list[list[str]]:
    return [[f"images/p{i}.png", str(i % 2), str((i + 1) % 2)] for i in range(count)]


def dataset_message(folder: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = ("path", "A", "B")) -> str:
    spec = csv_dataset(folder, rows, header)
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec, folder)
    return str(caught.value)


# --------------------------------------------------------------------------------------------------
# The cases: each returns the message the user sees
# --------------------------------------------------------------------------------------------------


def reader_message(make: Callable[[Path], Path]) -> Case:
    def case(folder: Path, capsys: Capture) -> str:
        path = make(folder)
        with pytest.raises(ImageError) as caught:
            read_image(path)
        assert caught.value.file == path
        return str(caught.value)

    return case


def corrupt_images_in_a_dataset(folder: Path, capsys: Capture) -> str:
    good = [png(folder / f"ok{i}.png", noise((16, 16), i)) for i in range(3)]
    bad = [truncated_jpeg(folder), zero_byte(folder), text_as_png(folder), folder / "gone.png"]
    problems = verify_images([good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3]], workers=2)
    assert [path for path, _ in problems] == [str(path) for path in bad]
    return str(unreadable_images_error(problems))


def deep_gray_png_warning(folder: Path, capsys: Capture) -> str:
    path = folder / "xray12.png"
    Image.fromarray(np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)).save(path)
    return _warning_of(path)


def deep_colour_png_warning(folder: Path, capsys: Capture) -> str:
    values = np.stack([np.linspace(0, 4095, 64).reshape(8, 8).astype(np.uint16)] * 3, axis=2)
    return _warning_of(png16(folder / "colour12.png", values, colour_type=2))


def _warning_of(path: Path) -> str:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("medbench.data.images")
    logger.addHandler(handler)
    try:
        read_image(path)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1
    return records[0].getMessage()


def missing_path_column(folder: Path, capsys: Capture) -> str:
    return dataset_message(folder, good_rows(), header=("file", "A", "B"))


def label_two(folder: Path, capsys: Capture) -> str:
    rows = good_rows()
    rows[1][2] = "2.0"
    return dataset_message(folder, rows)


def label_yes(folder: Path, capsys: Capture) -> str:
    rows = good_rows()
    rows[2][1] = "yes"
    return dataset_message(folder, rows)


def duplicate_rows(folder: Path, capsys: Capture) -> str:
    rows = good_rows()
    return dataset_message(folder, [*rows, list(rows[1])])


def path_with_dotdot(folder: Path, capsys: Capture) -> str:
    return dataset_message(folder, [*good_rows(), ["images/../../secret.png", "1", "0"]])


def absolute_path(folder: Path, capsys: Capture) -> str:
    return dataset_message(folder, [*good_rows(), ["/etc/passwd", "1", "0"]])


def missing_images_in_a_dataset(folder: Path, capsys: Capture) -> str:
    spec = csv_dataset(folder, good_rows())
    (folder / "ds" / "images" / "p1.png").unlink()
    (folder / "ds" / "images" / "p3.png").unlink()
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec, folder)
    return str(caught.value)


def class_without_positives(folder: Path, capsys: Capture) -> str:
    spec = csv_dataset(folder, [[f"images/p{i}.png", str(i % 2), "0"] for i in range(4)])
    train, _ = load_dataset(spec, folder)
    with pytest.raises(LabelPolicyError) as caught:
        compute_class_weights(train, CLASSES)
    return str(caught.value)


def cli_message(*args: str) -> Case:
    """Run the CLI in-process; it must exit 2 with one ``medbench: error:`` line and no traceback."""

    def case(folder: Path, capsys: Capture) -> str:
        return _cli_error([arg.replace("{folder}", str(folder)) for arg in args], capsys)

    return case


def batch_message(name: str, content: bytes) -> Case:
    def case(folder: Path, capsys: Capture) -> str:
        (folder / name).write_bytes(content)
        with pytest.raises(ConfigError):
            load_batch(folder / name)
        return _cli_error(["exec", "--batch", str(folder / name), "--dry-run"], capsys)

    return case


def _cli_error(argv: list[str], capsys: Capture) -> str:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medbench: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("medbench: error: ")


def negative_shard_as_separate_argument(folder: Path, capsys: Capture) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(["exec", BASE, "--dry-run", "--shard", "-1/2"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def empty_shard(folder: Path, capsys: Capture) -> str:
    capsys.readouterr()
    assert main(["exec", BASE, "--dry-run", "--shard", "3/4"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    return err.strip()


CASES: dict[str, Case] = {
    "truncated-jpeg": reader_message(truncated_jpeg),
    "truncated-png": reader_message(truncated_png),
    "zero-byte": reader_message(zero_byte),
    "text-as-png": reader_message(text_as_png),
    "missing-image": reader_message(lambda folder: folder / "gone.png"),
    "corrupt-images-in-dataset": corrupt_images_in_a_dataset,
    "16-bit-png": deep_gray_png_warning,
    "16-bit-colour-png": deep_colour_png_warning,
    "missing-path-column": missing_path_column,
    "label-2.0": label_two,
    "label-yes": label_yes,
    "duplicate-rows": duplicate_rows,
    "path-dotdot": path_with_dotdot,
    "path-absolute": absolute_path,
    "missing-images-in-dataset": missing_images_in_a_dataset,
    "class-without-positives": class_without_positives,
    "unknown-token": cli_message("exec", f"{BASE}_foo", "--dry-run"),
    "unknown-token-in-batch": batch_message("typo.yaml", f"benchmarks:\n  - {BASE.replace('_C0_', '_C2_')}\n".encode()),
    "empty-yaml": batch_message("empty.yaml", b""),
    "empty-csv": batch_message("empty.csv", b""),
    "header-only-csv": batch_message("header.csv", b"benchmark,architecture\n"),
    "grid-expands-to-nothing": batch_message(
        "grid.yaml", f"benchmarks: [{BASE}]\ngrid:\n  - base: {BASE}\n    vary: {{loss: [], epochs: [1, 2]}}\n".encode()
    ),
    "batch-not-utf8": batch_message("latin1.csv", "benchmark\n# Röntgen\n".encode("latin-1")),
    "unknown-option": batch_message(
        "options.yaml", f"options: {{max_train_sample: 10}}\nbenchmarks: [{BASE}]\n".encode()
    ),
    "missing-batch-file": cli_message("exec", "--batch", "{folder}/nope.yaml", "--dry-run"),
    "batch-is-a-folder": cli_message("exec", "--batch", "{folder}", "--dry-run"),
    "shard-3/2": cli_message("exec", BASE, "--dry-run", "--shard", "3/2"),
    "shard-a/b": cli_message("exec", BASE, "--dry-run", "--shard", "a/b"),
    "shard-0/0": cli_message("exec", BASE, "--dry-run", "--shard", "0/0"),
    "shard--1/2": cli_message("exec", BASE, "--dry-run", "--shard=-1/2"),
    "shard--1/2-separate": negative_shard_as_separate_argument,
    "shard-empty-text": cli_message("exec", BASE, "--dry-run", "--shard="),
    "shard-holds-nothing": empty_shard,
}


# --------------------------------------------------------------------------------------------------
# The documented table
# --------------------------------------------------------------------------------------------------

_ROW = re.compile(r"^\|\s*`(?P<case>[^`]+)`\s*\|(?P<cells>.*)\|\s*$")


def documented_rows() -> dict[str, str | None]:
    """Case id → documented message (None where the row documents no message)."""
    rows: dict[str, str | None] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", match["cells"])]
        message = cells[-1]
        rows[match["case"]] = message[1:-1].replace("\\|", "|") if message.startswith("`") else None
    return rows


def normalized(message: str, folder: Path) -> str:
    return message.replace(str(folder), "<tmp>").replace("\n", "↵")


def matches_documented(real: str, documented: str) -> bool:
    """`…` in the documented message stands for any text (version-dependent details)."""
    pattern = ".*?".join(re.escape(part) for part in documented.split("…"))
    return re.fullmatch(pattern, real, flags=re.DOTALL) is not None


def test_every_case_is_documented_and_every_documented_case_exists() -> None:
    rows = documented_rows()
    assert sorted(name for name, message in rows.items() if message is not None) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_documented_message_is_the_real_one(case: str, tmp_path: Path, capsys: Capture) -> None:
    real = normalized(CASES[case](tmp_path, capsys), tmp_path)
    documented = documented_rows()[case]
    assert documented is not None
    assert matches_documented(real, documented), f"\nreal:       {real}\ndocumented: {documented}"


# --------------------------------------------------------------------------------------------------
# Valid but unusual images are converted faithfully
# --------------------------------------------------------------------------------------------------


def test_12_bit_values_in_a_16_bit_png_keep_their_contrast(tmp_path: Path) -> None:
    values = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    image = read_image(png(tmp_path / "xray12.png", values))
    # Scaling by the 16-bit range would leave 0..15; the image's own range uses every 8-bit level.
    expected = np.rint(values / 4095.0 * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(image[..., 0], expected)
    assert len(np.unique(image)) == 256 and (image[..., 0] == image[..., 2]).all()
    full = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    np.testing.assert_array_equal(
        read_image(png(tmp_path / "full.png", full))[..., 1], np.rint(full / 257.0).astype(np.uint8)
    )


def test_16_bit_colour_and_gray_alpha_pngs_are_not_cut_to_their_high_byte(tmp_path: Path) -> None:
    ramp = np.linspace(0, 4095, 64).reshape(8, 8).astype(np.uint16)
    rgb = np.stack([ramp, 4095 - ramp, np.zeros_like(ramp)], axis=2)
    image = read_image(png16(tmp_path / "rgb16.png", rgb, colour_type=2))
    np.testing.assert_array_equal(image, np.rint(rgb / 4095.0 * 255.0).astype(np.uint8))
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 65535, np.uint16)], axis=2)
    np.testing.assert_array_equal(read_image(png16(tmp_path / "rgba16.png", rgba, colour_type=6)), image)
    gray_alpha = np.stack([ramp, np.full_like(ramp, 65535)], axis=2)
    gray = read_image(png16(tmp_path / "la16.png", gray_alpha, colour_type=4))
    np.testing.assert_array_equal(gray[..., 0], np.rint(ramp / 4095.0 * 255.0).astype(np.uint8))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert verify_images([tmp_path / "rgb16.png", tmp_path / "rgba16.png", tmp_path / "la16.png"]) == []
    cut = cut_in_half(png16(tmp_path / "cut16.png", rgb.repeat(8, 0).repeat(8, 1), colour_type=2))
    with pytest.raises(ImageError, match="cut16.png: is truncated or corrupt"):
        read_image(cut)


def test_rgba_keeps_the_stored_colours_whatever_the_alpha(tmp_path: Path) -> None:
    rgb = noise((12, 10, 3))
    alpha = np.tile(np.array([0, 64, 128, 255], np.uint8), 30).reshape(12, 10, 1)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(path)
    np.testing.assert_array_equal(read_image(path), rgb)
    assert verify_images([path]) == []


def test_cmyk_jpeg_is_converted_to_rgb_by_pillow(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:16, :, 0] = 220  # red top half
    rgb[16:, :, 2] = 200  # blue bottom half
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    assert Image.open(path).mode == "CMYK"
    image = read_image(path)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - rgb.astype(int)).max() <= 8  # JPEG rounding only
    assert verify_images([path]) == []


# --------------------------------------------------------------------------------------------------
# Nothing already written is lost
# --------------------------------------------------------------------------------------------------


def register_hostile(monkeypatch: pytest.MonkeyPatch, spec: DatasetSpec) -> None:
    monkeypatch.setattr(datasets, "DATASETS", datasets.DATASETS.copy())
    register_dataset(spec)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "no-positives",
            "cannot compute class weights: classes without both positive and negative training labels: 'B'",
        ),
        ("label-yes", "train.csv, row 3, column 'A': value 'yes' is not a label"),
    ],
)
def test_failing_exec_keeps_the_logs_and_writes_no_run(
    case: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        [f"images/p{i:02d}.png", str(i % 2), "0" if case == "no-positives" else str((i + 1) % 2)] for i in range(20)
    ]
    if case == "label-yes":
        rows[1][1] = "yes"
    register_hostile(monkeypatch, csv_dataset(tmp_path, rows))
    logs = tmp_path / "logs"
    logs.mkdir()
    ExperimentLog(logs / UNVALIDATED_LOG).append({"id": "earlier-run", "name": "kept", "status": "completed"})
    before = (logs / UNVALIDATED_LOG).read_bytes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEDBENCH_ROOT", raising=False)
    monkeypatch.delenv("MEDBENCH_GCS_BUCKET", raising=False)
    for key, folder in (("DATA", "data"), ("MODELS", "models"), ("LOGS", "logs"), ("WEIGHTS", "weights")):
        monkeypatch.setenv(f"MEDBENCH_{key}_DIR", str(tmp_path / folder))

    code = main(["exec", "hostile_WBCE_E1_B4_C0_N2_D32_DS602020_1LR3_LF5_Adam"])
    out, err = capsys.readouterr()
    assert code == 1 and out.startswith("failed")
    assert "Traceback" not in err
    assert expected in caplog.text  # the error log line (on stderr outside pytest) names the problem
    assert (logs / UNVALIDATED_LOG).read_bytes() == before
    failed = ExperimentLog(logs / FAILED_LOG).read()
    assert len(failed) == 1 and expected in failed[0]["error"]
    assert not any((tmp_path / "models").rglob("*.keras")) and not any((tmp_path / "models").rglob("config.json"))


def test_a_broken_batch_runs_nothing_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.yaml"
    batch.write_text(f"benchmarks:\n  - {BASE}\n  - {BASE}_extra\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDBENCH_LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("MEDBENCH_MODELS_DIR", str(tmp_path / "models"))
    assert main(["exec", "--batch", str(batch)]) == 2
    assert "benchmarks[1]" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "models").exists()

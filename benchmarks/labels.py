"""Label files: each medbench reader against a bare `pandas.read_csv` of the same file, side by side.

The readers validate every cell (labels, paths, views, sexes, ages, patient ids) and build the label
table; the bare read only parses the CSV into strings (`dtype=str, keep_default_na=False`). Image
existence is not checked (`check_images=False`), since the generated files name no real images.
Files:

- NIH's full `Data_Entry_2017_v2020.csv.gz` (112,120 rows) from `../shared/data/nih-metadata/`, as
  shipped and decompressed;
- a CheXpert-format file of 224,316 rows (CheXpert's size), made from the demo's `train.csv` with the
  patients renumbered, and the same ten times over (2.2 M rows) to show that the cost grows linearly;
- an ISIC-style one-hot file and a generic path + labels file of 224,316 rows each.

Repeats are interleaved (bare, reader, bare, reader, ...); the figure is the ratio of the medians.

    python benchmarks/labels.py
    python benchmarks/labels.py --quick   # a few thousand rows: checks the script runs
"""

from __future__ import annotations

import argparse
import csv
import gzip
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, Summary, add_common_arguments, interleave, print_header, python_versions, run_script

CHEXPERT_ROWS = 224_316
NIH_FILE = REPO.parent / "shared" / "data" / "nih-metadata" / "Data_Entry_2017_v2020.csv.gz"
RATIO_GOAL = 3.0
ONEHOT_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
GENERIC_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_repeats=3)
    parser.add_argument("--rows", type=int, default=CHEXPERT_ROWS, help="rows of the generated files")
    parser.add_argument("--no-large", action="store_true", help="leave out the 10x CheXpert-format file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.no_large = 3_000, 1, True
    return args


def demo_train_rows(work_dir: Path, seed: int) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a demo `train.csv` (written once under `work_dir`)."""
    from medbench.demo import DEMO_FOLDER, write_demo_dataset

    root = work_dir / f"labels-demo-s{seed}"
    if not (root / DEMO_FOLDER / "train.csv").is_file():
        write_demo_dataset(root, n_train_patients=200, n_valid_patients=2, seed=seed, overwrite=True)
    with open(root / DEMO_FOLDER / "train.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    return rows[0], rows[1:]


def write_chexpert_format(path: Path, header: list[str], rows: list[list[str]], count: int) -> Path:
    """`count` rows cycling through the demo rows, each cycle with its own patients (patientNNNNNN)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for index in range(count):
            cycle, row = divmod(index, len(rows))
            parts = rows[row][0].split("/")
            parts[2] = f"patient{int(parts[2].removeprefix('patient')) + cycle * 1000:06d}"
            writer.writerow(["/".join(parts), *rows[row][1:]])
    return path


def write_onehot(path: Path, count: int) -> Path:
    """An ISIC-style one-hot file: image name and one 0/1 column per class, one class per row."""
    if path.is_file():
        return path
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", *ONEHOT_CLASSES])
        for index in range(count):
            label = index % len(ONEHOT_CLASSES)
            writer.writerow(
                [f"ISIC_{index:07d}", *("1.0" if i == label else "0.0" for i in range(len(ONEHOT_CLASSES)))]
            )
    return path


def write_generic(path: Path, count: int) -> Path:
    """A path column and label columns holding 1, 0, -1 or nothing."""
    if path.is_file():
        return path
    values = ("1", "0", "-1", "", "0")
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", *GENERIC_CLASSES])
        for index in range(count):
            writer.writerow([f"images/p{index // 3:06d}/{index:07d}.png", *(values[(index + i) % 5] for i in range(5))])
    return path


def timed(function: Callable[[], object]) -> Callable[[], float]:
    def measure() -> float:
        began = time.perf_counter()
        function()
        return time.perf_counter() - began

    return measure


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import pandas as pd

    from medbench.data.readers import read_chestxray14_csv, read_chexpert_csv, read_generic_csv, read_onehot_csv

    work = args.work_dir / "labels"
    header, demo_rows = demo_train_rows(args.work_dir, args.seed)
    cases: dict[str, tuple[Path, Callable[[], object]]] = {}
    if NIH_FILE.is_file() and not args.quick:
        plain = work / NIH_FILE.stem
        if not plain.is_file():
            plain.parent.mkdir(parents=True, exist_ok=True)
            plain.write_bytes(gzip.decompress(NIH_FILE.read_bytes()))
        for nih in (NIH_FILE, plain):
            cases[f"NIH {nih.name}"] = (nih, lambda nih=nih: read_chestxray14_csv(nih, "images", check_images=False))
    sizes = [args.rows] + ([] if args.no_large else [10 * args.rows])
    for count in sizes:
        path = write_chexpert_format(work / f"chexpert-{count}.csv", header, demo_rows, count)
        cases[f"CheXpert format, {count:,} rows"] = (
            path,
            lambda path=path: read_chexpert_csv(path, path.parent, check_images=False),
        )
    onehot = write_onehot(work / f"onehot-{args.rows}.csv", args.rows)
    cases[f"one-hot (ISIC layout), {args.rows:,} rows"] = (
        onehot,
        lambda: read_onehot_csv(onehot, ".", "image", "jpg", check_images=False),
    )
    generic = write_generic(work / f"generic-{args.rows}.csv", args.rows)
    cases[f"generic path + labels, {args.rows:,} rows"] = (
        generic,
        lambda: read_generic_csv(generic, generic.parent, "file", check_images=False),
    )

    print_header(
        "label files: medbench reader / bare pandas.read_csv of the same file (seconds, lower is better)",
        {
            "bare read": "pandas.read_csv(file, dtype=str, keep_default_na=False)",
            "readers": "check_images=False (the generated files name no real images)",
            "versions": f"{python_versions(tensorflow=False)}, pandas {pd.__version__}",
            "repeats": f"{args.repeats}, interleaved",
        },
    )
    ratios = []
    for label, (path, read) in cases.items():
        bare = timed(lambda path=path: pd.read_csv(path, dtype=str, keep_default_na=False))
        results = interleave({"bare": bare, "reader": timed(read)}, args.repeats, verbose=False)
        bare_s, reader_s = Summary("bare", results["bare"], "s"), Summary("reader", results["reader"], "s")
        ratio = reader_s.median / bare_s.median
        ratios.append((label, bare_s, reader_s, ratio))
        print(f"  {label}: bare {bare_s.median:.3f} s, reader {reader_s.median:.3f} s", flush=True)
    print("\n-- figures (median over repeats) --")
    print(f"{'file':<44} {'bare s':>8} {'reader s':>9} {'ratio':>7}  goal <= {RATIO_GOAL:g}x")
    for label, bare_s, reader_s, ratio in ratios:
        verdict = "MET" if ratio <= RATIO_GOAL else "NOT MET"
        spread = f"(reader {min(reader_s.values):.3f}-{max(reader_s.values):.3f})"
        print(f"{label:<44} {bare_s.median:>8.3f} {reader_s.median:>9.3f} {ratio:>6.2f}x  {verdict} {spread}")
    return 0


if __name__ == "__main__":
    run_script(main, "labels.py")

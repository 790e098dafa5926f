"""`medbench` command line: mirrors the Python API (exec, reevaluate, validate, demo-data, …).

Each command imports what it needs when it runs, so `--help`, `exec --dry-run`, `inspect`, `list` and
`leaderboard` never start TensorFlow. Log lines go through tqdm, so they never garble a progress bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from medbench.benchmark.options import ExperimentOptions, option_argument
from medbench.benchmark.vocabulary import DEFAULT_ARCHITECTURES, STRATEGIES
from medbench.ensemble.arguments import add_ensemble_parser, ensemble_command
from medbench.errors import MedbenchError, shown
from medbench.interruption import Interrupted, install_handlers
from medbench.report.arguments import add_report_parser
from medbench.search.arguments import add_search_parser
from medbench.serving.arguments import add_serve_parser
from medbench.table_training.arguments import add_table_arguments, run_table
from medbench.xai.arguments import add_explain_parser

logger = logging.getLogger("medbench")


def _settings():
    from medbench.settings import Settings

    return Settings.from_env()


def cmd_exec(args: argparse.Namespace) -> int:
    from medbench.benchmark.spec import ExperimentSpec
    from medbench.experiment_exec import load_batch, parse_shard, run_batch, shard
    from medbench.tracking.logs import FAILED_LOG

    if args.table:
        return run_table(args, _settings(), _option_overrides(args))
    if args.batch:
        items = load_batch(args.batch)
    else:
        items = [ExperimentSpec(args.benchmark, args.architecture).check()]
    if args.shard is not None:
        index, count = parse_shard(args.shard)
        total, items = len(items), shard(items, index, count)
        if not items:
            print(f"medbench: shard {index}/{count} holds no experiments (the batch has {total})", file=sys.stderr)
            return 0
    if args.dry_run:
        for item in items:
            print(item.name)
        return 0
    settings = _settings()
    results = run_batch(items, settings, rerun=args.rerun, options=_option_overrides(args))
    failed = [entry for entry in results if entry.get("status") == "failed"]
    for entry in results:
        status = "skipped" if entry.get("skipped") else entry["status"]
        print(f"{status:9s} {entry['id']}  {entry['name']}")
    if failed:
        listing = "".join(f"\n  {entry['name']}: {str(entry.get('error', ''))[:500]}" for entry in failed[:20])
        more = f"\n  … and {len(failed) - 20} more" if len(failed) > 20 else ""
        print(
            f"medbench: error: {len(failed)} of {len(results)} experiment(s) failed "
            f"(recorded in {settings.logs_dir / FAILED_LOG}):{listing}{more}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _option_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--option key=value pairs, --strategy and --skip-unreadable, for every experiment of the run."""
    overrides = dict(args.option or [])
    if args.strategy:
        overrides["strategy"] = args.strategy
    if args.skip_unreadable:
        overrides["skip_unreadable"] = True
    return overrides


def cmd_reevaluate(args: argparse.Namespace) -> int:
    from medbench.ensemble.reevaluate import reevaluate_all

    report = reevaluate_all(_settings(), args.run or None, epochs=args.epochs)
    for entry in report.entries:
        val = entry["val_again"]["macro"].get("auroc")
        test = entry["test_again"]["macro"].get("auroc")
        print(f"{entry['id']}  val mean AUROC {_fmt(val)}  test mean AUROC {_fmt(test)}  {entry['name']}")
    return _report_skipped(report.skipped, "the others were re-evaluated")


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


SKIPPED_SHOWN = 10


def _report_skipped(skipped: Sequence[str], rest: str) -> int:
    """One `medbench: error:` line naming what a command skipped (the first few) and exit 1; 0 when nothing was."""
    if not skipped:
        return 0
    listed = "; ".join(skipped[:SKIPPED_SHOWN])
    more = f"; and {len(skipped) - SKIPPED_SHOWN} more (see the warnings above)" if len(skipped) > SKIPPED_SHOWN else ""
    print(f"medbench: error: skipped {len(skipped)} damaged item(s), {rest}: {listed}{more}", file=sys.stderr)
    return 1


def cmd_predict(args: argparse.Namespace) -> int:
    from medbench.prediction import images_of_table, predict_images, resolve_run, write_numpy_predictions

    settings = _settings()
    table = args.test_dataframe
    names, files = images_of_table(table, args.img_dir) if table else ([Path(p).stem for p in args.images], args.images)
    run = resolve_run(args.run, settings)
    frame = predict_images(run, files, settings)
    if table:  # the table's names instead of paths: `medbench evaluate` joins them to its ground truth
        frame = frame.drop(columns="image").assign(image_name=names)[["image_name", *run.classes]]
    if not args.out:
        print(frame.to_csv(index=False, float_format="%.6f"), end="")
        return 0
    from medbench.atomic import write_bytes_atomic

    write_bytes_atomic(args.out, frame.to_csv(index=False, float_format="%.6f").encode("utf-8"))
    numpy = write_numpy_predictions(args.out, names, frame[list(run.classes)].to_numpy()) if args.generate_numpy else ()
    print(f"{len(frame)} prediction(s) written to {', '.join(map(str, (args.out, *numpy)))}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medbench.evaluation.evaluate import evaluate_files

    summary = evaluate_files(
        args.truth,
        args.predictions,
        args.out,
        val_truth=args.val_truth,
        val_predictions=args.val_predictions,
        threshold_method=args.threshold_method,
        threshold=args.threshold,
        patient_column=args.patient_column,
        task=args.task,
        n_resamples=args.bootstrap,
    )
    macro = summary["macro"]
    interval = macro.get("auroc_ci") or {}
    low, high = interval.get("low"), interval.get("high")
    ci = f" (95% CI {low:.4f}-{high:.4f})" if low is not None and high is not None else ""
    auroc = "undefined" if macro["auroc"] is None else f"{macro['auroc']:.4f}"
    counts = f"{summary['n_images']} images, {len(summary['classes'])} classes"
    print(f"{counts}: mean AUROC {auroc}{ci}; written to {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from medbench.prediction import resolve_run
    from medbench.xai.arguments import explain_options
    from medbench.xai.explain import explain_run

    settings = _settings()
    print(explain_run(resolve_run(args.run, settings), args.images, args.out, explain_options(args)).text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from medbench.report.arguments import report_options
    from medbench.report.reports import write_reports

    for path in write_reports(_settings(), args.runs, args.out, **report_options(args)):
        print(path)
    return 0


def cmd_repair_logs(args: argparse.Namespace) -> int:
    from medbench.tracking.logs import repair_logs

    settings = _settings()
    skipped: list[str] = []
    logged = repair_logs(settings.models_dir, settings.logs_dir, skipped=skipped)
    print(f"logged {len(logged)} completed run(s) missing from the logs" + (f": {', '.join(logged)}" if logged else ""))
    return _report_skipped(skipped, "the other runs were checked")


def cmd_validate(args: argparse.Namespace) -> int:
    from medbench.tracking.logs import validate_entries

    skipped: list[str] = []
    moved = validate_entries(_settings().logs_dir, args.run or None, skipped=skipped)
    print(f"validated {len(moved)} experiment(s)")
    return _report_skipped(skipped, "the others were validated")


def cmd_sync(args: argparse.Namespace) -> int:
    from medbench.tracking.bucket import parse_deadline
    from medbench.tracking.storage import sync

    report = sync(_settings(), deadline_s=parse_deadline(args.deadline))
    for run_id in report.uploaded:
        print(f"uploaded  {run_id}  {report.remote[run_id]}")
    for run_id in report.pending:
        print(f"pending   {run_id}")
    for run_id, reason in report.failed.items():
        print(f"failed    {run_id}  {reason}")
    if report.warning:
        print(f"warning: {report.warning}", file=sys.stderr)
    return 0 if report.complete else 1


def cmd_pull(args: argparse.Namespace) -> int:
    from medbench.tracking.bucket import parse_deadline
    from medbench.tracking.storage import pull

    print(pull(args.run_id, _settings(), deadline_s=parse_deadline(args.deadline)))
    return 0


def cmd_merge_logs(args: argparse.Namespace) -> int:
    from medbench.tracking.merge import merge_logs

    missing = [folder for folder in args.sources if not Path(folder).is_dir()]
    if missing:
        raise MedbenchError(f"log folder(s) {missing} do not exist; expected folders holding shard logs")
    skipped: list[str] = []
    added = merge_logs(args.sources, args.into, skipped=skipped)
    for name, count in added.items():
        print(f"{count:6d} new  {name}")
    return _report_skipped(skipped, "the others were merged")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from medbench.leaderboard import board, format_leaderboard

    settings = _settings()
    ranked = board(settings.logs_dir, settings.models_dir, per_class=not args.summary)
    print(format_leaderboard(ranked.frame))
    return _report_skipped(ranked.skipped, "the others are listed")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from medbench.demo import write_demo_dataset

    out = Path(args.out) if args.out else _settings().data_dir / "demo"
    root = write_demo_dataset(
        out,
        n_train_patients=args.patients,
        n_valid_patients=args.valid_patients,
        seed=args.seed,
        overwrite=args.overwrite,
        difficulty=args.difficulty,
    )
    print(f"demo dataset written to {root}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from medbench.demo import run_demo

    print(run_demo(_settings()))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from medbench.benchmark import Benchmark

    benchmark = Benchmark.from_name(args.name, legacy=args.legacy)
    print(json.dumps(benchmark.to_dict(), indent=2))
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from medbench.benchmark import Benchmark
    from medbench.preprocessing.dataset_cache import build_benchmark_cache

    cache = build_benchmark_cache(
        Benchmark.from_name(args.benchmark), _settings(), workers=args.workers, strict=args.strict, verify=args.verify
    )
    summary = cache.summary
    for damage in summary.damaged:
        print(f"damaged {damage} (rebuilt)")
    print(f"cache {cache.directory}")
    print(f"{summary.computed} built, {summary.reused} reused, {summary.failed} failed; report {cache.report_path}")
    if args.verify:
        intact = max(summary.verified - summary.shards_written, 0) if summary.damaged else summary.verified
        damaged = len(summary.damaged)
        print(f"verified {summary.verified} shard(s): {intact} intact, {damaged} damaged file(s) rebuilt")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "architectures":
        from medbench.architectures.weights import architecture_table

        print(architecture_table(_settings().weights_dir))
        return 0
    if args.what == "datasets":
        from medbench.data.datasets import dataset_names

        names = dataset_names()
    else:
        from medbench.benchmark.predefined import PREDEFINED

        names = tuple(PREDEFINED)
    print("\n".join(names))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("exec", help="run one benchmark or a batch of experiments")
    run.add_argument("benchmark", nargs="?", help="a benchmark name (instead of --batch)")
    run.add_argument("--batch", help="YAML or CSV batch file")
    run.add_argument(
        "--architecture",
        help=f"registry key for a single benchmark (default by dimension: {', '.join(DEFAULT_ARCHITECTURES.values())})",
    )
    run.add_argument(
        "--option",
        action="append",
        type=option_argument,
        metavar="KEY=VALUE",
        help="an ExperimentOptions field for every experiment, as in a batch file's options: (repeatable), "
        f"e.g. max_train_samples=400; keys: {', '.join(ExperimentOptions.keys())}",
    )
    run.add_argument("--dry-run", action="store_true", help="print the experiment names and stop")
    run.add_argument("--shard", help="run only shard i of n (i/n, from 0): every n-th experiment from i")
    run.add_argument(
        "--rerun", action="store_true", help="start new runs even where a completed run exists (default: skip it)"
    )
    run.add_argument(
        "--strategy", choices=STRATEGIES, help="tf.distribute strategy for every run (--option strategy=…)"
    )
    run.add_argument(
        "--skip-unreadable", action="store_true", help="leave out unreadable images instead of stopping (listed)"
    )
    add_table_arguments(run)
    run.set_defaults(func=cmd_exec, check=partial(_check_exec, run))

    again = commands.add_parser("reevaluate", help="recompute metrics of saved runs and ensembles (and of every epoch)")
    again.add_argument("--run", action="append", help="run id (repeatable; default all saved runs)")
    again.add_argument("--epochs", action="store_true", help="also re-evaluate every saved epoch checkpoint")
    again.set_defaults(func=cmd_reevaluate)

    predict = commands.add_parser("predict", help="class probabilities of image files from a saved run's model")
    predict.add_argument("run", help="run id or run folder")
    predict.add_argument("images", nargs="*", help="image files (or --test-dataframe and --img-dir)")
    predict.add_argument("--out", help="CSV file to write (default: print)")
    predict.add_argument("--test-dataframe", help="CSV whose first column (image_name) names the images (TIML)")
    predict.add_argument("--img-dir", help="with --test-dataframe: the folder of the images it names")
    predict.add_argument("--generate-numpy", action="store_true", help="with --out: also OUT.npy and OUT/*.npy")
    predict.set_defaults(func=cmd_predict, check=partial(_check_predict, predict))

    judge = commands.add_parser(
        "evaluate", help="any predictions CSV against its truth: summary, per-image results, plots"
    )
    judge.add_argument("--truth", required=True, help="CSV: image id column and a 0/1 column per class")
    judge.add_argument("--predictions", required=True, help="CSV: image id column and a probability per class")
    judge.add_argument("--out", required=True, help="folder for summary.json/.csv, per_image_results.csv and PNGs")
    judge.add_argument("--val-truth", help="validation truth: choose the thresholds there (with --val-predictions)")
    judge.add_argument("--val-predictions", help="validation predictions the thresholds are chosen on")
    judge.add_argument("--threshold-method", default="youden", choices=("youden", "sensitivity", "fbeta"))
    judge.add_argument("--threshold", type=float, default=0.5, help="the fixed threshold without validation files")
    judge.add_argument("--patient-column", help="truth column of patient ids: the bootstrap resamples patients")
    judge.add_argument("--task", default="auto", choices=("auto", "multilabel", "multiclass"))
    judge.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the AUROC intervals")
    judge.set_defaults(func=cmd_evaluate)
    add_explain_parser(commands).set_defaults(func=cmd_explain)
    add_ensemble_parser(commands).set_defaults(func=ensemble_command)
    add_search_parser(commands)
    add_serve_parser(commands)
    add_report_parser(commands).set_defaults(func=cmd_report)

    repair = commands.add_parser(
        "repair-logs", help="log every completed run under models/ that no log has (the run folders are the truth)"
    )
    repair.set_defaults(func=cmd_repair_logs)
    validate = commands.add_parser("validate", help="move entries from the unvalidated to the validated log")
    validate.add_argument("--run", action="append", help="run id (repeatable; default all)")
    validate.set_defaults(func=cmd_validate)

    upload = commands.add_parser("sync", help="upload the runs waiting in logs/outbox to MEDBENCH_GCS_BUCKET")
    upload.add_argument(
        "--deadline", default="60", help="seconds (in (0, 86400]) of requests and retries before giving up for now"
    )
    upload.set_defaults(func=cmd_sync)

    fetch = commands.add_parser("pull", help="download a run folder by id from MEDBENCH_GCS_BUCKET into models/")
    fetch.add_argument("run_id")
    fetch.add_argument(
        "--deadline", default="60", help="seconds (in (0, 86400]) of requests and retries before giving up"
    )
    fetch.set_defaults(func=cmd_pull)

    merge = commands.add_parser("merge-logs", help="merge the log folders of shards into one (each entry once)")
    merge.add_argument("sources", nargs="+", help="log folders of the shards")
    merge.add_argument("--into", required=True, help="the log folder to merge into (e.g. logs)")
    merge.set_defaults(func=cmd_merge_logs)

    board = commands.add_parser("leaderboard", help="completed runs ranked by validation mean AUROC")
    board.add_argument("--summary", action="store_true", help="mean AUROC only, no per-class columns")
    board.set_defaults(func=cmd_leaderboard)

    demo = commands.add_parser("demo-data", help="write the synthetic CheXpert-format demo dataset")
    demo.add_argument("--out", help="output folder (default <data dir>/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--patients", type=int, default=200, help="training patients")
    demo.add_argument("--valid-patients", type=int, default=40)
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo dataset")
    demo.add_argument("--difficulty", default="easy", help="easy (near 1.0 AUROC), medium (make demo's) or hard")
    demo.set_defaults(func=cmd_demo_data)

    demo_job = commands.add_parser("demo", help="the demo job: demo data, a small batch, re-evaluation, leaderboard")
    demo_job.set_defaults(func=cmd_demo)

    inspect = commands.add_parser("inspect", help="parse a benchmark name and print its fields")
    inspect.add_argument("name")
    inspect.add_argument(
        "--legacy", action="store_true", help="read the original platform's spellings too (Chexpert_…, Uones, LR4, …)"
    )
    inspect.set_defaults(func=cmd_inspect)

    prep = commands.add_parser("preprocess", help="build (or reuse) the preprocessing cache of a benchmark's dataset")
    prep.add_argument("benchmark", help="a benchmark name (its dataset, image size, crop and transformations)")
    prep.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    prep.add_argument("--strict", action="store_true", help="fail when any image cannot be read")
    prep.add_argument(
        "--verify", action="store_true", help="check every shard's checksum; rebuild and list the damaged ones"
    )
    prep.set_defaults(func=cmd_preprocess)

    listing = commands.add_parser("list", help="list architectures, datasets or predefined benchmarks")
    listing.add_argument("what", choices=("architectures", "datasets", "benchmarks"))
    listing.set_defaults(func=cmd_list)
    return parser


def _check_predict(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if bool(args.images) == bool(args.test_dataframe) or bool(args.test_dataframe) != bool(args.img_dir):
        parser.error("give image files, or --test-dataframe FILE with --img-dir DIR")
    if args.generate_numpy and not args.out:
        parser.error("--generate-numpy writes beside the CSV: give --out FILE.csv")


def _check_exec(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if sum(map(bool, (args.batch, args.benchmark, args.table))) != 1:
        parser.error("give one of --batch FILE, --table FILE.csv or one BENCHMARK name")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "check", None) is not None:
        args.check(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_handlers()
    try:
        with logging_redirect_tqdm():
            return args.func(args)
    except MedbenchError as error:
        print(f"medbench: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file problem no check foresaw: still one line, and the command to see more
        logging.getLogger(__name__).debug("unforeseen file error", exc_info=True)
        where = f"{shown(str(error.filename))}: " if error.filename is not None else ""
        print(
            f"medbench: error: {where}{error.strerror or error} ({type(error).__name__}); expected a path medbench "
            "can use; medbench stopped there: fix it and run the same command again (-v shows where it happened)",
            file=sys.stderr,
        )
        return 2
    except (Interrupted, KeyboardInterrupt) as stop:
        if not isinstance(stop, Interrupted):
            stop = Interrupted(signal.SIGINT)
        again = shlex.join(["medbench", *(sys.argv[1:] if argv is None else argv)])
        print(f"medbench: {stop}; to go on, run: {again}", file=sys.stderr)
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())

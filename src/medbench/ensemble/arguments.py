"""The `medbench ensemble` command's arguments (no TensorFlow: `medbench --help` builds them).

``medbench ensemble RUN_ID RUN_ID… [--method mean|weighted|stacking] [--meta-learner …] [--tta N --aggregate …]``
combines saved runs; ``medbench ensemble --bagging K BENCHMARK [--architecture KEY] [--option KEY=VALUE]``
trains K bagging members of a benchmark first (reusing completed ones) and combines them.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING, Any

from medbench.benchmark.options import ExperimentOptions, option_argument
from medbench.benchmark.vocabulary import AUGMENTATIONS, BAGGING_FOLDS, DEFAULT_ARCHITECTURES
from medbench.ensemble.options import AGGREGATES, META_LEARNERS, METHODS, EnsembleOptions, TTAOptions

if TYPE_CHECKING:
    from medbench.settings import Settings


def add_ensemble_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `ensemble` to the command line's subcommands and return its parser (the caller sets its function)."""
    parser = commands.add_parser(
        "ensemble", help="combine saved runs (mean, weighted, stacking; test-time augmentation) or train a bagging set"
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_ID", help="member run ids (with --bagging: one BENCHMARK)")
    parser.add_argument("--method", choices=METHODS, default="mean", help="how members combine (default mean)")
    parser.add_argument(
        "--meta-learner", choices=META_LEARNERS, default="logreg", help="stacking's learner (default logreg)"
    )
    parser.add_argument("--tta", type=int, metavar="N", help="test-time augmentation: N augmented predictions each")
    parser.add_argument("--aggregate", choices=AGGREGATES, default="mean", help="how TTA cycles combine (mean)")
    parser.add_argument(
        "--augment",
        action="append",
        choices=AUGMENTATIONS,
        help="TTA augmentation (repeatable; default the member's benchmark's, or all when it has none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the TTA draws and the meta-learner (0)")
    parser.add_argument(
        "--bagging", type=int, metavar="K", help=f"train K ({BAGGING_FOLDS}) members on patient folds of BENCHMARK"
    )
    parser.add_argument(
        "--architecture",
        help=f"with --bagging: the members' registry key (default {', '.join(DEFAULT_ARCHITECTURES.values())})",
    )
    parser.add_argument(
        "--option", action="append", type=option_argument, metavar="KEY=VALUE", help="with --bagging: a member option"
    )
    parser.add_argument("--rerun", action="store_true", help="with --bagging: train new members even if complete")
    parser.set_defaults(check=partial(_check, parser))
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.bagging is not None and len(args.runs) != 1:
        parser.error("--bagging K takes one BENCHMARK name, not run ids")
    if args.bagging is None and (args.architecture or args.option or args.rerun):
        parser.error("--architecture, --option and --rerun go with --bagging K BENCHMARK")
    if args.tta is None and (args.augment or args.aggregate != "mean"):
        parser.error("--aggregate and --augment go with --tta N")


def ensemble_options(args: argparse.Namespace) -> EnsembleOptions:
    """The EnsembleOptions the parsed arguments ask for (ConfigError for a bad setting)."""
    tta = None
    if args.tta is not None:
        tta = TTAOptions(args.tta, args.aggregate, tuple(args.augment) if args.augment else None, args.seed)
    return EnsembleOptions(args.method, args.meta_learner, tta, args.seed)


def ensemble_command(args: argparse.Namespace) -> int:
    """`medbench ensemble`: build the ensemble and print what `run_ensemble` says."""
    from medbench.settings import Settings

    print(run_ensemble(args, Settings.from_env()))
    return 0


def run_ensemble(args: argparse.Namespace, settings: Settings) -> str:
    """Build (or, with --bagging, train and build) the ensemble; returns the lines the command prints."""
    options = ensemble_options(args)
    if args.bagging is not None:
        from medbench.ensemble.bagging import train_bagging

        run_options = ExperimentOptions.from_dict(dict(args.option or []))
        entry = train_bagging(
            args.runs[0],
            args.bagging,
            settings,
            architecture=args.architecture,
            run_options=run_options,
            options=options,
            rerun=args.rerun,
        )
    else:
        from medbench.ensemble.build import build_ensemble

        entry = build_ensemble(args.runs, options, settings)
    return summary(entry)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def summary(entry: dict[str, Any]) -> str:
    """One line per ensemble: id, val and test mean AUROC, name; then its members."""
    val, test = entry["val"]["macro"].get("auroc"), entry["test"]["macro"].get("auroc")
    lines = [f"{entry['id']}  val mean AUROC {_fmt(val)}  test mean AUROC {_fmt(test)}  {entry['name']}"]
    lines += [f"  member {member}" for member in entry["members"]]
    return "\n".join(lines)

"""`medbench search`: its arguments and command (no TensorFlow or Optuna until a study runs)."""

from __future__ import annotations

import argparse


def add_search_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `search` to the command line's subcommands (it sets its own function)."""
    search = commands.add_parser(
        "search", help="hyperparameter search with Optuna: every trial an ordinary run, pruned on val mean AUROC"
    )
    search.add_argument("space", help="YAML search space (base benchmark, fields to search, trials, pruner)")
    search.add_argument(
        "--storage", help="Optuna storage URL shared by many workers (default: SQLite file under logs/search/)"
    )
    search.add_argument("--trials", type=int, help="finished trials the study runs to (default: the file's trials)")
    search.add_argument("--out", help="folder of the leaderboard and plots (default logs/search/<study>/)")
    search.set_defaults(func=search_command)
    return search


def search_command(args: argparse.Namespace) -> int:
    """Run (or continue) the study; print its best trials and where the results are."""
    from medbench.search.space import load_search_space
    from medbench.search.study import run_search
    from medbench.settings import Settings

    summary = run_search(
        load_search_space(args.space), Settings.from_env(), storage=args.storage, trials=args.trials, out=args.out
    )
    print(summary.text())
    return 0

"""Running the real `medbench` CLI in a child process against a test's project folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from medbench.settings import Settings


def medbench_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a child `medbench` at `settings`' folders."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDBENCH_")}
    env.update(
        MEDBENCH_ROOT=str(settings.root),
        MEDBENCH_DATA_DIR=str(settings.data_dir),
        MEDBENCH_MODELS_DIR=str(settings.models_dir),
        MEDBENCH_LOGS_DIR=str(settings.logs_dir),
        MEDBENCH_WEIGHTS_DIR=str(settings.weights_dir),
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    if settings.cache_dir is not None:
        env["MEDBENCH_CACHE_DIR"] = str(settings.cache_dir)
    return env


def command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "medbench.cli", *args]


def run_medbench(
    args: Sequence[str], settings: Settings, *, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(args),
        env=medbench_env(settings, **extra),
        cwd=settings.root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_medbench(args: Sequence[str], settings: Settings, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(args),
        env=medbench_env(settings, **extra),
        cwd=settings.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

"""Project files: the README's two commands, .ci/run, .env.example coverage, download_dataset.sh."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    head = (REPO / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_env_example_documents_every_variable_read() -> None:
    read = set()
    for path in (REPO / "src").rglob("*.py"):
        read |= set(re.findall(r"\b(MEDBENCH_[A-Z_]+)\b", path.read_text()))
    read |= set(
        re.findall(r"\$\{?(MEDBENCH_[A-Z_]+|CHEXPERT_URL|NIH_URLS)", (REPO / "download_dataset.sh").read_text())
    )
    documented = (REPO / ".env.example").read_text()
    assert read, "no variables found: the scan is broken"
    assert sorted(name for name in read if name not in documented) == []


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CHEXPERT_URL", "NIH_URLS")}
    return subprocess.run(
        ["bash", str(REPO / "download_dataset.sh"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_download_script_usage_and_clear_refusals(tmp_path: Path) -> None:
    assert run_script("-h").returncode == 0 and "-a" in run_script("-h").stdout
    assert run_script().returncode == 2
    result = run_script("-c", "-d", str(tmp_path))
    assert result.returncode == 1 and "CHEXPERT_URL" in result.stderr
    assert list(tmp_path.iterdir()) == []

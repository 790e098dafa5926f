"""Batch files and --option values: repeated keys, aliases and deep nesting are refused, in bounded time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.benchmark.options import parse_assignment
from medbench.benchmark.yaml_text import MAX_DEPTH, load_yaml
from medbench.errors import ConfigError

BASE = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def test_plain_yaml_reads_as_pyyaml_reads_it() -> None:
    text = (
        "benchmarks: [a, b]\noptions: {max_train_samples: 400, tensorboard: false}\n"
        "grid:\n  - base: x\n    vary: {lr: [1, 2]}\n"
    )
    assert load_yaml(text, "f.yaml") == {
        "benchmarks": ["a", "b"],
        "options": {"max_train_samples": 400, "tensorboard": False},
        "grid": [{"base": "x", "vary": {"lr": [1, 2]}}],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("benchmarks: [a]\nbenchmarks: [b]\n", "f.yaml, line 2: key 'benchmarks' appears twice in one mapping"),
        ("options:\n  lr: 1\n  lr: 2\n", "f.yaml, line 3: key 'lr' appears twice"),
        ("a: &x [1]\nb: *x\n", "f.yaml, line 2: YAML alias '*x' is not accepted"),
        (BILLION_LAUGHS, "f.yaml, line 2: YAML alias '*a' is not accepted"),
        ("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), f"nested deeper than {MAX_DEPTH} levels"),
        ("[" * 100_000, f"nested deeper than {MAX_DEPTH} levels"),
        ("a: [1, 2\n", "f.yaml: not valid YAML"),
    ],
    ids=["repeated-top-key", "repeated-nested-key", "alias", "billion-laughs", "deep", "very-deep", "malformed"],
)
def test_hostile_yaml_is_one_clear_error(text: str, message: str) -> None:
    began = time.monotonic()
    with pytest.raises(ConfigError) as error:
        load_yaml(text, "f.yaml")
    assert message in str(error.value)
    assert len(str(error.value)) < 1000, "messages never print unbounded values"
    assert time.monotonic() - began < 10


@pytest.mark.parametrize(
    "text", [BILLION_LAUGHS, "benchmarks: [a]\nbenchmarks: [b]\n", "[" * 100_000], ids=["laughs", "repeat", "deep"]
)
def test_exec_dry_run_refuses_hostile_batches(tmp_path: Path, text: str) -> None:
    batch = tmp_path / "batch.yaml"
    batch.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "medbench.cli", "exec", "--batch", str(batch), "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"medbench: error: {batch}") and len(line) < 1000


def test_option_values_are_read_strictly() -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        parse_assignment("upsample_factors={Edema: 2, Edema: 3}")

"""Work too large for the machine is refused before it starts, with the estimate and what to change."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from medbench.benchmark.spec import ExperimentSpec
from medbench.capacity import available_memory, free_disk, gib, require_disk, require_memory
from medbench.errors import CapacityError
from medbench.experiment_data import batch_memory, prepare
from medbench.settings import Settings


def test_memory_and_disk_are_read_from_the_machine(tmp_path: Path) -> None:
    memory = available_memory()
    assert memory is not None and 2**26 < memory
    assert free_disk(tmp_path / "not" / "yet" / "made") == pytest.approx(shutil.disk_usage(tmp_path).free, rel=0.01)


def test_a_need_beyond_what_is_free_is_refused_with_both_figures(tmp_path: Path) -> None:
    free = free_disk(tmp_path)
    assert free is not None
    with pytest.raises(CapacityError, match=rf"the cache needs {gib(free * 2)} of disk in .* is free; expected less"):
        require_disk(free * 2, tmp_path, "the cache", advice="a smaller image size")
    require_disk(1, tmp_path, "the cache", advice="-")
    with pytest.raises(CapacityError, match="of memory and .* is available; expected less: smaller batches"):
        require_memory(2**60, "training", advice="smaller batches")


def test_a_benchmark_whose_batches_cannot_fit_is_refused_before_its_data_is_read(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, cache_dir=tmp_path / "cache")
    spec = ExperimentSpec("demo_BCE_E1_B4096_C0_N5_D4096_DS8020_1LR3_LF5_Adam")
    assert batch_memory(spec) >= 4096 * 4096**2 * 3
    with pytest.raises(CapacityError, match="a batch of 4096 images of 4096 px needs at least"):
        prepare(spec, settings)
    assert not settings.cache_root.exists()
    small = ExperimentSpec("demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam")
    assert batch_memory(small) < 2**20

"""Shared fixtures: a small synthetic CheXpert-format dataset, per-test project folders, a headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# google-auth must never probe the GCE metadata server (a non-loopback address) from tests.
os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"

from medbench.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="../shared/data (real NIH chest X-rays) is not present beside the repository"
)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a small demo dataset (60 training patients) under demo/."""
    from medbench.demo import write_demo_dataset

    data_dir = tmp_path_factory.mktemp("data")
    write_demo_dataset(data_dir / "demo", n_train_patients=60, n_valid_patients=15, seed=3)
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, demo_data_dir: Path) -> Settings:
    """Project folders for one test: shared demo data, private models/ and logs/."""
    return Settings(
        root=tmp_path,
        data_dir=demo_data_dir,
        models_dir=tmp_path / "models",
        logs_dir=tmp_path / "logs",
        weights_dir=tmp_path / "weights",
    )


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium (.ci/run installs it): Playwright drives it through executable_path, with no browser download."""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium for the page tests (the serve app, the reports); skips, saying why, without one."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()

"""Take docs/images/report.png: the `medbench report` page of a real demo run, shot in headless Chromium.

    make demo                                   # or any project with a completed run
    .venv/bin/python docs/screenshot.py         # the newest completed run under models/
    .venv/bin/python docs/screenshot.py RUN_ID --out docs/images/report.png --height 1500

The project folders come from the MEDBENCH_* variables as for every command. Without a completed run
the script first trains the demo's first benchmark (`DEMO_BENCHMARKS[0]`, 5 epochs at 64 px, a few
minutes on a laptop CPU) on the demo data. The browser is Debian's ``chromium`` (``apt-get install -y
chromium``) driven by Playwright (``pip install playwright``, in the ``test`` extra); nothing is downloaded.
The PNG is the top of the page (the run, its training curves and both per-class tables; or the top
`--height` CSS pixels) with the Grad-CAM section below it, reduced to 256 colours when needed to stay
under 400 KB.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
from pathlib import Path

from PIL import Image

from medbench.benchmark.spec import ExperimentSpec
from medbench.benchmark.vocabulary import DEFAULT_ARCHITECTURE
from medbench.demo import DEMO_BENCHMARKS, completed_runs, ensure_demo_data
from medbench.experiment_exec import run_batch
from medbench.report import write_reports
from medbench.settings import Settings

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1200
LIMIT = 400_000
logger = logging.getLogger("screenshot")


def demo_run(settings: Settings) -> str:
    """The newest completed run's id, training the demo's first benchmark when there is none."""
    runs = completed_runs(settings)
    if not runs:
        logger.info("no completed run under %s: training %s", settings.models_dir, DEMO_BENCHMARKS[0].name)
        ensure_demo_data(settings)
        run_batch([ExperimentSpec(DEMO_BENCHMARKS[0], DEFAULT_ARCHITECTURE)], settings)
        runs = completed_runs(settings)
    return max(runs, key=lambda run: str(run.config.get("created", ""))).run_id


def shoot(page: Path, out: Path, height: int | None = None) -> None:
    """A PNG of the top of `page` (down to its per-class tables, or `height` CSS pixels) and its Grad-CAM
    section, at most LIMIT bytes when 256 colours allow it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        tab.goto(page.as_uri(), wait_until="load")
        full = tab.evaluate("() => document.documentElement.scrollHeight")
        if height is None:
            results = tab.locator("#results").bounding_box()
            height = int(results["y"] + results["height"] + 8) if results is not None else full
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(height, full)}
        parts = [tab.screenshot(full_page=True, clip=clip)]
        box = tab.locator("#gradcam").bounding_box()
        if box is not None and box["y"] >= height:
            clip = {"x": 0, "y": box["y"] - 12, "width": WIDTH, "height": box["height"] + 24}
            parts.append(tab.screenshot(full_page=True, clip=clip))
        browser.close()
    pictures = [Image.open(io.BytesIO(png)).convert("RGB") for png in parts]
    picture = Image.new("RGB", (WIDTH, sum(part.height for part in pictures)), "white")
    top = 0
    for part in pictures:
        picture.paste(part, (0, top))
        top += part.height
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    if buffer.tell() > LIMIT:
        buffer = io.BytesIO()
        picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    logger.info("%s: %d x %d px, %d KB", out, picture.width, picture.height, buffer.tell() // 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run id (default: the newest completed run)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "images" / "report.png"))
    parser.add_argument("--height", type=int, help="CSS pixels from the top (default: down to the tables)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = Settings.from_env()
    run_id = args.run or demo_run(settings)
    with tempfile.TemporaryDirectory(prefix="medbench-screenshot-") as folder:
        (page,) = write_reports(settings, [run_id], folder)
        shoot(page, Path(args.out), args.height)
    return 0


if __name__ == "__main__":
    sys.exit(main())

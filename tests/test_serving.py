"""`medbench serve`: every route and each hostile upload against a real uvicorn server in its own process."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from cli_process import start_medbench
from gcs_emulator import free_port, running_emulator
from PIL import Image

from medbench.serving.uploads import UploadError, check_upload, confidence, safe_filename, sniff
from medbench.settings import Settings

BENCHMARK = "demo_BCE_E1_B16_C0_N5_D32_DS8020_1LR3_LF5_Adam"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb(side: int = 30000) -> bytes:
    """A valid grey PNG of side × side zeros: under a megabyte on disk, `side`² bytes decoded."""
    compressor, parts, row = zlib.compressobj(9), [], b"\x00" * (side + 1)
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


# uploads, without a server


def test_uploads_are_typed_by_their_bytes_and_sized_by_their_header() -> None:
    png = cv2.imencode(".png", np.zeros((20, 30), np.uint8))[1].tobytes()
    jpeg = cv2.imencode(".jpg", np.zeros((40, 50, 3), np.uint8))[1].tobytes()
    assert (sniff(png), sniff(jpeg), sniff(b"%PDF-1.7 ..."), sniff(b"hello, world")) == ("png", "jpeg", "pdf", "text")
    assert (check_upload(png).width, check_upload(png).height) == (30, 20)
    assert (check_upload(jpeg).width, check_upload(jpeg).height) == (50, 40)
    with pytest.raises(UploadError, match="the upload is pdf, not an image") as refused:
        check_upload(b"%PDF-1.7 ...")
    assert refused.value.status == 415
    with pytest.raises(UploadError, match="30000 × 30000 pixels would decode to 900,000,000") as bomb:
        check_upload(_bomb())
    assert bomb.value.status == 413
    with pytest.raises(UploadError, match="truncated PNG"):
        check_upload(png[:14])
    assert safe_filename("../../etc/passwd") == "passwd" and safe_filename("a\x00b.png") == "ab.png"
    assert safe_filename("C:\\x\\..\\y.png") == "y.png" and safe_filename("") == "upload"
    assert confidence(0.125, 0.125) == 0 and confidence(1.0, 0.125) == 1 and confidence(0.0, 0.125) == -1
    assert confidence(0.316133588552475, 1 / 8) == pytest.approx(0.21843838691711426)  # TIML's manual
    assert confidence(1.357307792204665e-05, 1 / 8) == pytest.approx(-0.9998914153766236)


def test_the_batcher_pads_batches_to_few_shapes_and_returns_each_request_its_row() -> None:
    import asyncio

    from medbench.serving.batcher import MicroBatcher

    shapes: list[int] = []

    def predict(images: np.ndarray) -> np.ndarray:
        shapes.append(len(images))
        return images.reshape(len(images), -1)[:, :1].astype(float) * 2

    batcher = MicroBatcher(predict, max_batch=8, window_s=0.05)
    batcher.warm_up((2, 2, 1))
    assert shapes == [1, 2, 4, 8]

    async def ask(values: list[int]) -> list[float]:
        rows = await asyncio.gather(*(batcher.submit(np.full((2, 2, 1), v, np.uint8)) for v in values))
        await batcher.close()
        return [float(row[0]) for row in rows]

    shapes.clear()
    assert asyncio.run(ask([1, 2, 3, 4, 5])) == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert shapes == [8] and batcher.calls == 1, "five requests: one call, padded to 8"


def test_without_a_window_what_arrived_while_the_model_ran_is_the_next_batch() -> None:
    import asyncio
    import threading

    from medbench.serving.batcher import MicroBatcher

    sizes: list[int] = []
    release = threading.Event()

    def predict(images: np.ndarray) -> np.ndarray:
        sizes.append(len(images))
        release.wait(5)  # the first call holds the model while six more requests queue
        return np.zeros((len(images), 1))

    batcher = MicroBatcher(predict, max_batch=8, window_s=0.0)

    async def ask() -> None:
        first = asyncio.create_task(batcher.submit(np.zeros((2, 2, 1), np.uint8)))
        while not sizes:
            await asyncio.sleep(0.001)
        rest = [asyncio.create_task(batcher.submit(np.zeros((2, 2, 1), np.uint8))) for _ in range(6)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    asyncio.run(ask())
    assert sizes == [1, 8] and batcher.calls == 2, "one alone, then the six queued meanwhile in one call (padded)"


# a real server


@contextmanager
def _server(settings: Settings, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`medbench serve ARGS` on a free port (not waited for) and its URL; stopped when the block ends."""
    port = free_port()
    server = start_medbench(["serve", *args, "--port", str(port)], settings, **env)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_until_ready(server: subprocess.Popen[str], url: str, seconds: float = 120) -> None:
    """Poll /readyz until it is 200; fail with the server's output if it exits, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            pytest.fail(f"medbench serve exited: {server.stderr.read()[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"medbench serve did not become ready in {seconds:.0f} s")


def _run_folder(settings: Settings, run_id: str) -> Path:
    from medbench.runs.saved_run import saved_runs

    return Path(os.fspath(next(run.run_dir for run in saved_runs(settings.models_dir) if run.run_id == run_id)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> Iterator[tuple[str, Settings, str]]:
    from medbench.experiment import Experiment

    root = tmp_path_factory.mktemp("serve")
    settings = Settings(root, demo_data_dir, root / "models", root / "logs", root / "weights")
    entry = Experiment(BENCHMARK, settings).run()
    with _server(settings, entry["id"], "--max-upload-mb", "2") as (server, url):
        _wait_until_ready(server, url)
        yield url, settings, entry["id"]


def _demo_image(settings: Settings) -> Path:
    return sorted((settings.data_dir / "demo").rglob("*.jpg"))[0]


def _still_serving(url: str) -> None:
    assert httpx.get(f"{url}/rest/ping").text == "pong"


@pytest.mark.slow
def test_info_health_and_schema(served: tuple[str, Settings, str]) -> None:
    url, settings, run_id = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"ready": True}
    info = httpx.get(f"{url}/rest/info").json()
    assert info["run_id"] == run_id and info["architecture"] == "2D.SmallCNN" and len(info["classes"]) == 5
    assert info["input_size"] == [32, 32, 1] and 0 <= info["val_mean_auroc"] <= 1
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"/rest/classify", "/rest/explain/{method}/{layer}", "/rest/info"} <= set(schema["paths"])
    assert "chance level" in str(schema["components"]["schemas"]["Classification"])
    assert httpx.get(f"{url}/docs").status_code == 200


@pytest.mark.slow
def test_a_served_prediction_equals_medbench_predict(served: tuple[str, Settings, str]) -> None:
    from medbench.prediction import predict_images, resolve_run

    url, settings, run_id = served
    path = _demo_image(settings)
    answer = httpx.post(f"{url}/rest/classify", files={"file": ("x.jpg", path.read_bytes(), "image/jpeg")}).json()
    expected = predict_images(resolve_run(run_id, settings), [path], settings).iloc[0, 1:].to_numpy(dtype=float)
    np.testing.assert_allclose(answer["prediction"], expected, atol=1e-6)
    assert answer["filename"] == "x.jpg" and len(answer["confidence"]) == 5
    called = [name for name, p, t in zip(answer["classes"], answer["prediction"], answer["thresholds"]) if p >= t]
    assert answer["positive"] == called
    assert all((c >= 0) == (name in called) for name, c in zip(answer["classes"], answer["confidence"]))


@pytest.mark.slow
def test_a_dicom_upload_is_classified_as_medbench_predict_does(served: tuple[str, Settings, str]) -> None:
    from pydicom.data import get_testdata_file

    from medbench.prediction import predict_images, resolve_run

    url, settings, run_id = served
    path = Path(get_testdata_file("CT_small.dcm"))
    answer = httpx.post(f"{url}/rest/classify", files={"file": ("ct.dcm", path.read_bytes(), "application/dicom")})
    assert answer.status_code == 200, answer.text
    expected = predict_images(resolve_run(run_id, settings), [path], settings).iloc[0, 1:].to_numpy(dtype=float)
    np.testing.assert_allclose(answer.json()["prediction"], expected, atol=1e-6)


@pytest.mark.slow
def test_concurrent_requests_are_answered_each_with_its_own_image(served: tuple[str, Settings, str]) -> None:
    import asyncio

    url, settings, _ = served
    paths = sorted((settings.data_dir / "demo").rglob("*.jpg"))[:8]

    async def ask_all() -> list[dict]:
        async with httpx.AsyncClient(timeout=60) as client:
            requests = [
                client.post(f"{url}/rest/classify", files={"file": (p.name, p.read_bytes(), "image/jpeg")})
                for p in paths
            ]
            return [response.json() for response in await asyncio.gather(*requests)]

    together = asyncio.run(ask_all())
    alone = [
        httpx.post(f"{url}/rest/classify", files={"file": (p.name, p.read_bytes(), "image/jpeg")}).json() for p in paths
    ]
    for batched, single in zip(together, alone):
        assert batched["filename"] == single["filename"]
        np.testing.assert_allclose(batched["prediction"], single["prediction"], atol=1e-6)


@pytest.mark.slow
def test_explanations_come_as_timl_s_three_pngs(served: tuple[str, Settings, str]) -> None:
    url, settings, _ = served
    data = _demo_image(settings).read_bytes()
    answer = httpx.post(f"{url}/rest/explain/gradcam/auto", files={"file": ("x.jpg", data, "image/jpeg")}).json()
    assert answer["method"] == "gradcam" and answer["layer"] == "auto" and answer["class"]
    for key in ("grey", "heatmap", "comp"):
        assert Image.open(io.BytesIO(base64.b64decode(answer[key]))).size[0] > 0
    edema = httpx.post(
        f"{url}/rest/explain/crm/auto", params={"class": "Edema"}, files={"file": ("x.jpg", data, "image/jpeg")}
    ).json()
    assert edema["class"] == "Edema" and edema["method"] == "crm"
    unknown = httpx.post(f"{url}/rest/explain/lime/auto", files={"file": ("x.jpg", data, "image/jpeg")})
    assert unknown.status_code == 404 and "gradcam" in unknown.json()["detail"]
    layer = httpx.post(f"{url}/rest/explain/gradcam/block9", files={"file": ("x.jpg", data, "image/jpeg")})
    assert layer.status_code == 404 and "valid: auto," in layer.json()["detail"]
    _still_serving(url)


@pytest.mark.slow
def test_hostile_uploads_get_a_clear_4xx_and_the_server_goes_on(served: tuple[str, Settings, str]) -> None:
    url, settings, _ = served
    image = _demo_image(settings).read_bytes()

    def post(data: bytes, name: str = "x", kind: str = "application/octet-stream") -> httpx.Response:
        return httpx.post(f"{url}/rest/classify", files={"file": (name, data, kind)}, timeout=60)

    pdf = post(b"%PDF-1.7\n" + b"0" * 500, "scan.pdf")
    assert pdf.status_code == 415 and "pdf" in pdf.json()["detail"]
    _still_serving(url)
    truncated = post(image[: len(image) // 2], "cut.jpg", "image/jpeg")
    assert truncated.status_code == 422 and "does not decode" in truncated.json()["detail"]
    _still_serving(url)
    big = post(b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024), "big.png")
    assert big.status_code == 413 and "at most 2,097,152 bytes" in big.json()["detail"]
    _still_serving(url)
    bomb = post(_bomb(), "bomb.png", "image/png")
    assert bomb.status_code == 413 and "refused before decoding" in bomb.json()["detail"]
    _still_serving(url)
    sneaky = post(image, "../../etc/pass\x00wd.jpg", "image/jpeg")
    echoed = sneaky.json()["filename"]  # httpx sends the NUL as %00
    assert sneaky.status_code == 200 and echoed in ("passwd.jpg", "pass%00wd.jpg") and "/" not in echoed
    _still_serving(url)
    missing = httpx.post(f"{url}/rest/classify", files={"other": ("x.jpg", image, "image/jpeg")})
    assert missing.status_code == 422 and "file" in str(missing.json()["detail"])
    wrong = httpx.post(f"{url}/rest/classify", json={"file": "x"})
    assert wrong.status_code == 422
    _still_serving(url)


# the web page in a real browser


@pytest.mark.slow
def test_the_page_shows_the_findings_and_the_heatmap_in_chromium(
    served: tuple[str, Settings, str], browser, tmp_path: Path
) -> None:
    from medbench.prediction import predict_images, resolve_run

    url, settings, run_id = served
    path = _demo_image(settings)
    expected = predict_images(resolve_run(run_id, settings), [path], settings).iloc[0, 1:]
    for width, height in ((1200, 900), (375, 740)):
        page = browser.new_page(viewport={"width": width, "height": height})
        problems: list[str] = []
        page.on("console", lambda message, seen=problems: seen.append(message.text) if message.type == "error" else 0)
        page.on("pageerror", lambda error, seen=problems: seen.append(str(error)))
        page.on(
            "request", lambda request, seen=problems: 0 if request.url.startswith(url) else seen.append(request.url)
        )
        page.goto(url)
        page.wait_for_function("document.getElementById('run-info').textContent.includes('Run ')")
        assert run_id in page.text_content("#run-info")
        assert page.get_attribute("label[for=file-input]", "for") == "file-input"
        page.focus("#file-input")
        assert page.evaluate("document.activeElement.id") == "file-input", "the file input takes the keyboard"
        page.set_input_files("#file-input", str(path))
        page.wait_for_selector(".card svg.bars")
        page.wait_for_selector(".card img.heatmap[src^='data:image/png']", timeout=60_000)
        assert page.get_attribute(".card", "data-top") == expected.idxmax()
        assert str(expected.idxmax()) in page.get_attribute(".card svg.bars", "aria-label")
        assert page.evaluate("document.querySelector('img.heatmap').naturalWidth") > 0
        assert page.evaluate("document.documentElement.scrollWidth") <= width, "no sideways scrolling"
        page.select_option(".card select", "Edema")
        page.wait_for_function("document.querySelector('.explain .hint').textContent.includes('for Edema (p')")
        shot = tmp_path / f"serve-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert Image.open(shot).size[0] == width and not problems, problems
        page.close()


@pytest.mark.slow
def test_several_workers_share_the_port_and_each_loads_the_model(served: tuple[str, Settings, str]) -> None:
    _, settings, run_id = served
    with _server(settings, run_id, "--workers", "2") as (server, url):
        pids: set[int] = set()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                with httpx.Client() as client:  # a new connection each time: the kernel picks a worker
                    response = client.get(f"{url}/rest/info", timeout=5)
                if response.status_code == 200:
                    pids.add(response.json()["worker_pid"])
                else:  # 503: that worker is still loading its model
                    time.sleep(0.5)
            except httpx.HTTPError:
                time.sleep(0.5)
            assert server.poll() is None, server.stderr.read()[-3000:]
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) == 2 and pids <= {int(pid) for pid in children} and pids
        path = _demo_image(settings)
        answer = httpx.post(f"{url}/rest/classify", files={"file": ("x.jpg", path.read_bytes(), "image/jpeg")})
        assert answer.status_code == 200 and len(answer.json()["prediction"]) == 5
    assert server.returncode is not None


@pytest.mark.slow
def test_the_server_is_alive_at_once_and_ready_only_once_the_model_is_loaded(served: tuple[str, Settings, str]) -> None:
    _, settings, run_id = served
    image = ("x.jpg", _demo_image(settings).read_bytes(), "image/jpeg")
    with _server(settings, run_id) as (server, url):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                alive = httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                time.sleep(0.02)
        assert alive.status_code == 200
        # TensorFlow alone takes seconds to import, and it is imported only when the model loads
        early = httpx.get(f"{url}/readyz")
        assert early.status_code == 503 and early.json() == {"ready": False}
        refused = httpx.post(f"{url}/rest/classify", files={"file": image})
        assert refused.status_code == 503 and "/readyz" in refused.json()["detail"]
        _wait_until_ready(server, url, deadline - time.monotonic())
        assert httpx.post(f"{url}/rest/classify", files={"file": image}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_whose_model_does_not_load_stops_the_server_saying_why(
    served: tuple[str, Settings, str], tmp_path: Path, workers: int
) -> None:
    _, settings, run_id = served
    broken = tmp_path / run_id
    shutil.copytree(_run_folder(settings, run_id), broken)
    (broken / "model.keras").write_bytes(b"not a keras file")
    server = start_medbench(["serve", str(broken), "--port", str(free_port()), "--workers", str(workers)], settings)
    try:
        _, stderr = server.communicate(timeout=120)
    finally:
        server.kill()
    assert server.returncode == 2, stderr[-3000:]
    assert f"run {run_id} cannot be served" in stderr and "model.keras: is not a complete Keras model file" in stderr


@pytest.mark.slow
def test_a_run_that_is_not_local_is_pulled_from_the_bucket_and_served(
    served: tuple[str, Settings, str], tmp_path: Path
) -> None:
    from dataclasses import replace

    from medbench.tracking.storage import enqueue_run, sync

    url, settings, run_id = served
    local = _run_folder(settings, run_id)
    here = Settings(tmp_path, settings.data_dir, tmp_path / "models", tmp_path / "logs", tmp_path / "weights")
    copy = here.models_dir / local.parent.name / run_id
    shutil.copytree(local, copy)
    image = ("x.jpg", _demo_image(settings).read_bytes(), "image/jpeg")
    with running_emulator("medbench-serve"):
        bucket = replace(here, gcs_bucket="medbench-serve", gcs_prefix="team")
        enqueue_run(copy, json.loads((copy / "result.json").read_text()), bucket)
        assert sync(bucket, deadline_s=20).uploaded == [run_id]
        elsewhere = replace(bucket, root=tmp_path / "elsewhere", models_dir=tmp_path / "elsewhere" / "models")
        elsewhere.root.mkdir()
        bucket_env = {"MEDBENCH_GCS_BUCKET": "medbench-serve", "MEDBENCH_GCS_PREFIX": "team"}
        with _server(elsewhere, run_id, **bucket_env) as (server, remote):
            _wait_until_ready(server, remote)
            assert httpx.get(f"{remote}/rest/info").json()["run_id"] == run_id
            pulled = httpx.post(f"{remote}/rest/classify", files={"file": image}).json()["prediction"]
    assert (elsewhere.models_dir / local.parent.name / run_id / "model.keras").is_file()
    served_here = httpx.post(f"{url}/rest/classify", files={"file": image}).json()["prediction"]
    assert np.allclose(pulled, served_here, atol=1e-6)

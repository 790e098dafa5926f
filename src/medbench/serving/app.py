"""The FastAPI application of `medbench serve`: TIML's REST routes over one saved run.

Routes: ``GET /rest/ping``, ``GET /rest/info``, ``POST /rest/classify``, ``POST /rest/explain/{method}/{layer}``,
``GET /healthz`` (the process is up) and ``GET /readyz`` (the model is loaded), the web page at ``/`` and
the OpenAPI schema at ``/docs``. The server answers as soon as it listens: the model loads once per worker in a
thread (``/healthz`` is 200 meanwhile, ``/readyz`` and the model routes 503), and a run that fails to load
stops the server through `on_failure`. Classification requests are micro-batched (`MicroBatcher`) and all
TensorFlow work runs off the event loop. A refused upload is a 4xx
whose ``detail`` says what was found and what was expected; the server keeps serving after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Path, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from medbench.errors import ConfigError, ImageError
from medbench.runs.saved_run import SavedRun
from medbench.serving.batcher import MicroBatcher
from medbench.serving.limits import DEFAULT_MAX_UPLOAD_BYTES, BodyLimit
from medbench.serving.service import RunService
from medbench.serving.uploads import DEFAULT_MAX_PIXELS, UploadError, check_upload, confidence, safe_filename
from medbench.xai.names import METHOD_NAMES, method_name

__all__ = ["ServeOptions", "create_app"]

logger = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).with_name("static")
"""The web page: index.html, app.js and style.css, written by hand (nothing fetched from a CDN)."""


@dataclass(frozen=True)
class ServeOptions:
    """How the server takes uploads and batches them."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_window_ms: float = 5.0
    max_batch: int = 32


class Classification(BaseModel):
    filename: str = Field(description="the uploaded file's name, as given (never used as a path)")
    classes: list[str]
    prediction: list[float] = Field(description="the model's output per class: softmax or per-class sigmoid")
    confidence: list[float] = Field(
        description=(
            "per class, -1 at probability 0, 0 at the class's chance level, +1 at 1 (TIML's rescaling). Single-label "
            "models: chance is 1/n. Multi-label models: chance is the class's threshold chosen on validation, so a "
            "positive confidence means the class is called positive"
        )
    )
    thresholds: list[float] = Field(description="per class, the threshold chosen on validation (1/n for softmax)")
    positive: list[str] = Field(description="the classes at or above their threshold (single-label: the top class)")


class Explanation(BaseModel):
    method: str
    layer: str
    class_: str = Field(alias="class")
    probability: float
    grey: str = Field(description="base64 PNG: the greyscale map")
    heatmap: str = Field(description="base64 PNG: the coloured heatmap")
    comp: str = Field(description="base64 PNG: the heatmap over the image")


def create_app(
    run: SavedRun, options: ServeOptions | None = None, on_failure: Callable[[BaseException], None] | None = None
) -> Any:
    """The ASGI application serving `run` (wrapped in the upload size limit).

    `on_failure` is called with the error when the run cannot be loaded (`serve` stops the server with it);
    without one, the error is logged and ``/readyz`` stays 503, naming it.
    """
    options = options or ServeOptions()
    state: dict[str, Any] = {}

    async def load() -> None:
        try:
            service = await asyncio.to_thread(RunService.load, run)
            batcher = MicroBatcher(service.predict, max_batch=options.max_batch, window_s=options.batch_window_ms / 1e3)
            await asyncio.to_thread(batcher.warm_up, tuple(service.info["input_size"]))
        except Exception as error:  # the server says why it is not ready; its owner reports the error once
            state["failure"] = f"{type(error).__name__}: {error}"
            if on_failure is not None:
                on_failure(error)
            else:
                logger.error("run %s cannot be served: %s", run.run_id, error)
            return
        state["batcher"], state["service"] = batcher, service
        logger.info("run %s loaded: ready", run.run_id)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        loading = asyncio.create_task(load())
        yield
        loading.cancel()
        if "batcher" in state:
            await state["batcher"].close()

    app = FastAPI(title="medbench serve", version="1", lifespan=lifespan)

    def service() -> RunService:
        if "service" not in state:
            raise HTTPException(503, "the model is still loading; see /readyz")
        return state["service"]

    async def image_of(file: UploadFile) -> Any:
        data = await file.read()
        try:
            upload = check_upload(data, max_pixels=options.max_pixels)
            return await asyncio.to_thread(service().image, upload)
        except UploadError as error:
            raise HTTPException(error.status, str(error)) from None
        except ImageError as error:
            message = str(error).split(": ", 1)[-1]  # the server's temporary path means nothing to the client
            raise HTTPException(422, f"the {upload.kind} upload does not decode: {message}") from None

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/rest/ping", response_class=PlainTextResponse)
    async def ping() -> str:
        return "pong"

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = "service" in state
        answer = {"ready": ready, **({"error": state["failure"]} if "failure" in state else {})}
        return JSONResponse(answer, status_code=200 if ready else 503)

    @app.get("/rest/info")
    async def info() -> dict[str, Any]:
        return {**service().info, "worker_pid": os.getpid()}

    @app.post("/rest/classify", response_model=Classification)
    async def classify(file: Annotated[UploadFile, File(description="a PNG, JPEG or DICOM image")]) -> Classification:
        served = service()
        image = await image_of(file)
        scores = [float(value) for value in await state["batcher"].submit(image)]
        classes = list(served.run.classes)
        thresholds = [served.thresholds[name] for name in classes]
        if served.single_label:
            positive = [classes[max(range(len(scores)), key=scores.__getitem__)]]
        else:
            positive = [name for name, score, cut in zip(classes, scores, thresholds) if score >= cut]
        return Classification(
            filename=safe_filename(file.filename),
            classes=classes,
            prediction=scores,
            confidence=[confidence(score, cut) for score, cut in zip(scores, thresholds)],
            thresholds=thresholds,
            positive=positive,
        )

    @app.post("/rest/explain/{method}/{layer}", response_model=Explanation, response_model_by_alias=True)
    async def explain(
        method: Annotated[str, Path(description=f"one of {', '.join(METHOD_NAMES)}")],
        layer: Annotated[str, Path(description="a feature-map layer of the backbone, or auto")],
        file: Annotated[UploadFile, File(description="a PNG, JPEG or DICOM image")],
        target: Annotated[str | None, Query(alias="class", description="the class to explain (default: top)")] = None,
    ) -> Any:
        served = service()
        try:
            name = method_name(method)
        except ConfigError:
            raise HTTPException(404, f"unknown method {method!r}; valid: {', '.join(METHOD_NAMES)}") from None
        layers = served.layers()
        if layer != "auto" and layer not in layers:
            raise HTTPException(404, f"unknown layer {layer!r}; valid: auto, {', '.join(layers)}")
        if target is not None and target not in served.run.classes:
            raise HTTPException(422, f"unknown class {target!r}; valid: {', '.join(served.run.classes)}")
        image = await image_of(file)
        answer = await asyncio.to_thread(served.explain, image, name, None if layer == "auto" else layer, target)
        return JSONResponse(answer)

    return BodyLimit(app, options.max_upload_bytes)

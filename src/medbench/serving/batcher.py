"""Micro-batching: concurrent requests' images gathered into one model call.

A batch is every request that queued while the model ran the previous one (up to `max_batch`); if that
leaves room, it waits at most `window_s` more for others. It runs in a worker thread, off the event loop,
and each request gets its own row back. With `window_s=0` a lone request never waits. A batch is padded to the next
power of two (at most `max_batch`), so the model sees a handful of batch shapes, each traced once
(`warm_up` traces them all before the server is ready) instead of one trace per batch size, which for a
DenseNet costs seconds at the first batch of every new size. `max_batch=1` is one model call per request
(what `benchmarks/serve.py` compares against).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Run `predict` (a stacked batch → one row per image) on batches of submitted images."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 32, window_s: float = 0.005):
        if max_batch < 1 or window_s < 0:
            raise ValueError(f"max_batch {max_batch} and window_s {window_s}: expected max_batch >= 1, window_s >= 0")
        self.predict, self.max_batch, self.window_s = predict, max_batch, window_s
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.calls = 0
        """Model calls made so far (a batch of any size is one)."""

    def sizes(self) -> list[int]:
        """The batch sizes the model is called with: the powers of two below `max_batch`, and `max_batch`."""
        sizes = [1 << power for power in range(self.max_batch.bit_length()) if 1 << power < self.max_batch]
        return [*sizes, self.max_batch]

    def padded_size(self, n: int) -> int:
        return min(1 << (n - 1).bit_length(), self.max_batch)

    def warm_up(self, shape: tuple[int, ...]) -> None:
        """Call the model once with each batch size on zero images of `shape`, so no request waits for a trace."""
        for size in self.sizes():
            self.predict(np.zeros((size, *shape), dtype=np.uint8))

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """The model's output row for `image`, computed in a batch with whatever else arrives meanwhile."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._serve())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((image, future))
        return await future

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch and not self._queue.empty():  # what arrived while the model ran
                batch.append(self._queue.get_nowait())
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            images = np.stack([image for image, _ in batch])
            padding = self.padded_size(len(batch)) - len(batch)
            if padding:
                images = np.concatenate([images, np.repeat(images[-1:], padding, axis=0)])
            self.calls += 1
            try:
                rows = await asyncio.to_thread(self.predict, images)
            except Exception as error:  # every waiting request gets the error, the batcher goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), row in zip(batch, rows):
                if not future.done():
                    future.set_result(row)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

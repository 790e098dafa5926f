"""The demo's pictures: chest-like grayscale backgrounds with one pattern per finding, in its own place."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

BOX_FRACTION = 0.05
"""A finding's box bounds the pixels where its pattern exceeds this fraction of its own peak."""


class Painter:
    """Paints chest-like backgrounds and one pattern per finding on a fixed pixel grid.

    Geometry is given in fractions of the width (x) and height (y), so any `size` works. `contrast`
    scales every pattern's strength and `noise` is the standard deviation of the pixel noise (grey levels).
    """

    def __init__(self, width: int, height: int, *, contrast: float = 1.0, noise: float = 7.0) -> None:
        self.width, self.height = width, height
        self.contrast, self.noise = contrast, noise
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.x = xs / width
        self.y = ys / height
        self.aspect = height / width
        self.patterns: dict[str, Callable[[float, float], np.ndarray]] = {
            "Enlarged Cardiomediastinum": lambda dx, dy: 45 * self._box(0.41 + dx, 0.59 + dx, 0.14 + dy, 0.42 + dy),
            "Cardiomegaly": lambda dx, dy: 55 * self._disk(0.52 + dx, 0.66 + dy, 0.14),
            "Lung Opacity": lambda dx, dy: 55 * self._gauss(0.29 + dx, 0.33 + dy, 0.07),
            "Lung Lesion": lambda dx, dy: 80 * self._ring(0.72 + dx, 0.17 + dy, 0.05, 0.014),
            "Edema": lambda dx, dy: (
                55 * self._box(0.12 + dx, 0.88 + dx, 0.47 + dy, 0.57 + dy) * self._stripes(0.0, 0.03)
            ),
            "Consolidation": lambda dx, dy: 80 * self._ellipse(0.28 + dx, 0.64 + dy, 0.09, 0.06, soft=0.15),
            "Pneumonia": lambda dx, dy: 75 * self._box(0.63 + dx, 0.83 + dx, 0.59 + dy, 0.70 + dy) * self._dots(0.035),
            "Atelectasis": lambda dx, dy: (
                60 * self._box(0.60 + dx, 0.85 + dx, 0.29 + dy, 0.44 + dy) * self._stripes(1.0, 0.05)
            ),
            "Pneumothorax": lambda dx, dy: -55 * self._ellipse(0.29 + dx, 0.19 + dy, 0.11, 0.05, soft=0.3),
            "Pleural Effusion": lambda dx, dy: (
                70
                * self._box(0.12 + dx, 0.88 + dx, 0.74 + dy, 0.85 + dy)
                * np.clip((self.y - 0.70 - dy) / 0.12, 0.3, 1.0)
            ),
            "Pleural Other": lambda dx, dy: 75 * self._segment((0.92 + dx, 0.25 + dy), (0.92 + dx, 0.70 + dy), 0.007),
            "Fracture": lambda dx, dy: (
                85
                * np.maximum(
                    self._segment((0.06 + dx, 0.06 + dy), (0.16 + dx, 0.14 + dy), 0.008),
                    self._segment((0.16 + dx, 0.06 + dy), (0.06 + dx, 0.14 + dy), 0.008),
                )
            ),
            "Support Devices": lambda dx, dy: (
                95
                * np.maximum(
                    self._segment((0.56 + dx, 0.0), (0.50 + dx, 0.52 + dy), 0.006),
                    self._box(0.88, 0.95, 0.03, 0.09, soft=0.0),
                )
            ),
        }

    def paint(self, rng: np.random.Generator, frontal: bool, findings: tuple[str, ...]) -> np.ndarray:
        """One grayscale image (uint8, height x width)."""
        return self.paint_with_boxes(rng, frontal, findings)[0]

    def paint_with_boxes(
        self, rng: np.random.Generator, frontal: bool, findings: tuple[str, ...]
    ) -> tuple[np.ndarray, list[tuple[str, int, int, int, int]]]:
        """One grayscale image and (finding, x, y, w, h) of each pattern painted, from the same random draws."""
        dx, dy = rng.uniform(-0.025, 0.025, size=2)
        picture = self._frontal(dx, dy) if frontal else self._lateral(dx, dy)
        picture = picture * rng.uniform(0.9, 1.1) + self._smooth_noise(rng, 14.0)
        places: list[tuple[str, int, int, int, int]] = []
        for name in findings:
            strength = rng.uniform(0.8, 1.2) * self.contrast
            pattern = self.patterns[name](dx, dy)
            picture += strength * pattern
            if (extent := self._extent(pattern)) is not None:
                places.append((name, *extent))
        picture += rng.normal(0.0, self.noise, size=picture.shape).astype(np.float32)
        return np.clip(np.rint(picture), 0, 255).astype(np.uint8), places

    @staticmethod
    def _extent(pattern: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) in pixels bounding where |pattern| exceeds BOX_FRACTION of its peak (None: nothing painted)."""
        peak = float(np.abs(pattern).max())
        if peak <= 0:
            return None
        strong = np.abs(pattern) > BOX_FRACTION * peak
        rows, columns = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
        return int(columns[0]), int(rows[0]), int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1)

    def _frontal(self, dx: float, dy: float) -> np.ndarray:
        body = 95 * self._ellipse(0.5 + dx, 0.56 + dy, 0.46, 0.50, soft=0.12)
        lungs = -60 * (
            self._ellipse(0.30 + dx, 0.44 + dy, 0.15, 0.30, soft=0.25)
            + self._ellipse(0.70 + dx, 0.44 + dy, 0.15, 0.30, soft=0.25)
        )
        spine = 35 * self._box(0.47 + dx, 0.53 + dx, 0.0, 1.0, soft=0.01)
        heart = 35 * self._ellipse(0.55 + dx, 0.63 + dy, 0.12, 0.09, soft=0.4)
        return 25 + body + lungs + spine + heart

    def _lateral(self, dx: float, dy: float) -> np.ndarray:
        body = 100 * self._ellipse(0.5 + dx, 0.55 + dy, 0.44, 0.48, soft=0.12)
        lung = -55 * self._ellipse(0.47 + dx, 0.45 + dy, 0.28, 0.30, soft=0.3)
        spine = 40 * self._box(0.78 + dx, 0.86 + dx, 0.1, 1.0, soft=0.01)
        return 25 + body + lung + spine

    def _smooth_noise(self, rng: np.random.Generator, amplitude: float) -> np.ndarray:
        coarse = rng.normal(0.0, amplitude, size=(6, 5)).astype(np.float32)
        return np.asarray(Image.fromarray(coarse).resize((self.width, self.height), Image.Resampling.BILINEAR))

    def _ellipse(self, cx: float, cy: float, ax: float, ay: float, *, soft: float) -> np.ndarray:
        """1 inside, 0 outside, a linear edge of relative width `soft`."""
        distance = np.sqrt(((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2)
        return np.clip((1.0 - distance) / max(soft, 1e-6), 0.0, 1.0)

    def _disk(self, cx: float, cy: float, radius: float) -> np.ndarray:
        return self._ellipse(cx, cy, radius, radius / self.aspect, soft=0.15)

    def _gauss(self, cx: float, cy: float, sigma: float) -> np.ndarray:
        return np.exp(-(((self.x - cx) ** 2 + ((self.y - cy) * self.aspect) ** 2) / (2 * sigma**2)))

    def _ring(self, cx: float, cy: float, radius: float, thickness: float) -> np.ndarray:
        distance = np.sqrt((self.x - cx) ** 2 + ((self.y - cy) * self.aspect) ** 2)
        return np.clip(1.0 - np.abs(distance - radius) / thickness, 0.0, 1.0)

    def _box(self, x0: float, x1: float, y0: float, y1: float, *, soft: float = 0.02) -> np.ndarray:
        if soft <= 0:
            return ((self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)).astype(np.float32)
        inside_x = np.minimum(self.x - x0, x1 - self.x)
        inside_y = np.minimum(self.y - y0, y1 - self.y)
        return np.clip(np.minimum(inside_x, inside_y) / soft, 0.0, 1.0)

    def _stripes(self, slope: float, period: float) -> np.ndarray:
        """Stripes 0..1 along ``y + slope * x`` (0: horizontal), `period` in fractions of the height."""
        phase = (self.y * self.aspect + slope * self.x) / (period * self.aspect)
        return 0.5 + 0.5 * np.cos(2 * np.pi * phase)

    def _dots(self, spacing: float) -> np.ndarray:
        """A grid of soft dots, `spacing` apart (fractions of the width)."""
        u = np.cos(2 * np.pi * self.x / spacing)
        v = np.cos(2 * np.pi * self.y * self.aspect / spacing)
        return np.clip(u * v, 0.0, 1.0)

    def _segment(self, start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
        """A line from `start` to `end` (x, y fractions), `width` in fractions of the width."""
        px, py = self.x, self.y * self.aspect
        ax, ay = start[0], start[1] * self.aspect
        bx, by = end[0], end[1] * self.aspect
        vx, vy = bx - ax, by - ay
        t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0.0, 1.0)
        distance = np.sqrt((px - ax - t * vx) ** 2 + (py - ay - t * vy) ** 2)
        return np.clip(1.0 - distance / width, 0.0, 1.0)

"""Lung-field cropping of frontal chest X-rays that works at every image size.

The lungs are the two dark basins enclosed by brighter tissue (chest wall, mediastinum, clavicles,
diaphragm); the air outside the body is dark too but reaches the image border. On a fixed-size,
blurred, contrast-stretched grayscale copy we fill every dark region that the border cannot reach
(grayscale hole filling by morphological reconstruction); the filled depth is high exactly in
enclosed basins. The two largest deep basins give the lung box, which is mapped back to the
input's coordinates, padded by a margin and clipped. Because all analysis happens at one size
(``ANALYSIS_SIZE``) the box in relative coordinates does not depend on the input size, unlike the
fixed-size template match it replaces (which failed below about 246 px). When no confident pair of
lung fields is found the function falls back to a central crop.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from medbench.errors import ImageError

logger = logging.getLogger(__name__)

ANALYSIS_SIZE = 128
"""Side of the square grayscale copy the lung fields are searched in."""
DETAIL_SIZE = 64
"""Every image is first reduced to DETAIL_SIZE² so that inputs from 64 px up carry the same detail."""
BLUR_SIGMA = 1.0
"""Gaussian blur (in analysis pixels) that hides ribs and noise before the basin search."""
MARGIN = 0.08
"""Padding added on every side of the lung box, as a fraction of the box's height/width."""
CENTRAL_FRACTION = 0.8
"""Height and width of the fallback central crop, as a fraction of the image's."""
MIN_DEPTH = 20
"""Shallowest basin (0–255 after contrast stretching) counted as lung: below it there is no confident lung field."""
CORE_FRACTION = 0.35
"""Pixels deeper than this fraction of the deepest basin seed a lung field (its two largest cores are the lungs)."""
EXTENT_FRACTION = 0.12
"""A lung field extends over the pixels deeper than this fraction of the deepest basin connected to its core."""
MIN_LUNG_AREA = 0.015
"""Smallest single lung field, as a fraction of the image area."""
MIN_TOTAL_AREA = 0.02
"""Smallest total lung-field area for a confident box, as a fraction of the image area."""

EDGE_PERCENTILE = 1.0
"""The box spans the 1st..99th percentile of lung-field pixel rows and columns (ignores stray specks)."""
MIN_WIDTH = 0.5
"""A lung box narrower than this fraction of the image width holds one lung only and is mirrored."""
MAX_CENTRE_OFFSET = 0.1
"""A lung box whose centre is further than this from the image's vertical centre line is mirrored."""
MIN_ASPECT = 0.95
"""Smallest height/width of the box around both lungs; flatter boxes missed the lung bases."""

Box = tuple[int, int, int, int]

_KERNEL3 = np.ones((3, 3), np.uint8)


def _grayscale(image: np.ndarray) -> np.ndarray:
    """A 2-D uint8 view of a HxW, HxWx1, HxWx3 or HxWx4 image of any numeric dtype."""
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[..., 0]
        elif image.shape[2] in (3, 4) and image.dtype == np.uint8:
            image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
        elif image.shape[2] in (3, 4):
            image = image[..., :3].astype(np.float32).mean(axis=2)
        else:
            raise ImageError(f"image with {image.shape[2]} channels: expected 1, 3 or 4")
    elif image.ndim != 2:
        raise ImageError(f"image of shape {image.shape}: expected HxW or HxWxC")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ImageError(f"image of shape {image.shape}: expected at least 2x2 pixels")
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return ((values - low) * scale).astype(np.uint8)


def _analysis_copy(gray: np.ndarray) -> np.ndarray:
    """The image at ANALYSIS_SIZE², blurred and stretched so its 1st..99th percentiles span 0..255."""
    coarse = (DETAIL_SIZE, DETAIL_SIZE)
    shrinking = gray.shape[0] >= DETAIL_SIZE and gray.shape[1] >= DETAIL_SIZE
    small = cv2.resize(gray, coarse, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    small = cv2.resize(small, (ANALYSIS_SIZE, ANALYSIS_SIZE), interpolation=cv2.INTER_LINEAR)
    small = cv2.GaussianBlur(small, (0, 0), BLUR_SIGMA)
    cumulative = np.cumsum(cv2.calcHist([small], [0], None, [256], [0, 256]).ravel())
    low, high = np.searchsorted(cumulative, [0.01 * cumulative[-1], 0.99 * cumulative[-1]])
    if high <= low:
        return np.zeros_like(small)
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    return cv2.LUT(small, lut)


def basin_depth(analysis: np.ndarray) -> np.ndarray:
    """How far each pixel lies below the brightest rim it must cross to reach the image border.

    Grayscale hole filling by reconstruction-by-erosion from the border; dark regions connected to
    the border (air outside the body) get depth 0, enclosed dark regions (the lungs) a positive depth.
    """
    marker = np.full_like(analysis, 255)
    marker[0, :], marker[-1, :], marker[:, 0], marker[:, -1] = (
        analysis[0],
        analysis[-1],
        analysis[:, 0],
        analysis[:, -1],
    )
    for iteration in range(1, 4 * analysis.shape[0]):
        following = np.maximum(cv2.erode(marker, _KERNEL3), analysis)
        if iteration % 8 == 0 and np.array_equal(following, marker):
            break
        marker = following
    return cv2.subtract(marker, analysis)


def _lung_box_relative(analysis: np.ndarray) -> tuple[float, float, float, float] | None:
    """(top, left, bottom, right) of the lung fields in [0, 1] coordinates, or None when not confident."""
    depth = basin_depth(analysis)
    deepest = float(np.percentile(depth, 99.5))
    if deepest < MIN_DEPTH:
        return None
    core = cv2.morphologyEx((depth > CORE_FRACTION * deepest).astype(np.uint8), cv2.MORPH_OPEN, _KERNEL3)
    count, core_labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    total = float(analysis.size)
    cores = sorted(
        (i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= MIN_LUNG_AREA * total),
        key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]),
    )[:2]
    if not cores:
        return None
    extent = cv2.morphologyEx(
        (depth > max(MIN_DEPTH / 2, EXTENT_FRACTION * deepest)).astype(np.uint8), cv2.MORPH_OPEN, _KERNEL3
    )
    _, extent_labels = cv2.connectedComponents(extent, connectivity=8)
    grown = np.unique(extent_labels[np.isin(core_labels, cores)])
    fields = np.isin(extent_labels, grown[grown > 0])
    if fields.sum() < MIN_TOTAL_AREA * total:
        return None
    rows, cols = np.nonzero(fields)
    top, bottom = np.percentile(rows, (EDGE_PERCENTILE, 100 - EDGE_PERCENTILE))
    left, right = np.percentile(cols, (EDGE_PERCENTILE, 100 - EDGE_PERCENTILE))
    bottom, right = bottom + 1, right + 1
    side = float(analysis.shape[0])
    return _anatomical_box(top / side, left / side, bottom / side, right / side)


def _anatomical_box(top: float, left: float, bottom: float, right: float) -> tuple[float, float, float, float]:
    """Widen a one-sided box to both lungs and lengthen a flat one down to the lung bases.

    A lung made opaque by disease is no dark basin, so a box on one side of the image is mirrored
    about the vertical centre line; the lower lung zones behind the diaphragm domes and breasts are
    shallow basins, so a box flatter than MIN_ASPECT (height/width) is extended downwards.
    """
    if right - left < MIN_WIDTH or abs((left + right) / 2 - 0.5) > MAX_CENTRE_OFFSET:
        left, right = min(left, 1.0 - right), max(right, 1.0 - left)
    if right - left < MIN_WIDTH:
        centre = (left + right) / 2
        left, right = max(0.0, centre - MIN_WIDTH / 2), min(1.0, centre + MIN_WIDTH / 2)
    bottom = min(1.0, max(bottom, top + MIN_ASPECT * (right - left)))
    return top, left, bottom, right


def _central_box(height: int, width: int) -> Box:
    crop_h = max(1, round(height * CENTRAL_FRACTION))
    crop_w = max(1, round(width * CENTRAL_FRACTION))
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def lung_field_box(image: np.ndarray) -> Box:
    """(top, left, height, width) of the lung fields in ``image``'s pixel coordinates, padded by MARGIN.

    Works on HxW, HxWx1 and HxWx3 images of any size; falls back to the central
    CENTRAL_FRACTION crop when no confident lung field is found.
    """
    gray = _grayscale(np.asarray(image))
    height, width = gray.shape
    relative = _lung_box_relative(_analysis_copy(gray))
    if relative is None:
        logger.debug("no confident lung field in a %dx%d image: central crop", height, width)
        return _central_box(height, width)
    top, left, bottom, right = relative
    pad_y, pad_x = MARGIN * (bottom - top), MARGIN * (right - left)
    y0 = max(0, int(np.floor((top - pad_y) * height)))
    x0 = max(0, int(np.floor((left - pad_x) * width)))
    y1 = min(height, max(y0 + 1, int(np.ceil((bottom + pad_y) * height))))
    x1 = min(width, max(x0 + 1, int(np.ceil((right + pad_x) * width))))
    return y0, x0, y1 - y0, x1 - x0


def crop_lung_field(image: np.ndarray) -> np.ndarray:
    """The lung-field region of ``image`` (same dtype and channel layout, not resized)."""
    top, left, height, width = lung_field_box(image)
    return np.ascontiguousarray(image[top : top + height, left : left + width])

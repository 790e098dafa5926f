"""The pictures of a map: greyscale map, colour heatmap and overlay on the image, and a contact sheet of overlays.

The greyscale map, the heatmap and the overlay are the three images the original platform's explanation
answer carries. Each is drawn from `unit_map` (the positive part above the map's floor, scaled to [0, 1]);
a volume is drawn at its central slice along the depth axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from medbench.xai.localization import unit_map

COLORMAP = "jet"
OVERLAY_ALPHA = 0.45
"""The heatmap's weight in the overlay (the image has the rest)."""
TILE = 160
"""Pixels a side of each picture on the contact sheet."""
LABEL_HEIGHT = 14


def central_slice(array: np.ndarray) -> np.ndarray:
    """A 2D picture of a map or image: (H, W) or (H, W, C) unchanged, a volume's middle depth slice otherwise."""
    array = np.asarray(array)
    if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] not in (1, 3)):
        return array[array.shape[0] // 2]
    return array


def map_image(saliency: np.ndarray) -> Image.Image:
    """The map as an 8-bit greyscale picture (white: the map's maximum)."""
    unit = unit_map(central_slice(saliency))
    return Image.fromarray(np.rint(unit * 255).astype(np.uint8))


def heatmap_image(saliency: np.ndarray) -> Image.Image:
    """The map in colour (jet: blue low, red high)."""
    unit = unit_map(central_slice(saliency))
    colours = colormaps[COLORMAP](unit)[..., :3]
    return Image.fromarray(np.rint(colours * 255).astype(np.uint8))


def _rgb(image: np.ndarray) -> np.ndarray:
    picture = central_slice(image)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[..., np.newaxis], 3, axis=-1)
    return picture.astype(np.float64)


def overlay_image(image: np.ndarray, saliency: np.ndarray, *, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The heatmap blended onto the (uint8) image the model saw."""
    heat = np.asarray(heatmap_image(saliency), dtype=np.float64)
    blended = (1.0 - alpha) * _rgb(image) + alpha * heat
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def plain_image(image: np.ndarray) -> Image.Image:
    """The (uint8) image the model saw, as RGB."""
    return Image.fromarray(np.clip(_rgb(image), 0, 255).astype(np.uint8))


def contact_sheet(rows: Sequence[Sequence[tuple[str, Image.Image]]]) -> Image.Image:
    """A grid of labelled pictures, one row per image, each resized to TILE pixels a side."""
    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (columns * TILE, len(rows) * (TILE + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, row in enumerate(rows):
        top = r * (TILE + LABEL_HEIGHT)
        for c, (label, picture) in enumerate(row):
            sheet.paste(picture.convert("RGB").resize((TILE, TILE), Image.Resampling.BILINEAR), (c * TILE, top))
            draw.text((c * TILE + 2, top + TILE + 1), label[:28], fill="black", font=font)
    return sheet

"""Enumerated augmentation (TIML's `imgaug`): every training image in fixed variants, each once per epoch.

Unlike the random augmentations, an enumeration multiplies the training set: with ``hflip`` an epoch holds
each image and its horizontal mirror; ``hflip_rot4`` turns both by 0, 90, 180 and 270° (exact, no corners
lost); ``hflip_rot24`` by every 15°, the corners a turn uncovers filled with 0. Variant v of an image is
mirrored when v is odd and turned by (v // 2) steps.
"""

from __future__ import annotations

import cv2
import numpy as np

from medbench.benchmark.vocabulary import ENUMERATIONS

ROTATION_STEPS = {"none": 1, "hflip": 1, "hflip_rot4": 4, "hflip_rot24": 24}
"""Turns per mirror image of each enumeration (its variants are twice this, or 1 for none)."""


def variant_count(enumeration: str) -> int:
    """Variants of each training image per epoch (1: no enumeration)."""
    return ENUMERATIONS[enumeration]


def image_variant(image: np.ndarray, variant: int, enumeration: str) -> np.ndarray:
    """Variant `variant` of one uint8 image (h, w, c) under `enumeration` (same shape and dtype)."""
    if enumeration == "none" or variant == 0:
        return image
    out = image[:, ::-1] if variant % 2 else image
    turn = variant // 2
    steps = ROTATION_STEPS[enumeration]
    if turn == 0:
        return np.ascontiguousarray(out)
    if steps == 4 and out.shape[0] == out.shape[1]:
        return np.ascontiguousarray(np.rot90(out, k=turn, axes=(0, 1)))
    height, width = out.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), 360.0 * turn / steps, 1.0)
    turned = cv2.warpAffine(
        np.ascontiguousarray(out), matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return turned.reshape(out.shape)


def batch_variants(images: np.ndarray, variants: np.ndarray, enumeration: str) -> np.ndarray:
    """Each image of a uint8 batch (n, h, w, c) as its variant; what the training pipeline calls per batch."""
    if len(images) == 0:
        return images
    return np.stack([image_variant(image, int(v), enumeration) for image, v in zip(images, variants)])

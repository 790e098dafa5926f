"""How hard the demo data is to learn: pattern contrast, pixel noise and label noise, with named presets.

"easy" is the original demo (every run scores near 1.0, which tests rely on: a SmallCNN learns each
finding in a couple of epochs). The demo job uses DEMO_DIFFICULTY, chosen so that its benchmarks score
well below 1.0 and differ from each other, which is the point of comparing them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from medbench.errors import ConfigError


@dataclass(frozen=True)
class DemoDifficulty:
    """The three knobs of the demo generator.

    contrast: factor on every finding's pattern strength (1.0: the original, clearly visible patterns).
    noise: standard deviation of the per-pixel noise in grey levels (7.0: the original).
    label_noise: probability that a training study reports a finding as if its presence were flipped
    (the validation labels stay exact, like CheXpert's radiologist-labelled validation set).
    """

    contrast: float = 1.0
    noise: float = 7.0
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        for field, value, low, high in (
            ("contrast", self.contrast, 0.0, 4.0),
            ("noise", self.noise, 0.0, 100.0),
            ("label_noise", self.label_noise, 0.0, 0.5),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"demo difficulty {field} {value!r}: expected a number in {low}..{high}")
            if not low <= value <= high or (field == "contrast" and value == 0):
                raise ConfigError(
                    f"demo difficulty {field} {value!r}: expected a number in {low}..{high}"
                    + (" (above 0: the findings must be painted)" if field == "contrast" else "")
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DIFFICULTIES: dict[str, DemoDifficulty] = {
    "easy": DemoDifficulty(),
    "medium": DemoDifficulty(contrast=0.5, noise=12.0, label_noise=0.05),
    "hard": DemoDifficulty(contrast=0.3, noise=22.0, label_noise=0.15),
}
"""Named presets for `medbench demo-data --difficulty`. Measured with the demo batch (SmallCNN, 64 px, 5 epochs,
seed 0): validation mean AUROC 0.89 (BCE) and 0.83 (WBCE, affine, U-ones) at "medium", 0.63 and 0.61 at "hard"."""

DEMO_DIFFICULTY = "medium"
"""The preset `make demo` writes its data with."""


def get_difficulty(value: str | DemoDifficulty) -> DemoDifficulty:
    """A preset by name (case-insensitive) or a DemoDifficulty as given; ConfigError names the choices."""
    if isinstance(value, DemoDifficulty):
        return value
    if isinstance(value, str) and value.lower() in DIFFICULTIES:
        return DIFFICULTIES[value.lower()]
    raise ConfigError(f"demo difficulty {str(value)[:40]!r}: expected one of {', '.join(DIFFICULTIES)}")

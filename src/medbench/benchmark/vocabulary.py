"""The benchmark vocabulary: every token a benchmark name uses and every choice an experiment offers, once.

The name parser, the preprocessing, `ExperimentOptions` and the CLI all read these tables, so a name
that parses is a name that runs: each numeric field and each transformation parameter carries its
valid range, and a value outside it is refused naming the token and the range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import MappingProxyType

from medbench.data.label_policy import UNCERTAINTY_POLICIES, UNCERTAINTY_PRESETS, UNMENTIONED_POLICIES
from medbench.errors import BenchmarkNameError

__all__ = [
    "AUGMENTATIONS",
    "BAGGING_FOLDS",
    "COLOR_SPACES",
    "ENUMERATIONS",
    "BATCH_SIZE",
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_ARCHITECTURES",
    "DEFAULT_DIMENSION",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_SEED",
    "DEFAULT_UNCERTAINTY",
    "DIMENSIONS",
    "EPOCHS",
    "FCL_WIDTH",
    "IMAGE_SIZE",
    "LEARNING_RATE",
    "LOSSES",
    "LOSS_TASKS",
    "WEIGHTED_LOSSES",
    "LR_FACTOR",
    "LR_SCHEDULES",
    "MIXED_PRECISION_POLICIES",
    "N_CLASSES",
    "OPTIMIZERS",
    "RESIZE_FILTERS",
    "SEED",
    "SPLIT_PERCENT",
    "STRATEGIES",
    "TRANSFORMS",
    "TRANSFORM_FORMS",
    "UNCERTAINTY_POLICIES",
    "UNCERTAINTY_PRESETS",
    "UNMENTIONED_POLICIES",
    "VOLUME_SIZE",
    "FloatRange",
    "IntRange",
    "Transformation",
    "losses_for",
    "parse_transformation",
    "transform_forms_text",
]

LOSSES: tuple[str, ...] = ("BCE", "WBCE", "CWBCE", "CCE", "WCCE", "FL")
"""Loss tokens: masked binary cross-entropy, with per-class positive weights, with positive and negative
weights; categorical cross-entropy, with balanced class weights; the focal loss (gamma 2) of the task."""
SIGMOID_TASKS = ("binary", "multilabel")
LOSS_TASKS = MappingProxyType(
    {
        "BCE": SIGMOID_TASKS,
        "WBCE": SIGMOID_TASKS,
        "CWBCE": SIGMOID_TASKS,
        "CCE": ("multiclass",),
        "WCCE": ("multiclass",),
        "FL": ("binary", "multiclass", "multilabel"),
    }
)
"""The tasks (`medbench.data.tasks`) each loss token fits: a sigmoid per class, or one softmax per image."""
WEIGHTED_LOSSES = frozenset({"WBCE", "CWBCE", "WCCE"})
"""The loss tokens that take class weights computed from the training labels."""
OPTIMIZERS: tuple[str, ...] = ("Adam", "AdamW", "SGD", "RMSprop", "Nadam", "Adagrad")
"""Optimizer tokens, the Keras class names."""
DEFAULT_OPTIMIZER = "Adam"
AUGMENTATIONS: tuple[str, ...] = ("affine", "color")
"""On-the-fly augmentations, written ``Aug`` + the capitalised names in this order (``AugAffineColor``)."""
ENUMERATIONS: MappingProxyType[str, int] = MappingProxyType({"none": 1, "hflip": 2, "hflip_rot4": 8, "hflip_rot24": 48})
"""Enumerated augmentation (TIML's `imgaug`) and the variants of each training image it makes per epoch: the
image and its horizontal mirror, each turned by 0/90/180/270° (rot4) or by every 15° (rot24). Written
``Enum`` + the capitalised parts (``EnumHflipRot4``); ``none`` is left out."""
DEFAULT_UNCERTAINTY = "zeros"
DEFAULT_SEED = 0
DEFAULT_ARCHITECTURE = "2D.SmallCNN"
"""The architecture of a 2D `medbench exec BENCHMARK` and of batch files that name none."""
DEFAULT_ARCHITECTURES = MappingProxyType({2: DEFAULT_ARCHITECTURE, 3: "3D.SmallCNN"})
"""The architecture of a benchmark that names none, by the benchmark's dimension."""
DIMENSIONS: tuple[int, ...] = (2, 3)
"""Spatial dimensions of a benchmark's samples: 2 = images (no token), 3 = volumes (the ``3D`` token)."""
DEFAULT_DIMENSION = 2

LR_SCHEDULES: tuple[str, ...] = ("plateau", "epoch")
"""`ExperimentOptions.lr_schedule`: decay on a validation plateau, or after every epoch."""
STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multiworker")
"""`ExperimentOptions.strategy`: one device, all GPUs of a host, several hosts (TF_CONFIG)."""
MIXED_PRECISION_POLICIES: tuple[str, ...] = ("mixed_float16", "mixed_bfloat16")
"""`ExperimentOptions.mixed_precision` besides None."""


@dataclass(frozen=True)
class IntRange:
    """The whole numbers low..high (inclusive) a field or parameter accepts."""

    low: int
    high: int

    def check(self, what: str, value: object, token: str | None = None) -> int:
        """`value` if it is a whole number in range, else a BenchmarkNameError naming it (and its token)."""
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            written = f" ({token})" if token else ""
            raise BenchmarkNameError(f"{what} {value!r}{written}: expected a whole number in {self}")
        return value

    def __str__(self) -> str:
        return f"{self.low}..{self.high}"


@dataclass(frozen=True)
class FloatRange:
    """The numbers in (low, high) or (low, high] a field accepts."""

    low: float
    high: float
    high_included: bool = False

    def check(self, what: str, value: object, token: str | None = None) -> float:
        """`value` as a float if it lies in range, else a BenchmarkNameError naming it (and its token)."""
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
        inside = self.low < number and (number <= self.high if self.high_included else number < self.high)
        if not inside:
            written = f" ({token})" if token else ""
            raise BenchmarkNameError(f"{what} {value!r}{written}: expected a number in {self}")
        return number

    def __str__(self) -> str:
        return f"({self.low:g}, {self.high:g}{']' if self.high_included else ')'}"


EPOCHS = IntRange(1, 1000)
BATCH_SIZE = IntRange(1, 4096)
N_CLASSES = IntRange(1, 1000)
IMAGE_SIZE = IntRange(8, 4096)
VOLUME_SIZE = IntRange(8, 512)
"""A 3D benchmark's ``D`` (and ``Z`` depth) in voxels: 512³ is the most voxels medbench reads from one volume."""
SEED = IntRange(0, 2**32 - 1)
"""NumPy's seed range: `keras.utils.set_random_seed` seeds NumPy with it."""
LEARNING_RATE = FloatRange(0.0, 10.0, high_included=True)
LR_FACTOR = FloatRange(0.0, 1.0)
SPLIT_PERCENT = IntRange(1, 99)
PATIENCE = IntRange(1, EPOCHS.high)
"""Epochs without improvement before a plateau decay or an early stop: at most a whole run."""
TRAIN_SAMPLES = IntRange(1, 10**9)
"""`max_train_samples`: a cap, so at most a billion images (ten times the largest public X-ray sets)."""
UPSAMPLE_FACTOR = IntRange(1, 100)
"""How many copies of a rare class's images an upsampled benchmark may train on."""
BAGGING_FOLDS = IntRange(2, 100)
"""`bagging_fold` i/k: how many patient-grouped folds a bagging member's training split is cut into."""
FCL_WIDTH = IntRange(1, 65536)
"""`fcl_units`: the width of one dense layer of the head's fully connected block."""


@dataclass(frozen=True)
class Parameter:
    """One numeric parameter of a transformation: its name, the letter standing for it in the written form,
    its range and the value an omitted number means."""

    name: str
    letter: str
    range: IntRange
    default: int | None = None


@dataclass(frozen=True)
class TransformForm:
    """One transformation form: its token pattern (one group per parameter) and its parameters."""

    kind: str
    written: str
    pattern: str
    parameters: tuple[Parameter, ...] = ()
    description: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    @property
    def text(self) -> str:
        """The written form with its ranges, e.g. "windowCwW (C in 0..255, W in 1..510)"."""
        ranges = ", ".join(f"{parameter.letter} in {parameter.range}" for parameter in self.parameters)
        return f"{self.written} ({ranges})" if ranges else self.written


TRANSFORM_FORMS: tuple[TransformForm, ...] = (
    TransformForm(
        "sharp",
        "sharpRA",
        r"sharp(\d)(\d)",
        (Parameter("radius", "R", IntRange(1, 9)), Parameter("amount", "A", IntRange(1, 9))),
        "unsharp mask: image + amount * (image - gaussian(image, sigma=radius))",
    ),
    TransformForm("histeq", "histeq", r"histeq", (), "global histogram equalisation"),
    TransformForm(
        "clahe",
        "clahe[N]",
        r"clahe(\d*)",
        (Parameter("clip_limit", "N", IntRange(1, 100), default=2),),
        "CLAHE, clip limit N",
    ),
    TransformForm(
        "blur", "blurN", r"blur(\d+)", (Parameter("sigma", "N", IntRange(1, 50)),), "gaussian blur, sigma N px"
    ),
    TransformForm(
        "median",
        "medianN",
        r"median(\d+)",
        (Parameter("size", "N", IntRange(2, 51)),),
        "median filter, N px (even → N + 1)",
    ),
    TransformForm(
        "window",
        "windowCwW",
        r"window(\d+)w(\d+)",
        (Parameter("center", "C", IntRange(0, 255)), Parameter("width", "W", IntRange(1, 510))),
        "intensity window: C ± W/2 → 0..255",
    ),
)
COLOR_SPACES: tuple[str, ...] = ("hsv", "lab", "ycbcr")
"""Colour-space transformations (TIML's `colorspace`): the RGB image converted as Pillow's modes convert it."""
RESIZE_FILTERS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")
"""Resize-filter tokens (TIML's `resizefilter`): the image is resized with this Pillow filter instead of
medbench's default (area averaging when shrinking, bilinear when enlarging). At most one per benchmark."""
TRANSFORM_FORMS += tuple(
    TransformForm(space, space, space, (), f"RGB converted to {space.upper()} (colour datasets)")
    for space in COLOR_SPACES
) + tuple(
    TransformForm(name, name, name, (), f"resize with the {name} filter (not a transformation step)")
    for name in RESIZE_FILTERS
)
TRANSFORMS = MappingProxyType({form.kind: form for form in TRANSFORM_FORMS})
TRANSFORM_TOKEN_PATTERN = "|".join(f"(?:{form.pattern})" for form in TRANSFORM_FORMS)
"""One transformation token of any form (the parameters' ranges are checked by `parse_transformation`)."""


@dataclass(frozen=True)
class Transformation:
    """A parsed transformation token: its form and parameter values."""

    token: str
    kind: str
    values: tuple[tuple[str, int], ...]

    @property
    def parameters(self) -> dict[str, int]:
        return dict(self.values)


def losses_for(task: str) -> tuple[str, ...]:
    """The loss tokens that fit `task`, in vocabulary order."""
    return tuple(token for token in LOSSES if task in LOSS_TASKS[token])


def transform_forms_text() -> str:
    """The written forms with their ranges, for error messages and the CLI."""
    return ", ".join(form.text for form in TRANSFORM_FORMS)


def parse_transformation(token: str) -> Transformation:
    """The transformation a token names, its parameters checked against their ranges."""
    for form in TRANSFORM_FORMS:
        match = form.regex.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            continue
        values = []
        for parameter, digits in zip(form.parameters, match.groups()):
            if digits == "" and parameter.default is not None:
                values.append((parameter.name, parameter.default))
                continue
            value = int(digits)
            if not parameter.range.low <= value <= parameter.range.high:
                raise BenchmarkNameError(
                    f"transformation {token!r}: {parameter.name} {value} is out of range; "
                    f"expected {form.written} with {parameter.name} in {parameter.range}"
                )
            values.append((parameter.name, value))
        return Transformation(token, form.kind, tuple(values))
    raise BenchmarkNameError(f"transformation {token!r}: expected one of {transform_forms_text()}")

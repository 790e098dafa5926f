"""The Benchmark: a dataset plus every hyperparameter, encoded in a readable, reversible name.

Name scheme (tokens joined by ``_``; optional ones are left out when they hold their default)::

    [Dataset]_[Loss]_[L1Normed]_[E#]_[B#]_[C0|C1]_[N#]_[Aug…]_[transforms]_[U…]_[D#]_[DS####]_
    [#LR#]_[LF#]_[Optimizer]_[upsampled]_[S#]

``Benchmark.from_name(b.name) == b`` for every valid benchmark; tokens the original project wrote
differently (``D9505`` for the split, an omitted optimizer, ``Uzero``) are still parsed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from medbench.errors import BenchmarkNameError

LOSSES: tuple[str, ...] = ("BCE", "WBCE", "CWBCE")
OPTIMIZERS: tuple[str, ...] = ("Adam", "AdamW", "SGD", "RMSprop", "Nadam", "Adagrad")
AUGMENTATIONS: tuple[str, ...] = ("affine", "color")
UNCERTAINTY_POLICIES: tuple[str, ...] = ("zeros", "ones", "ignore")
DEFAULT_SEED = 0

_TRANSFORM_FORMS: dict[str, str] = {
    "sharp": r"sharp\d\d",
    "histeq": r"histeq",
    "clahe": r"clahe\d*",
    "blur": r"blur\d+",
    "median": r"median\d+",
    "window": r"window\d+w\d+",
}
_TRANSFORM_RE = re.compile("|".join(f"(?:{form})" for form in _TRANSFORM_FORMS.values()))


@dataclass(frozen=True)
class UncertaintyPreset:
    """A named per-class mix of U-zeros and U-ones, e.g. ``U75`` = 7 classes U-zero, 5 U-one."""

    token: str
    uzeros: tuple[str, ...]
    uones: tuple[str, ...]

    def __post_init__(self) -> None:
        expected = f"U{len(self.uzeros)}{len(self.uones)}"
        if self.token != expected:
            raise BenchmarkNameError(
                f"preset {self.token!r} lists {expected[1:]} classes; it must be named {expected!r}"
            )
        overlap = set(self.uzeros) & set(self.uones)
        if overlap:
            raise BenchmarkNameError(f"preset {self.token!r} puts {sorted(overlap)} in both U-zeros and U-ones")

    @property
    def classes(self) -> tuple[str, ...]:
        return self.uzeros + self.uones


UNCERTAINTY_PRESETS: dict[str, UncertaintyPreset] = {
    preset.token: preset
    for preset in (
        # CheXpert paper (Irvin et al. 2019): U-ones helps Atelectasis and Edema, U-zeros the rest of the five.
        UncertaintyPreset(
            "U32",
            uzeros=("Cardiomegaly", "Consolidation", "Pleural Effusion"),
            uones=("Atelectasis", "Edema"),
        ),
        UncertaintyPreset(
            "U75",
            uzeros=(
                "Enlarged Cardiomediastinum",
                "Cardiomegaly",
                "Lung Opacity",
                "Consolidation",
                "Pneumonia",
                "Pneumothorax",
                "Pleural Effusion",
            ),
            uones=("Lung Lesion", "Edema", "Atelectasis", "Pleural Other", "Fracture"),
        ),
        UncertaintyPreset(
            "U66",
            uzeros=(
                "Cardiomegaly",
                "Lung Opacity",
                "Consolidation",
                "Pneumonia",
                "Pneumothorax",
                "Pleural Effusion",
            ),
            uones=("Enlarged Cardiomediastinum", "Lung Lesion", "Edema", "Atelectasis", "Pleural Other", "Fracture"),
        ),
    )
}


@dataclass(frozen=True)
class Benchmark:
    """A dataset and every hyperparameter of a training run; `name` encodes all of it."""

    dataset: str
    loss: str = "BCE"
    epochs: int = 3
    batch_size: int = 32
    n_classes: int = 12
    image_size: int = 256
    learning_rate: float = 1e-4
    lr_factor: float = 0.5
    l1_normed: bool = False
    crop: bool = False
    augmentations: tuple[str, ...] = ()
    transformations: tuple[str, ...] = ()
    uncertainty: str = "zeros"
    split: tuple[int, ...] = ()
    optimizer: str = "Adam"
    upsampled: bool = False
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        object.__setattr__(self, "augmentations", tuple(self.augmentations))
        object.__setattr__(self, "transformations", tuple(self.transformations))
        object.__setattr__(self, "split", tuple(int(part) for part in self.split))
        object.__setattr__(self, "learning_rate", float(self.learning_rate))
        object.__setattr__(self, "lr_factor", float(self.lr_factor))
        _validate(self)

    @property
    def name(self) -> str:
        """The benchmark's name in the documented scheme; parsed back by `Benchmark.from_name`."""
        return "_".join(_encode(self))

    @classmethod
    def from_name(cls, name: str) -> Benchmark:
        """Parse a benchmark name; an unknown or malformed token is an error naming it and the valid forms."""
        values = _decode(name)
        try:
            return cls(**values)
        except BenchmarkNameError as error:
            raise BenchmarkNameError(f"benchmark name {name!r}: {error}") from None

    @property
    def uncertainty_preset(self) -> UncertaintyPreset | None:
        return UNCERTAINTY_PRESETS.get(self.uncertainty)

    @property
    def split_fractions(self) -> tuple[float, ...]:
        """Patient fractions of the split: (train, val) with the official test set, or (train, val, test)."""
        return tuple(part / 100 for part in (self.split or (60, 20, 20)))

    def with_(self, **changes: Any) -> Benchmark:
        """A copy with some fields changed (validated like a new Benchmark)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """All fields plus the name, JSON-friendly."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return {"name": self.name, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Benchmark:
        known = {f.name for f in fields(cls)}
        return cls(
            **{key: (tuple(value) if isinstance(value, list) else value) for key, value in data.items() if key in known}
        )


# --------------------------------------------------------------------------------------------- validation


def _validate(b: Benchmark) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9-]*", b.dataset or ""):
        raise BenchmarkNameError(
            f"dataset {b.dataset!r}: expected lowercase letters, digits and hyphens "
            "(e.g. 'chexpert', 'chestxray14-256')"
        )
    if b.loss not in LOSSES:
        raise BenchmarkNameError(f"loss {b.loss!r}: expected one of {', '.join(LOSSES)}")
    for key in ("epochs", "batch_size", "n_classes", "image_size"):
        value = getattr(b, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BenchmarkNameError(f"{key} {value!r}: expected a positive integer")
    if not isinstance(b.seed, int) or isinstance(b.seed, bool) or b.seed < 0:
        raise BenchmarkNameError(f"seed {b.seed!r}: expected a non-negative integer")
    if not (b.learning_rate > 0 and b.learning_rate < float("inf")):
        raise BenchmarkNameError(f"learning_rate {b.learning_rate!r}: expected a positive finite number")
    if not 0 < b.lr_factor < 1:
        raise BenchmarkNameError(f"lr_factor {b.lr_factor!r}: expected a number in (0, 1), e.g. 0.5 (written LF5)")
    for aug in b.augmentations:
        if aug not in AUGMENTATIONS:
            raise BenchmarkNameError(f"augmentation {aug!r}: expected one of {', '.join(AUGMENTATIONS)}")
    if len(set(b.augmentations)) != len(b.augmentations):
        raise BenchmarkNameError(f"augmentations {b.augmentations!r}: each may appear once")
    for transform in b.transformations:
        if not _TRANSFORM_RE.fullmatch(transform):
            raise BenchmarkNameError(f"transformation {transform!r}: expected one of {_transform_forms()}")
    if b.uncertainty not in UNCERTAINTY_POLICIES and b.uncertainty not in UNCERTAINTY_PRESETS:
        raise BenchmarkNameError(
            f"uncertainty {b.uncertainty!r}: expected one of {', '.join(UNCERTAINTY_POLICIES)} "
            f"or a preset {', '.join(UNCERTAINTY_PRESETS)}"
        )
    if b.split and (len(b.split) not in (2, 3) or any(not 0 < p < 100 for p in b.split) or sum(b.split) != 100):
        raise BenchmarkNameError(
            f"split {b.split!r}: expected 2 or 3 percentages in 1..99 summing to 100, e.g. (95, 5) written DS9505"
        )
    if b.optimizer not in OPTIMIZERS:
        raise BenchmarkNameError(f"optimizer {b.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")


def _transform_forms() -> str:
    return "sharpRA (radius, amount digits, e.g. sharp21), histeq, clahe[N], blurN, medianN, windowCwW"


# ------------------------------------------------------------------------------------------------ encoding


def _decimal_text(value: float) -> str:
    """The shortest exact decimal text of a float, without exponent (0.0001 → '0.0001')."""
    return format(Decimal(repr(value)).normalize(), "f")


def encode_learning_rate(lr: float) -> str:
    """1e-4 → '1LR4', 2.5e-5 → '25LR6': mantissa digits, then the power of ten to divide by."""
    sign, digits, exponent = Decimal(repr(lr)).normalize().as_tuple()
    mantissa = int("".join(map(str, digits)))
    if exponent > 0:
        return f"{mantissa * 10**exponent}LR0"
    return f"{mantissa}LR{-exponent}"


def decode_learning_rate(token: str) -> float:
    mantissa, _, exponent = token.partition("LR")
    return float(f"{int(mantissa)}e-{int(exponent)}")


def encode_lr_factor(factor: float) -> str:
    """0.5 → 'LF5', 0.25 → 'LF25', 0.05 → 'LF05' (the digits after '0.')."""
    return "LF" + _decimal_text(factor).removeprefix("0.")


def decode_lr_factor(token: str) -> float:
    return float("0." + token.removeprefix("LF"))


def _encode(b: Benchmark) -> list[str]:
    tokens = [b.dataset, b.loss]
    if b.l1_normed:
        tokens.append("L1Normed")
    tokens += [f"E{b.epochs}", f"B{b.batch_size}", f"C{int(b.crop)}", f"N{b.n_classes}"]
    if b.augmentations:
        tokens.append("Aug" + "".join(aug.capitalize() for aug in b.augmentations))
    if b.transformations:
        tokens.append("-".join(b.transformations))
    if b.uncertainty != "zeros":
        tokens.append(b.uncertainty if b.uncertainty in UNCERTAINTY_PRESETS else "U" + b.uncertainty.removesuffix("s"))
    tokens.append(f"D{b.image_size}")
    if b.split:
        tokens.append("DS" + "".join(f"{part:02d}" for part in b.split))
    tokens += [encode_learning_rate(b.learning_rate), encode_lr_factor(b.lr_factor), b.optimizer]
    if b.upsampled:
        tokens.append("upsampled")
    if b.seed != DEFAULT_SEED:
        tokens.append(f"S{b.seed}")
    return tokens


# ------------------------------------------------------------------------------------------------ decoding


@dataclass(frozen=True)
class _Field:
    """One position of the scheme: how its token looks and what it sets."""

    label: str
    pattern: str
    forms: str
    parse: Any
    required: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


def _parse_augmentations(token: str) -> dict[str, Any]:
    words = re.findall(r"[A-Z][a-z]*", token.removeprefix("Aug"))
    if "".join(words) != token.removeprefix("Aug") or not words:
        raise ValueError
    return {"augmentations": tuple(word.lower() for word in words)}


def _parse_uncertainty(token: str) -> dict[str, Any]:
    aliases = {"Uzero": "zeros", "Uzeros": "zeros", "Uone": "ones", "Uones": "ones", "Uignore": "ignore"}
    if token in aliases:
        return {"uncertainty": aliases[token]}
    if token in UNCERTAINTY_PRESETS:
        return {"uncertainty": token}
    raise ValueError


def _parse_split(token: str) -> dict[str, Any]:
    digits = token.removeprefix("DS").removeprefix("D")
    if len(digits) not in (4, 6):
        raise ValueError
    return {"split": tuple(int(digits[i : i + 2]) for i in range(0, len(digits), 2))}


_FIELDS: tuple[_Field, ...] = (
    _Field("loss", "|".join(LOSSES), ", ".join(LOSSES), lambda t: {"loss": t}, required=True),
    _Field("class weight", r"L1Normed", "L1Normed (or omitted)", lambda t: {"l1_normed": True}),
    _Field("epochs", r"E\d+", "E<epochs>, e.g. E3", lambda t: {"epochs": int(t[1:])}, required=True),
    _Field("batch size", r"B\d+", "B<batch size>, e.g. B32", lambda t: {"batch_size": int(t[1:])}, required=True),
    _Field("cropping", r"C[01]", "C0 or C1", lambda t: {"crop": t == "C1"}, required=True),
    _Field("classes", r"N\d+", "N<classes>, e.g. N12", lambda t: {"n_classes": int(t[1:])}, required=True),
    _Field(
        "augmentations",
        r"Aug[A-Za-z]+",
        "Aug + " + " / ".join(a.capitalize() for a in AUGMENTATIONS),
        _parse_augmentations,
    ),
    _Field(
        "transformations",
        rf"(?:{_TRANSFORM_RE.pattern})(?:-(?:{_TRANSFORM_RE.pattern}))*",
        _transform_forms() + ", joined by '-'",
        lambda t: {"transformations": tuple(t.split("-"))},
    ),
    _Field(
        "uncertainty",
        r"U[a-z]+|U\d\d",
        "Uzero, Uone, Uignore or a preset " + ", ".join(UNCERTAINTY_PRESETS),
        _parse_uncertainty,
    ),
    _Field("image dimension", r"D\d+", "D<pixels>, e.g. D256", lambda t: {"image_size": int(t[1:])}, required=True),
    _Field(
        "split", r"DS\d+|D\d{4}|D\d{6}", "DS<train><val>[<test>] in two-digit percentages, e.g. DS9505", _parse_split
    ),
    _Field(
        "learning rate",
        r"\d+LR\d+",
        "<mantissa>LR<exponent>, e.g. 1LR4 = 1e-4",
        lambda t: {"learning_rate": decode_learning_rate(t)},
        required=True,
    ),
    _Field(
        "learning factor",
        r"LF\d+",
        "LF<digits after 0.>, e.g. LF5 = 0.5",
        lambda t: {"lr_factor": decode_lr_factor(t)},
        required=True,
    ),
    _Field("optimizer", "|".join(OPTIMIZERS), ", ".join(OPTIMIZERS) + " (omitted = Adam)", lambda t: {"optimizer": t}),
    _Field("upsampling", r"upsampled", "upsampled (or omitted)", lambda t: {"upsampled": True}),
    _Field("seed", r"S\d+", f"S<seed> (omitted = {DEFAULT_SEED})", lambda t: {"seed": int(t[1:])}),
)


def _decode(name: str) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise BenchmarkNameError(f"benchmark name {name!r}: expected a non-empty string like {EXAMPLE_NAME!r}")
    tokens = name.split("_")
    if any(not token for token in tokens):
        raise BenchmarkNameError(f"benchmark name {name!r}: empty token (doubled or trailing '_')")
    values: dict[str, Any] = {"dataset": tokens[0]}
    position = 1
    for spec in _FIELDS:
        token = tokens[position] if position < len(tokens) else None
        if token is not None and spec.regex.fullmatch(token):
            try:
                values.update(spec.parse(token))
            except ValueError:
                raise BenchmarkNameError(
                    f"benchmark name {name!r}: token {token!r} at position {position + 1} is not a valid "
                    f"{spec.label}; expected {spec.forms}"
                ) from None
            position += 1
        elif spec.required:
            found = f"token {token!r} at position {position + 1}" if token is not None else "the end of the name"
            raise BenchmarkNameError(
                f"benchmark name {name!r}: expected the {spec.label} ({spec.forms}) but found {found}"
            )
    if position < len(tokens):
        raise BenchmarkNameError(
            f"benchmark name {name!r}: unknown token {tokens[position]!r} at position {position + 1}; "
            f"after {tokens[position - 1]!r} only these may follow in order: {_forms_after(tokens[position - 1])}"
        )
    return values


def _forms_after(previous: str) -> str:
    index = next((i for i, spec in enumerate(_FIELDS) if spec.regex.fullmatch(previous)), -1)
    rest = _FIELDS[index + 1 :]
    return "; ".join(f"{spec.label}: {spec.forms}" for spec in rest) or "nothing"


EXAMPLE_NAME = "chexpert_CWBCE_L1Normed_E5_B32_C0_N12_AugAffine_sharp21_U75_D256_DS9505_1LR4_LF5_Adam_upsampled"

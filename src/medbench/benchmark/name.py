"""The name codec: a Benchmark's fields ↔ its name, token by token in the documented order.

Name scheme (tokens joined by ``_``; optional ones are left out when they hold their default)::

    [Dataset]_[3D]_[Loss]_[L1Normed]_[E#]_[B#]_[C0|C1]_[N#]_[Aug…]_[Enum…]_[transforms]_[U…]_[D#]_[Z#]_
    [DS####]_[#LR#]_[LF#]_[Optimizer]_[upsampled]_[S#]

``3D`` marks a benchmark of volumes (no token: images); its ``D#`` is the side of the volume's height and
width and of its depth, unless ``Z#`` gives the depth (volumes only).

`encode` and `decode` work on plain field values; `Benchmark` validates them against the vocabulary.
Tokens the original project wrote differently but unambiguously (``D9505`` for the split, an omitted
optimizer, ``Uzero``) are still decoded; its other spellings need `medbench.benchmark.legacy`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from medbench.benchmark.vocabulary import (
    AUGMENTATIONS,
    DEFAULT_DIMENSION,
    DEFAULT_OPTIMIZER,
    DEFAULT_SEED,
    DEFAULT_UNCERTAINTY,
    ENUMERATIONS,
    LOSSES,
    OPTIMIZERS,
    TRANSFORM_TOKEN_PATTERN,
    UNCERTAINTY_PRESETS,
    transform_forms_text,
)
from medbench.errors import BenchmarkNameError

EXAMPLE_NAME = "chexpert_CWBCE_L1Normed_E5_B32_C0_N12_AugAffine_sharp21_U75_D256_DS9505_1LR4_LF5_Adam_upsampled"


def _decimal_text(value: float) -> str:
    """The shortest exact decimal text of a float, without exponent (0.0001 → '0.0001')."""
    return format(Decimal(repr(value)).normalize(), "f")


def encode_learning_rate(lr: float) -> str:
    """1e-4 → '1LR4', 2.5e-5 → '25LR6': mantissa digits, then the power of ten to divide by."""
    _, digits, exponent = Decimal(repr(lr)).normalize().as_tuple()
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


def encode_enumeration(preset: str) -> str:
    """'hflip_rot4' → 'EnumHflipRot4'."""
    return "Enum" + "".join(part.capitalize() for part in preset.split("_"))


ENUMERATION_TOKENS: Mapping[str, str] = {encode_enumeration(p): p for p in ENUMERATIONS if p != "none"}


def encode(values: Mapping[str, Any]) -> str:
    """The name of a benchmark given its field values (a `Benchmark`'s fields)."""
    v = values
    tokens = [v["dataset"]]
    if v["dimension"] != DEFAULT_DIMENSION:
        tokens.append(f"{v['dimension']}D")
    tokens.append(v["loss"])
    if v["l1_normed"]:
        tokens.append("L1Normed")
    tokens += [f"E{v['epochs']}", f"B{v['batch_size']}", f"C{int(v['crop'])}", f"N{v['n_classes']}"]
    if v["augmentations"]:
        tokens.append("Aug" + "".join(aug.capitalize() for aug in v["augmentations"]))
    if v["enumeration"] != "none":
        tokens.append(encode_enumeration(v["enumeration"]))
    if v["transformations"]:
        tokens.append("-".join(v["transformations"]))
    uncertainty = v["uncertainty"]
    if uncertainty != DEFAULT_UNCERTAINTY:
        tokens.append(uncertainty if uncertainty in UNCERTAINTY_PRESETS else "U" + uncertainty.removesuffix("s"))
    tokens.append(f"D{v['image_size']}")
    if v["depth"] is not None:
        tokens.append(f"Z{v['depth']}")
    if v["split"]:
        tokens.append("DS" + "".join(f"{part:02d}" for part in v["split"]))
    tokens += [encode_learning_rate(v["learning_rate"]), encode_lr_factor(v["lr_factor"]), v["optimizer"]]
    if v["upsampled"]:
        tokens.append("upsampled")
    if v["seed"] != DEFAULT_SEED:
        tokens.append(f"S{v['seed']}")
    return "_".join(tokens)


@dataclass(frozen=True)
class _Field:
    """One position of the scheme: how its token looks and what it sets."""

    label: str
    pattern: str
    forms: str
    parse: Callable[[str], dict[str, Any]]
    required: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


def _parse_augmentations(token: str) -> dict[str, Any]:
    words = re.findall(r"[A-Z][a-z]*", token.removeprefix("Aug"))
    if "".join(words) != token.removeprefix("Aug") or not words:
        raise ValueError
    return {"augmentations": tuple(word.lower() for word in words)}


def _parse_enumeration(token: str) -> dict[str, Any]:
    if token not in ENUMERATION_TOKENS:
        raise ValueError
    return {"enumeration": ENUMERATION_TOKENS[token]}


UNCERTAINTY_TOKENS: Mapping[str, str] = {
    "Uzero": "zeros",
    "Uzeros": "zeros",
    "Uone": "ones",
    "Uones": "ones",
    "Uignore": "ignore",
}


def _parse_uncertainty(token: str) -> dict[str, Any]:
    if token in UNCERTAINTY_TOKENS:
        return {"uncertainty": UNCERTAINTY_TOKENS[token]}
    if token in UNCERTAINTY_PRESETS:
        return {"uncertainty": token}
    raise ValueError


def _parse_split(token: str) -> dict[str, Any]:
    digits = token.removeprefix("DS").removeprefix("D")
    if len(digits) not in (4, 6):
        raise ValueError
    return {"split": tuple(int(digits[i : i + 2]) for i in range(0, len(digits), 2))}


FIELDS: tuple[_Field, ...] = (
    _Field(
        "dimension",
        r"[23]D",
        f"3D for volumes (omitted = {DEFAULT_DIMENSION}D images)",
        lambda t: {"dimension": int(t[0])},
    ),
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
        "enumeration",
        r"Enum[A-Za-z0-9]+",
        " / ".join(ENUMERATION_TOKENS),
        _parse_enumeration,
    ),
    _Field(
        "transformations",
        rf"(?:{TRANSFORM_TOKEN_PATTERN})(?:-(?:{TRANSFORM_TOKEN_PATTERN}))*",
        transform_forms_text() + ", joined by '-'",
        lambda t: {"transformations": tuple(t.split("-"))},
    ),
    _Field(
        "uncertainty",
        r"U[a-z]+|U\d\d",
        "Uzero, Uone, Uignore or a preset " + ", ".join(UNCERTAINTY_PRESETS),
        _parse_uncertainty,
    ),
    _Field("image dimension", r"D\d+", "D<pixels>, e.g. D256", lambda t: {"image_size": int(t[1:])}, required=True),
    _Field("volume depth", r"Z\d+", "Z<slices> (3D only; omitted = D)", lambda t: {"depth": int(t[1:])}),
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
    _Field(
        "optimizer",
        "|".join(OPTIMIZERS),
        ", ".join(OPTIMIZERS) + f" (omitted = {DEFAULT_OPTIMIZER})",
        lambda t: {"optimizer": t},
    ),
    _Field("upsampling", r"upsampled", "upsampled (or omitted)", lambda t: {"upsampled": True}),
    _Field("seed", r"S\d+", f"S<seed> (omitted = {DEFAULT_SEED})", lambda t: {"seed": int(t[1:])}),
)


def decode(name: str) -> dict[str, Any]:
    """The field values a name spells; an unknown or malformed token is an error naming it and the valid forms.

    The messages say what is wrong with which token; `Benchmark.from_name` prefixes the name.
    """
    if not isinstance(name, str) or not name:
        raise BenchmarkNameError(f"expected a non-empty string like {EXAMPLE_NAME!r}")
    tokens = name.split("_")
    if any(not token for token in tokens):
        raise BenchmarkNameError("empty token (doubled or trailing '_')")
    values: dict[str, Any] = {"dataset": tokens[0]}
    position = 1
    for spec in FIELDS:
        token = tokens[position] if position < len(tokens) else None
        if token is not None and spec.regex.fullmatch(token):
            try:
                values.update(spec.parse(token))
            except ValueError:
                raise BenchmarkNameError(
                    f"token {token!r} at position {position + 1} is not a valid {spec.label}; expected {spec.forms}"
                ) from None
            position += 1
        elif spec.required:
            found = f"token {token!r} at position {position + 1}" if token is not None else "the end of the name"
            raise BenchmarkNameError(f"expected the {spec.label} ({spec.forms}) but found {found}")
    if position < len(tokens):
        raise BenchmarkNameError(
            f"unknown token {tokens[position]!r} at position {position + 1}; "
            f"after {tokens[position - 1]!r} only these may follow in order: {_forms_after(tokens[position - 1])}"
        )
    return values


def _forms_after(previous: str) -> str:
    index = next((i for i, spec in enumerate(FIELDS) if spec.regex.fullmatch(previous)), -1)
    rest = FIELDS[index + 1 :]
    return "; ".join(f"{spec.label}: {spec.forms}" for spec in rest) or "nothing"

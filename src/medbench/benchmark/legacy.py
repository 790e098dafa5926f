"""The original platform's benchmark names, read into the nearest Benchmark (`from_name(name, legacy=True)`).

The original wrote its names by hand, and old logs and model folders carry spellings the canonical
scheme refuses: a capitalised dataset (``Chexpert_…``), ``Uones``/``UONES``/``UZEROES``, ``NoAug`` and
``NoNorm`` placeholders, ``Upsampled``, ``hist_gb``/``gb_hist``, the older ``LR4`` learning-rate form, a
copy counter (``…_Upsampled_1``) and names without learning rate or factor. `modernize` rewrites such
a name into the canonical scheme, filling what it omits from `ORIGINAL_DEFAULTS`; what it cannot map
is left in place for the parser to refuse with its usual message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from medbench.benchmark.name import encode_learning_rate, encode_lr_factor

ORIGINAL_DEFAULTS: Mapping[str, object] = MappingProxyType(
    {
        # The original's Benchmark took `optimizer=Adam()`: Keras' default learning rate.
        "learning_rate": 1e-3,
        # Its learning-rate decay was Keras' ReduceLROnPlateau, whose default factor is 0.1.
        "lr_factor": 0.1,
        "optimizer": "Adam",
        "uncertainty": "zeros",
        # Without a split token it split patients 60/20/20 (medbench's default when DS is omitted).
        "split": (),
    }
)
"""What the original used where an older name says nothing (README: "Reading the original's names")."""

TOKEN_SPELLINGS: Mapping[str, str | None] = MappingProxyType(
    {
        "uzero": "Uzero",
        "uzeros": "Uzero",
        "uzeroes": "Uzero",
        "uone": "Uone",
        "uones": "Uone",
        "uignore": "Uignore",
        "noaug": None,
        "nonorm": None,
        "upsampled": "upsampled",
    }
)
"""Case-folded original tokens → canonical token (None: a placeholder that says "none", dropped)."""

TRANSFORM_SPELLINGS: Mapping[str, str] = MappingProxyType({"hist": "histeq", "gb": "blur1"})
"""The original's transformation words: histogram equalisation and its Gaussian blur (sigma about 1 px)."""

_OLD_LEARNING_RATE = re.compile(r"LR(\d+)")
_IMAGE_DIMENSION = re.compile(r"D\d+")
_SPLIT = re.compile(r"DS\d+|D\d{4}|D\d{6}")
_LEARNING_RATE = re.compile(r"\d+LR\d+")
_LR_FACTOR = re.compile(r"LF\d+")
_COPY_COUNTER = re.compile(r"\d+")


def _transformations(tokens: list[str]) -> list[str]:
    """Join runs of the original's transformation words (``hist_gb``) into one canonical token."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if token.lower() in TRANSFORM_SPELLINGS:
            run.append(TRANSFORM_SPELLINGS[token.lower()])
            continue
        if run:
            out.append("-".join(run))
            run = []
        if token:
            out.append(token)
    return out


def modernize(name: str) -> str:
    """The canonical spelling of an original benchmark name (unknown tokens are kept for the parser to refuse)."""
    if not isinstance(name, str) or not name:
        return name
    dataset, *rest = name.split("_")
    tokens: list[str] = []
    for token in rest:
        folded = token.casefold()
        if folded in TOKEN_SPELLINGS:
            if TOKEN_SPELLINGS[folded] is not None:
                tokens.append(str(TOKEN_SPELLINGS[folded]))
        elif _OLD_LEARNING_RATE.fullmatch(token):
            tokens.append(f"1{token}")
        else:
            tokens.append(token)
    tokens = _transformations(tokens)
    if len(tokens) > 1 and _COPY_COUNTER.fullmatch(tokens[-1]):
        tokens.pop()
    tokens = _with_defaults(tokens)
    return "_".join([dataset.lower(), *tokens])


def _with_defaults(tokens: list[str]) -> list[str]:
    """Insert the default learning rate and factor after the image dimension (and split) when they are missing."""
    image = next((i for i, token in enumerate(tokens) if i >= 4 and _IMAGE_DIMENSION.fullmatch(token)), None)
    if image is None:
        return tokens
    at = image + 1
    if at < len(tokens) and _SPLIT.fullmatch(tokens[at]):
        at += 1
    if at >= len(tokens) or not _LEARNING_RATE.fullmatch(tokens[at]):
        tokens.insert(at, encode_learning_rate(float(ORIGINAL_DEFAULTS["learning_rate"])))  # type: ignore[arg-type]
    at += 1
    if at >= len(tokens) or not _LR_FACTOR.fullmatch(tokens[at]):
        tokens.insert(at, encode_lr_factor(float(ORIGINAL_DEFAULTS["lr_factor"])))  # type: ignore[arg-type]
    return tokens

"""Validation of codec options, which arrive as strings from ``codecbench run -o KEY=VALUE``."""

from __future__ import annotations

from collections.abc import Sequence

from codecbench import Codec, CodecError


def choice_option(codec: Codec, key: str, choices: Sequence[str]) -> str:
    """The option ``key`` of ``codec`` as one of ``choices`` (``4:2:0`` is read as ``420``)."""
    value = str(codec.config[key]).replace(":", "").strip().lower()
    if value not in choices:
        raise CodecError(
            f'Invalid {key} "{codec.config[key]}" for codec {codec.name!r}; '
            f"expected one of {', '.join(choices)}"
        )
    return value


def integer_option(codec: Codec, key: str, low: int, high: int) -> int:
    """The option ``key`` of ``codec`` as an integer in ``low..high``."""
    value = codec.config[key]
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise CodecError(f'Invalid {key} "{value}" for codec {codec.name!r}; expected an integer {low}..{high}')
    return number

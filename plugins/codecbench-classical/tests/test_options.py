"""Option validation helpers: values arrive as strings and are checked with a clear message."""

from __future__ import annotations

import pytest

from codecbench import CodecError
from codecbench_classical.avif import AVIF
from codecbench_classical.options import choice_option, integer_option


def test_choice_option_accepts_pillow_style_ratios() -> None:
    assert choice_option(AVIF().with_options(subsampling="4:4:4"), "subsampling", ("420", "444")) == "444"
    with pytest.raises(CodecError, match="Invalid subsampling \"4:1:1\" for codec 'avif'; expected one of 420, 444"):
        choice_option(AVIF().with_options(subsampling="4:1:1"), "subsampling", ("420", "444"))


@pytest.mark.parametrize("value", ["eleven", "11", "-1", "2.5"])
def test_integer_option_rejects_values_outside_the_range(value: str) -> None:
    with pytest.raises(CodecError, match=f'Invalid speed "{value}" for codec \'avif\'; expected an integer 0..10'):
        integer_option(AVIF().with_options(speed=value), "speed", 0, 10)


def test_integer_option_reads_strings() -> None:
    assert integer_option(AVIF().with_options(speed=" 8"), "speed", 0, 10) == 8

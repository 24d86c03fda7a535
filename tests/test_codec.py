import numpy as np
import pytest
from toy_codecs import Knob

from codecbench.codec import check_image_array, format_point
from codecbench.errors import CodecError


class Continuous(Knob):
    name = "continuous"
    point_range = (0.0, 1.0)
    integer_points = False


def test_discrete_points_are_validated() -> None:
    assert Knob().validate_point(2.0) == 2
    with pytest.raises(CodecError, match='Invalid point "4" .* expected 1..3'):
        Knob().validate_point(4)
    with pytest.raises(CodecError, match="expected one of 1, 2, 3"):
        Knob().validate_point(2.5)


def test_continuous_range_accepts_any_value_inside() -> None:
    assert Continuous().validate_point(0.25) == 0.25
    with pytest.raises(CodecError):
        Continuous().validate_point(1.5)


def test_configure_rejects_unknown_options_and_names_accepted_ones() -> None:
    codec = Knob()
    codec.configure(mode="b")
    assert codec.config == {"mode": "b"}
    with pytest.raises(CodecError, match="no option 'speed'; accepted options: mode"):
        codec.configure(speed=3)


def test_instances_do_not_share_configuration() -> None:
    a, b = Knob(), Knob()
    a.configure(mode="z")
    assert b.config["mode"] == "a"


def test_format_point() -> None:
    assert format_point(75.0) == "75"
    assert format_point(0.5) == "0.5"


def test_check_image_array() -> None:
    check_image_array(np.zeros((2, 2, 3), np.uint8), "x")
    with pytest.raises(CodecError, match="H x W x 3 uint8"):
        check_image_array(np.zeros((2, 2), np.uint8), "x")


def test_with_options_returns_a_configured_copy() -> None:
    codec = Knob()
    configured = codec.with_options(mode="b")
    assert configured.config["mode"] == "b" and codec.config["mode"] == "a"
    assert type(configured) is Knob

"""Strict conversion rules, one by one (the converter every client and worker uses)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError
from workerkit import INVALID_INPUT, data_converter
from workerkit._strict import InputMismatch, convert


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Inner:
    n: int
    tags: set[str] = field(default_factory=set)


@dataclass
class Outer:
    name: str
    items: list[Inner]
    ratio: float = 1.0
    colour: Colour = Colour.RED
    mode: Literal["a", "b"] = "a"
    note: str | None = None
    pair: tuple[int, str] = (0, "")
    extra: dict[str, Any] = field(default_factory=dict)


GOOD = {"name": "x", "items": [{"n": 1, "tags": ["t"]}], "ratio": 2, "colour": "blue"}


def test_a_fitting_value_converts_to_the_declared_types() -> None:
    value = convert({**GOOD, "pair": [3, "z"], "note": None, "mode": "b"}, Outer)
    assert value == Outer("x", [Inner(1, {"t"})], 2.0, Colour.BLUE, "b", None, (3, "z"), {})
    assert isinstance(value.ratio, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": 5}, "name: expected a string, got the number 5"),
        ({"items": [{"n": True}]}, "items[0].n: expected an integer, got a boolean"),
        ({"items": [{"n": 1.0}]}, "items[0].n: expected an integer, got the number 1.0"),
        ({"items": [{}]}, "items[0].n: missing (required by Inner)"),
        ({"items": [{"n": 1, "m": 2}]}, "items[0]: unknown field 'm' for Inner (fields: n, tags)"),
        ({"items": {"n": 1}}, "items: expected an array, got an object"),
        ({"ratio": "2"}, "ratio: expected a number, got the string '2'"),
        ({"colour": "green"}, "colour: expected one of ['red', 'blue'], got the string 'green'"),
        ({"mode": "c"}, "mode: expected one of ['a', 'b'], got the string 'c'"),
        ({"note": 3}, "note: expected a string, got the number 3"),
        ({"pair": [1]}, "pair: expected 2 items, got 1"),
        ({"extra": []}, "extra: expected an object, got an array"),
    ],
)
def test_a_value_that_does_not_fit_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputMismatch) as caught:
        convert({**GOOD, **change}, Outer)
    assert str(caught.value) == message


def test_the_payload_converter_raises_a_non_retryable_invalid_input() -> None:
    converter = data_converter().payload_converter
    for raw, message in (
        (b'{"name": 1}', "Outer input is invalid: name: expected a string, got the number 1"),
        (b"NaN", "Outer input is not valid JSON: NaN is not a number JSON allows"),
        (b'{"a": Infinity}', "Outer input is not valid JSON: Infinity is not a number JSON allows"),
    ):
        payload = Payload(metadata={"encoding": b"json/plain"}, data=raw)
        with pytest.raises(ApplicationError) as caught:
            converter.from_payloads([payload], [Outer])
        assert caught.value.non_retryable and caught.value.type == INVALID_INPUT
        assert caught.value.message == message
    encoded = converter.to_payloads([Outer("x", [Inner(1)])])
    assert converter.from_payloads(encoded, [Outer]) == [Outer("x", [Inner(1)])]
    assert json.loads(encoded[0].data)["name"] == "x"

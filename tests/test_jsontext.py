"""ctrl.jsontext writes what json.dumps(indent=1, sort_keys=True) writes, character for character."""

import json
import math
from pathlib import Path

import pytest

from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.jsontext import dumps, writer

ROOT = Path(__file__).resolve().parents[1]


def test_odd_values_are_written_as_json_writes_them():
    odd = {"3": [1.5, float("nan"), -0.0, 1e300, float("-inf")], "10": {"é": "\u2603", "t": (1, None, True)},
           "2": {}, "x": [[], [{}]], "ints": {3: "a", 10: "b", 2: "c", 1.5: "d", True: "e"}, "none": {None: 1},
           "flat": {"b": 1, "a": "q\"uote", "c": 2.5}}  # fmt: skip
    assert dumps(odd) == json.dumps(odd, indent=1, sort_keys=True)
    with pytest.raises(TypeError, match="set"):
        dumps({"s": {1, 2}})  # what json refuses, refused
    encode, encode_flat = writer(lambda o: sorted(o))  # and converted by a `default`, as json's
    assert encode({"s": {2, 1}}) == json.dumps({"s": {2, 1}}, indent=1, sort_keys=True, default=sorted)
    assert encode_flat({"b": 1, "a": math.pi}, "\n ") == encode({"b": 1, "a": math.pi}, "\n ")


@pytest.mark.parametrize("name, dd", [("planar16_d3", None), ("grid25_cz", "xy4")])
def test_program_json_is_json_dumps_of_its_document(name, dd):
    program = compile_program(load_device(ROOT / "device_configs" / f"{name}.yaml"), 3, dd=dd).program
    text = program.to_json()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"

"""Random mutations of a valid device file give messages, never a stack trace."""

import copy
import math
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctrl.device import validate_text

HERE = Path(__file__).resolve().parent
TEXT = (HERE / "minimal.yaml").read_text()
DATA = yaml.safe_load(TEXT)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LOCATED = re.compile(r"^fuzz\.yaml(:\d+:\d+)?: ")


def _paths(x, prefix=()):
    yield prefix
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(DATA) if p]

values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["Q0", "Q3", "Q9", "zcu216", "cz", "ecr", "drag", "const", "coupler", "1e-6", "5.0e9", ""]),
    st.lists(st.integers(-3, 20), max_size=3), st.dictionaries(st.sampled_from(["a", "gen", "shape"]), st.integers(0, 20), max_size=2),
)
mutation = st.tuples(
    st.sampled_from(["delete", "replace", "scale", "duplicate", "extra_key", "rename"]),
    st.integers(0, len(PATHS) - 1),
    values,
    st.sampled_from([1e-9, 1e-6, 1e-3, 1e3, 1e6, 1e9, -1.0, 0.0, 1.000001]),
)


def _mutate(data, kind, path, value, factor):
    *head, last = path
    parent = data
    for k in head:
        parent = parent[k]
    if kind == "delete":
        del parent[last]
    elif kind == "replace":
        parent[last] = value
    elif kind == "scale":
        v = parent[last]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            parent[last] = v * factor
    elif kind == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif kind == "extra_key" and isinstance(parent[last], dict):
        parent[last]["bogus_field"] = value
    elif kind == "rename" and isinstance(parent, dict):
        parent[str(value)] = parent.pop(last)


def _check(messages):
    assert isinstance(messages, list)
    for m in messages:
        assert isinstance(m, str) and LOCATED.match(m) and "Traceback" not in m, m


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=3))
def test_data_mutations_never_raise(mutations):
    data = copy.deepcopy(DATA)
    for kind, i, value, factor in mutations:
        try:
            _mutate(data, kind, PATHS[i], value, factor)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or changed what this one pointed at
    _check(validate_text(yaml.dump(data, Dumper=DUMPER, sort_keys=False), "fuzz.yaml", HERE))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(TEXT)), st.integers(0, 40), st.text(alphabet=" \t\n:-[]{}#&*!|>'\"%@`,?0123456789.eQ", max_size=6))
def test_text_mutations_never_raise(pos, cut, insert):
    _check(validate_text(TEXT[:pos] + insert + TEXT[pos + cut:], "fuzz.yaml", HERE))

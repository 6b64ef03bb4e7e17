"""Fault distance under full post-selection: the fewest faults that pass every protocol check and still
leave an output that the ideal round's minimum-weight decoder gets wrong.

Lower bound by enumeration over the detector error model: fault sets of size s pass the checks exactly
when their protocol-check signatures XOR to zero, so sets are built from signature groups; each passing
set is decoded through the ideal round. Upper bound from Stim's search (which post-selects the ideal
round too, so whatever it finds is a real failure).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import stim

from ctrl.codes.decode import logical_flip_table
from ctrl.sim.lower import IDEAL


@dataclass(frozen=True)
class Fault:
    """One error mechanism: its protocol-check signature, ideal-round syndrome and logical flip."""

    checks: int  # bit mask over protocol detectors
    ideal: int  # bit mask over the ideal round's faces of the proxy's basis
    flip: bool
    p: float  # its probability


def faults(circuit: stim.Circuit, proxy: str, n_faces: int) -> list[Fault]:
    """Mechanisms of the circuit's detector error model, split into protocol checks and ideal round.

    The ideal round has n_faces X detectors then n_faces Z; a proxy-X logical is read by the X faces.
    """
    return [f for _, f in mechanisms(circuit, proxy, n_faces)]


def mechanisms(circuit: stim.Circuit, proxy: str, n_faces: int) -> list[tuple[frozenset, Fault]]:
    """(symptom, fault) per mechanism of `faults`, in its order: the symptom is the set of detectors and
    observables the mechanism flips, what `ctrl.emulate.budget` matches mechanisms by across noise settings
    (the same circuit with fewer sources on has a subset of them)."""
    tags = [inst.tag for inst in circuit.flattened() if inst.name == "DETECTOR"]
    protocol = {d: i for i, d in enumerate(d for d, t in enumerate(tags) if t != IDEAL)}
    ideal_ids = [d for d, t in enumerate(tags) if t == IDEAL]
    offset = 0 if proxy == "X" else n_faces
    ideal = {d: i for i, d in enumerate(ideal_ids[offset : offset + n_faces])}
    out = []
    dem = circuit.detector_error_model(decompose_errors=False, approximate_disjoint_errors=True)
    for inst in dem.flattened():
        if inst.type != "error" or inst.args_copy()[0] == 0:
            continue
        checks = syn = 0
        flip = False
        key = []
        for t in inst.targets_copy():
            if t.is_relative_detector_id():
                key.append(("D", t.val))
                if t.val in protocol:
                    checks ^= 1 << protocol[t.val]
                elif t.val in ideal:
                    syn ^= 1 << ideal[t.val]
            elif t.is_logical_observable_id():
                key.append(("L", t.val))
                flip = not flip
        out.append((frozenset(key), Fault(checks, syn, flip, inst.args_copy()[0])))
    return out


def undetected_failures(mechanisms: list[Fault], distance: int, size: int) -> list[tuple[int, ...]]:
    """Every set of `size` mechanisms (indices) that passes all checks and is decoded wrongly."""
    table = logical_flip_table(distance)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, m in enumerate(mechanisms):
        groups[m.checks].append(i)

    def wrong(idx: tuple[int, ...]) -> bool:
        syn = 0
        flip = False
        for i in idx:
            syn ^= mechanisms[i].ideal
            flip ^= mechanisms[i].flip
        return bool(table[syn]) != flip

    bad = []
    if size == 1:
        bad = [(i,) for i in groups.get(0, []) if wrong((i,))]
    elif size == 2:
        for members in groups.values():
            bad += [pair for pair in itertools.combinations(members, 2) if wrong(pair)]
    elif size == 3:
        keys = list(groups)
        for a, b in itertools.combinations_with_replacement(keys, 2):
            c = a ^ b
            if c not in groups or c < b:
                continue
            for i in groups[a]:
                for j in groups[b]:
                    for k in groups[c]:
                        idx = (i, j, k)
                        if len(set(idx)) == 3 and i < j < k and wrong(idx):
                            bad.append(idx)
    else:
        raise ValueError("enumeration supports sets of at most 3 faults")
    return bad


def fault_distance(circuit: stim.Circuit, proxy: str, distance: int, n_faces: int) -> int:
    """Exact fault distance when it is at most 3; beyond that, Stim's upper bound."""
    mechanisms = faults(circuit, proxy, n_faces)
    for size in (1, 2, 3):
        if undetected_failures(mechanisms, distance, size):
            return size
    return len(
        circuit.search_for_undetectable_logical_errors(
            dont_explore_detection_event_sets_with_size_above=6,
            dont_explore_edges_with_degree_above=9999,
            dont_explore_edges_increasing_symptom_degree=False,
        )
    )


def leading_order(circuit: stim.Circuit, proxy: str, distance: int, n_faces: int) -> tuple[float, float]:
    """(acceptance, logical error per accepted state) to leading order from the error model, no sampling.

    Acceptance: the probability that no mechanism with a protocol-check signature fires. Logical error:
    the probability, given acceptance, of the undetected failing sets of the smallest size that has any.
    Good where those sets are rare (the figure well below 1); it ranks placements in milliseconds.
    """
    mechanisms = faults(circuit, proxy, n_faces)
    return _leading_order(mechanisms, smallest_failures(mechanisms, distance)[1])


def design_score(circuit, p: float = 1e-3) -> tuple[float, float] | None:
    """(leading-order logical error, both proxies summed; acceptance) under uniform:p, or None when some
    set of at most (d-1)/2 faults passes every check and is decoded wrongly. The leading order counts only
    the smallest failing sets, so without that guard a fault-distance-1 design would look excellent."""
    from ctrl.noise.models import UniformNoise
    from ctrl.sim.lower import to_stim

    d = circuit.distance
    total = 0.0
    acceptance = 1.0
    for proxy in "XZ":
        mechanisms = faults(to_stim(circuit, proxy, UniformNoise(p)), proxy, len(circuit.code.faces))
        size, bad = smallest_failures(mechanisms, d)
        if size is not None and size < (d + 1) // 2:
            return None
        acc, p_l = _leading_order(mechanisms, bad)
        total += p_l
        acceptance = acc if proxy == "X" else acceptance
    return total, acceptance


def smallest_failures(mechanisms: list[Fault], distance: int) -> tuple[int | None, list[tuple[int, ...]]]:
    """The smallest size (up to 3) that has undetected failing sets, and those sets; (None, []) if none."""
    for size in (1, 2, 3):
        bad = undetected_failures(mechanisms, distance, size)
        if bad:
            return size, bad
    return None, []


def _leading_order(mechanisms: list[Fault], bad: list[tuple[int, ...]]) -> tuple[float, float]:
    """(acceptance, logical error per accepted state). Given acceptance, the faults that fire checks all
    stayed silent, except those of the failing set itself: P(set | accepted) = product over the set of
    p / (1 - p) for a checked fault, p for an unchecked one. (Dividing the sets' plain probability by the
    acceptance counts the acceptance twice: 5.6x too high at d=5, p = 1e-3, and above 1 at high p.)"""
    acceptance = 1.0
    for m in mechanisms:
        if m.checks:
            acceptance *= 1 - m.p
    return acceptance, sum(set_weight(mechanisms, idx) for idx in bad)


def set_weight(mechanisms: list[Fault], idx: tuple[int, ...]) -> float:
    """P(the set `idx` fired | accepted), as `_leading_order` says why."""
    w = 1.0
    for i in idx:
        m = mechanisms[i]
        w *= m.p / (1 - m.p) if m.checks else m.p
    return w

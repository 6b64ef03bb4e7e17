"""Resource checks of a board plan against its firmware, before qick compiles anything.

Each failure is a CtrlError naming the limit (and the firmware field it comes from), the board and the
operation that crossed it. Program memory is counted by the emitter as it writes instructions (it knows
the words each item takes) and checked through `Words`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ctrl.backends.qick.boardplan import BoardPlan, Capture, Configure, Decision, Envelope, Flip, Play, Trigger
from ctrl.errors import CtrlError

MIN_CYCLES = 3  # shortest waveform a generator plays, fabric cycles (qick refuses fewer)
MAX_CYCLES = 2**16  # longest envelope or const waveform of a standard generator, fabric cycles


@dataclass
class Usage:
    """What a board program uses of its firmware; filled by `check_plan` and the emitter."""

    pmem_words: int = 0
    pmem_size: int = 0
    wmem_words: int = 0
    wmem_size: int = 0
    envelope_samples: dict = field(default_factory=dict)  # gen -> (used, maxlen)
    registers: int = 0
    dreg_qty: int = 0
    waveform_plays: int = 0
    triggers: int = 0

    def as_dict(self) -> dict:
        return {
            "pmem_words": self.pmem_words, "pmem_size": self.pmem_size,
            "wmem_words": self.wmem_words, "wmem_size": self.wmem_size,
            "envelope_samples": {str(g): {"used": u, "maxlen": m}
                                 for g, (u, m) in sorted(self.envelope_samples.items())},
            "registers": self.registers, "dreg_qty": self.dreg_qty,
            "waveform_plays": self.waveform_plays, "triggers": self.triggers,
        }  # fmt: skip


def all_items(plan: BoardPlan):
    """Every item of a plan, in text order: reset, attempt, abort blocks."""
    yield from plan.reset.items
    yield from plan.attempt.items
    for k in sorted(plan.aborts):
        yield from plan.aborts[k].items


def plays(plan: BoardPlan):
    for it in all_items(plan):
        if isinstance(it, Play):
            yield it
        elif isinstance(it, Flip):
            yield it.play


def wave_key(fw: dict, p: Play) -> tuple:
    """Two plays with equal keys share one waveform-memory word (qick's own quantization)."""
    if p.style == "mux":
        return (p.gen, "mux", p.tones, p.cycles)
    return pulse_key(fw["gens"][p.gen], p.gen, p.style, p.envelope, p.freq_hz, p.phase_deg, p.gain, p.cycles,
                     p.outsel, p.ro)  # fmt: skip


def pulse_key(g: dict, gen: int, style: str, envelope, freq_hz: float, phase_deg: float, gain: float, cycles: int,
              outsel: str, ro: int) -> tuple:  # fmt: skip
    """wave_key of a pulse (not a mux one) from its fields; `g` is its generator's firmware description."""
    phase = int(round(phase_deg * 2 ** g["b_phase"] / 360)) % 2 ** g["b_phase"]
    scale = g["maxv"] * (g.get("maxv_scale", 1.0) if style == "const" else 1.0)
    return (gen, style, envelope, freq_hz, phase, int(math.trunc(gain * scale)), cycles, outsel, ro)


def check_plan(plan: BoardPlan, fw: dict) -> Usage:
    tp = fw["tprocs"][0]
    b = plan.board
    usage = Usage(pmem_size=int(tp["pmem_size"]), wmem_size=int(tp["wmem_size"]), dreg_qty=int(tp.get("dreg_qty", 16)))
    clk = plan.clock_hz
    envelopes: dict[Envelope, str] = {}
    waves: set = set()
    n_waves = len(plan.configs)
    if n_waves > usage.wmem_size:
        raise CtrlError(f"board {b}: waveform memory: {n_waves} readout configurations exceed wmem_size "
                        f"{usage.wmem_size}")
    for p in plays(plan):
        g = fw["gens"][p.gen]
        kind = "mux" if p.style == "mux" else p.style
        top = 2**32 if kind == "mux" else MAX_CYCLES
        if p.cycles < MIN_CYCLES:
            raise CtrlError(
                f"board {b} gen {p.gen}: minimum pulse length: {p.what} plays {p.cycles} fabric cycles "
                f"({p.cycles / g['f_fabric']:.4g} us), less than {MIN_CYCLES}"
            )
        if p.cycles >= top:
            raise CtrlError(f"board {b} gen {p.gen}: maximum pulse length: {p.what} plays {p.cycles} fabric cycles, "
                            f"at least {top}")  # fmt: skip
        end = p.t + math.ceil(p.cycles * clk / (g["f_fabric"] * 1e6) - 1e-9)
        if end > p.end_limit:
            raise CtrlError(
                f"board {b} gen {p.gen}: clock-grid alignment: {p.what}: a waveform of {p.cycles} fabric cycles from "
                f"timing cycle {p.t} ends at {end}, after its slot ends at {p.end_limit}"
            )
        if kind == "mux":
            if max(p.tones, default=0) >= g.get("n_tones", 0):
                raise CtrlError(f"board {b} gen {p.gen}: tone count: {p.what} uses tones {p.tones} of "
                                f"{g.get('n_tones')}")
        if p.envelope is not None and p.envelope not in envelopes:
            envelopes[p.envelope] = p.what
            used, maxlen = usage.envelope_samples.get(p.gen, (0, int(g.get("maxlen", 0))))
            used += p.envelope.samples
            usage.envelope_samples[p.gen] = (used, maxlen)
            if used > maxlen:
                raise CtrlError(
                    f"board {b} gen {p.gen}: envelope memory: {p.what} needs a {p.envelope.shape} envelope of "
                    f"{p.envelope.samples} samples; {used} samples exceed maxlen {maxlen}"
                )
        key = wave_key(fw, p)
        if key not in waves:
            waves.add(key)
            n_waves += 1
            if n_waves > usage.wmem_size:
                raise CtrlError(
                    f"board {b}: waveform memory: {p.what} needs waveform {n_waves}, more than wmem_size "
                    f"{usage.wmem_size}"
                )
        usage.waveform_plays += 1
    for ro, decl in plan.readouts.items():
        r = fw["readouts"][ro]
        if not MIN_CYCLES <= decl.cycles < MAX_CYCLES:
            raise CtrlError(
                f"board {b} ro {ro}: readout window of {decl.cycles} output cycles is outside [{MIN_CYCLES}, "
                f"{MAX_CYCLES}) (f_output {r['f_output']} MHz)"
            )
    for it in all_items(plan):
        if isinstance(it, Trigger):
            usage.triggers += 1
        elif isinstance(it, (Capture, Decision, Flip, Configure)):
            pass
    usage.wmem_words = n_waves
    usage.registers = plan.registers + 1
    return usage

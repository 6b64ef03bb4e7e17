"""An offline interpreter of tProc v2 programs: what a board would play, when, on every path.

    trace = interpret(dump, soccfg, read)

- `dump`: the program as `QickProgramV2.dump_prog()` gives it (the JSON ctrl writes as qick_<board>.json,
  decoded): its assembly list (`prog_list`, `labels`), waveform memory (`waves`), envelopes, declared
  generators (`gen_chs`, for mixer and mux tone frequencies) and readouts (`ro_chs`, for window lengths).
  Or what a board receives: machine code `pmem` and `wmem` (qick's `binprog` words, decoded by
  `decode.py`) with `ro_chs` ({ro: {"length": readout cycles}}, as config_avg sets them) and optionally
  `gen_chs` ({gen: {"mixer_freq": {"rounded": MHz}}}) and `envelopes` (for names).
- `soccfg`: the firmware description (a dict, e.g. firmware_<board>.json): port numbers, clocks, widths.
- `read(ro, t) -> float`: the accumulated I the tProc sees when it reads readout `ro`'s input port, where
  `t` is the timing-clock cycle at which that window was triggered. Called once per window read (the value
  is remembered); Q reads as 0.

The result is a `Trace`: `Event`s in time order, `t` in timing-clock cycles (f_time) from program start.

| kind    | t                                   | channel         | other fields                                 |
|---------|-------------------------------------|-----------------|----------------------------------------------|
| pulse   | start on the generator              | generator       | length (timing cycles, rounded up),          |
|         |                                     |                 | freq_hz, phase_deg, gain, envelope (name),   |
|         |                                     |                 | outsel, tones (mux)                          |
| trigger | window start                        | readout         | length (window, timing cycles, rounded up)   |
| config  | when the readout takes it           | readout         | freq_hz, phase_deg (dynamic readouts)        |
| read    | tProc execution time                | readout         | value (I), source (trigger time of the window) |
| branch  | tProc execution time                | program address | value (1 taken, 0 not), source (target address) |
| dmem    | tProc execution time                | dmem address    | value                                        |
| end     | tProc execution time                | -1              |                                              |

Timed events also carry `scheduled` (reference time + the instruction's time), `issued` (execution time of
the instruction) and `late` (cycles by which the tProc issued it after its own timestamp; a real board
plays it late by that much, and so does the trace).

Execution model (tProc v2 rev 21-27, as qick programs it): one instruction per core clock (f_core);
`WAIT` holds execution until `s11` (time since the reference) reaches its target minus qick's offset of
10 cycles; timed instructions queue per output port (`fifo_depth` deep; a full queue stalls the tProc),
each port takes one write per timing cycle, a generator plays its waveforms one after another; a
readout's value reaches its tProc input port `input_delay_s` (default `BOARD_INPUT_DELAY_S`, 50 ns)
after its window ends. Reading a port before
any window on it has arrived is an error (CtrlError), as is an unsupported instruction or running past
`max_steps` instructions. Not modelled: the analog latencies of generators and readouts (equal offsets on
every path), DDR4/MR buffers, time taggers, qnet/qcom, ARITH/DIV.
"""

from __future__ import annotations

from typing import Callable

from ctrl.backends.qick.tproc import Machine
from ctrl.backends.qick.trace import Trace

# The model board's latency from a window's end to its value at the tProc input. No published figure
# exists; labs read after qick's wait_auto(0.1), which releases 10 cycles early (about 77 ns after the
# window). The emitter assumes more (plan.INPUT_DELAY_S = 0.1 us), so its programs pass with room.
BOARD_INPUT_DELAY_S = 0.05e-6


def interpret(
    dump: dict,
    soccfg: dict,
    read: Callable[[int, int], float],
    *,
    max_steps: int = 2_000_000,
    input_delay_s: float = BOARD_INPUT_DELAY_S,
) -> Trace:
    """Run the program of `dump` on a model of the board `soccfg`; see the module docstring."""
    return Machine(dump, soccfg, read, input_delay_s).run(max_steps)

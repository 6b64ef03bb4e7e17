"""The latency budget of each decision point on the target controller, in controller clock cycles.

A decision point branches once its last readout window has closed and the result has crossed to the
processor: window end + readout-to-decision latency (the device file's `controller` section; QICK labs
use about 0.1 us of accumulation and transfer, `wait_auto`, plus about 0.3 us before branching,
`delay_auto`). The scheduler places every decision point no earlier than that, and nothing that depends
on the branch (the abort path) starts before it.
"""

from __future__ import annotations

from ctrl.compile.timed import TimedProgram


def latency_budget(
    program: TimedProgram, readout_to_decision_s: float, ready: dict[str, int] | None = None
) -> list[dict]:
    """`ready`: each measurement's result cycle by key, if the caller has it already (the compiler does)."""
    if ready is None:
        ready = {t.op.key: t.ready for t in program.ops if t.op.key}
    keys = {n: m for n, _, m in program.checks}
    latency = int(round(readout_to_decision_s * program.clock_hz))
    out = []
    for d in program.decisions:
        window_end = max(ready[k] for n in d.checks for k in keys[n])
        out.append(
            {
                "point": d.index,
                "checks": len(d.checks),
                "window_end_cycle": window_end,
                "readout_to_decision_cycles": latency,
                "decision_cycle": d.time,
                "slack_cycles": d.time - window_end - latency,
                "realtime": d.realtime,
            }
        )
    return out

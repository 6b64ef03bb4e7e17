"""The latency budget of each decision point on the target controller, in controller clock cycles.

A decision point branches once its last readout window has closed and the result has crossed to the
processor: window end + readout-to-decision latency (the device file's `controller` section; QICK labs
use about 0.1 us of accumulation and transfer, `wait_auto`, plus about 0.3 us before branching,
`delay_auto`). The scheduler places every decision point no earlier than that, and nothing that depends
on the branch (the abort path) starts before it.
"""

from __future__ import annotations

from ctrl.realtime.decision import DecisionProgram


def latency_budget(program: DecisionProgram) -> list[dict]:
    """`program` in clock cycles, as the compiler builds it: a rule's `ready` is its last window's end."""
    out = []
    for d in program.points:
        window_end = max(r.ready for r in program.rules_of(d))
        out.append(
            {
                "point": d.index,
                "checks": len(d.rules),
                "window_end_cycle": window_end,
                "readout_to_decision_cycles": program.latency,
                "decision_cycle": d.time,
                "slack_cycles": d.time - window_end - program.latency,
                "realtime": d.realtime,
            }
        )
    return out

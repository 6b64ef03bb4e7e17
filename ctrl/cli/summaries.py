"""The text summaries of sampled results that the commands print (simulate, emulate, dry-run, run)."""

from __future__ import annotations


def _per_accepted(r: dict) -> str:
    """Logical error per accepted state with its interval, or why it is undefined."""
    if r.get("logical_error_rate") is None:
        return "undefined (nothing accepted)"
    elo, ehi = r["logical_error_rate_ci95"]
    return f"{r['logical_error_rate']:.3g}  95% CI [{elo:.3g}, {ehi:.3g}]"


def _us(seconds: float | None) -> str:
    return "none aborted" if seconds is None else f"{seconds * 1e6:.2f} us"


def _emulation_summary(r: dict) -> str:
    lo, hi = r["acceptance_ci95"]
    per_state = ("undefined (nothing accepted)" if r["time_per_accepted_state_s"] is None else
                 f"{r['expected_attempts_per_accepted_state']:.3g}, time per accepted state "
                 f"{r['time_per_accepted_state_s'] * 1e3:.3g} ms")  # fmt: skip
    return "\n".join(
        [
            f"{r['device']}: CN20 d={r['distance']}, noise {r['noise']}, {r['shots']} shots per proxy, seed {r['seed']}",
            f"  acceptance                 {r['acceptance']:.4g}  95% CI [{lo:.4g}, {hi:.4g}]",
            f"  logical error per accepted {_per_accepted(r)}  ({r['logical_errors']} errors, Z-type + X-type)",
            f"  attempt {r['attempt_s'] * 1e6:.2f} us after a {r['reset_s'] * 1e6:.2f} us reset; mean slot "
            f"{r['mean_attempt_s'] * 1e6:.2f} us (aborted: {_us(r['mean_aborted_attempt_s'])}, "
            f"{r['aborted_in_real_time']} aborts in real time)",
            f"  expected attempts per accepted state {per_state}",
            "  discards by check kind: " + ", ".join(f"{k} {v}" for k, v in r["discards_by_kind"].items()),
            f"  calibration {r['provenance']['calibration_hash'][:23]}..., program {r['provenance']['program_hash'][:23]}...",
        ]
    )


def _human(r: dict) -> str:
    # the statevector method counts probability, not shots: 116.44 accepted is acceptance x shots, and
    # reading it as a count of attempts would be wrong, so the summary says so
    weighted = ", weighted" if r["method"] == "statevector" else ""
    lines = [
        f"CN20 d={r['distance']} {r['noise']} method={r['method']} shots={r['shots']}",
        f"  acceptance          {r['acceptance']:.4f}  95% CI [{r['acceptance_ci95'][0]:.4f}, "
        f"{r['acceptance_ci95'][1]:.4f}]  ({r['accepted']} accepted{weighted})",
        f"  logical error rate  {_per_accepted(r)}  ({r['logical_errors']} errors{weighted})",
    ]
    if weighted:
        lines.append("  (weighted: exact probabilities times shots, not counts of sampled attempts)")
    for name, c in r.get("components", {}).items():
        rate = "undefined" if c["logical_error_rate"] is None else f"{c['logical_error_rate']:.3e}"
        lines.append(f"    {name:28s} {rate} ({c['logical_errors']} / {c['accepted']})")
    lines.append("  discards by first failing check: " + ", ".join(f"{k} {v}" for k, v in r["discards"].items()))
    return "\n".join(lines)

"""The broken-file corpus: each case is minimal.yaml with one mistake, the message fragments that
`ctrl validate` must print for it, and the text whose line the first matching message must point at.

`python tests/device/corpus.py` rewrites tests/device/broken/*.yaml; test_device_corpus.py checks that
the files on disk are what this script writes, and that each gives its message at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = (HERE / "minimal.yaml").read_text()
BROKEN = HERE / "broken"
FIRMWARE_LINE = "firmware: ../../device_configs/firmware/"


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    edits: tuple  # (old, new): old must occur exactly once in the text so far
    expect: tuple  # fragments; all must occur in one message
    at: str | None = None  # that message's line is the first line containing this text ("" = no line)
    text: str | None = None  # the whole file, instead of edits


def _block(start: str, end: str) -> str:
    """The text of minimal.yaml from `start` up to (not including) `end`."""
    i = BASE.index(start)
    return BASE[i: BASE.index(end, i)]


ECR_BLOCK = _block("    - qubits: [Q1, Q2]\n      gate: ecr", "    - qubits: [Q2, Q3]\n      gate: sqrt_iswap")
Q2_WIRING = _block("    - name: Q2\n      drive", "    - name: Q3\n      drive")
COUPLER_WIRING = _block("  couplers:\n    - qubits: [Q0, Q1]\n      flux", "\ncalibration:")

CASES = [
    # --- YAML
    Case("yaml_malformed", "an indentation error", (("      t1_s: 1.2e-04\n", "     t1_s: 1.2e-04\n"),),
         ("YAML syntax error",), at="     t1_s: 1.2e-04"),
    Case("yaml_duplicate_key", "the same key twice in one mapping",
         (("      t1_s: 1.2e-04\n", "      t1_s: 1.2e-04\n      t1_s: 1.3e-04\n"),),
         ("calibration.qubits[0].t1_s", "duplicate key 't1_s'"), at="      t1_s: 1.3e-04"),
    Case("yaml_empty", "an empty file", (), ("the file is empty",), at="", text="# nothing here\n"),
    Case("yaml_top_level_list", "a list instead of a mapping", (), ("expected a mapping with schema_version",),
         at="- name: Q0", text="- name: Q0\n- name: Q1\n"),
    Case("yaml_exponent_as_text", "1e-4: YAML 1.1 reads it as a string",
         (("      t1_s: 6.0e-05\n", "      t1_s: 6e-5\n"),),
         ("calibration.qubits[3].t1_s", "YAML reads 6e-5 as text", "write 6.0e-05"), at="      t1_s: 6e-5"),
    # --- schema version
    Case("version_missing", "no schema_version", (("schema_version: 3\n", ""),),
         ("missing field 'schema_version'",), at="name: minimal4"),
    Case("version_future", "a newer schema_version", (("schema_version: 3\n", "schema_version: 4\n"),),
         ("schema_version: version 4 is newer than this ctrl reads",), at="schema_version: 4"),
    # --- structure and types
    Case("missing_field", "a readout without its error", (("        error_0to1: 0.007\n", ""),),
         ("calibration.qubits[1].readout: missing field 'error_0to1'", "a probability"), at="        frequency_hz: 7.05"),
    Case("unknown_t1", "a usable qubit without T1", (("      t1_s: 1.1e-04\n", ""),),
         ("calibration.qubits[1].t1_s", "T1 is unknown", "usable: false"), at="    - name: Q1\n      position"),
    Case("missing_section", "no calibration section", (("calibration:\n  calibrated_at", "calibratoin:\n  calibrated_at"),),
         ("unknown field 'calibratoin' (did you mean 'calibration'?)",), at="calibratoin:"),
    Case("unknown_key", "t1_us instead of t1_s", (("      t1_s: 1.2e-04\n", "      t1_us: 120.0\n"),),
         ("calibration.qubits[0].t1_us: unknown field 't1_us' (did you mean 't1_s'?)",), at="      t1_us: 120.0"),
    Case("wrong_type_text", "a word where a number belongs", (("      t1_s: 1.3e-04\n", "      t1_s: long\n"),),
         ("calibration.qubits[2].t1_s", "expected a coherence time in seconds", "got the text 'long'"),
         at="      t1_s: long"),
    Case("wrong_type_gen", "a channel index as a string", (("      drive: {board: zcu216, gen: 7}", "      drive: {board: zcu216, gen: \"7\"}"),),
         ("wiring.qubits[2].drive.gen", "expected an integer (index into the firmware's `gens` list)", "got the text '7'"), at="gen: \"7\""),
    Case("nan_value", "NaN", (("      t2_echo_s: 1.2e-04\n", "      t2_echo_s: .nan\n"),),
         ("calibration.qubits[2].t2_echo_s", "expected a finite number"), at="t2_echo_s: .nan"),
    Case("unknown_gate", "a gate type that does not exist", (("      gate: cz\n", "      gate: cnot\n"),),
         ("calibration.couplers[0].gate", "gate must be one of: cz, rzz, iswap, sqrt_iswap, fsim, cr, ecr", "'cnot'"),
         at="gate: cnot"),
    Case("unknown_pulse_shape", "a pulse shape that does not exist",
         (("pulse: {shape: drag, amplitude: 0.11,", "pulse: {shape: gauss, amplitude: 0.11,"),),
         ("calibration.qubits[2].x90.pulse.shape", "shape must be one of: const, gaussian, drag, flat_top, net_zero"),
         at="shape: gauss"),
    # --- units and ranges
    Case("t1_in_us", "T1 written in microseconds", (("      t1_s: 1.2e-04\n", "      t1_s: 120\n"),),
         ("calibration.qubits[0].t1_s", "120 is not a plausible value", "in seconds", "if that is 120 us, write 1.2e-04"),
         at="      t1_s: 120"),
    Case("duration_in_ns", "a gate duration written in ns", (("        duration_s: 3.4e-08\n        error: 2.7e-04", "        duration_s: 34\n        error: 2.7e-04"),),
         ("calibration.qubits[2].x90.duration_s", "single-qubit gate duration in seconds", "if that is 34 ns, write 3.4e-08"),
         at="        duration_s: 34"),
    Case("frequency_in_ghz", "a frequency written in GHz", (("      frequency_hz: 5.12e+09\n", "      frequency_hz: 5.12\n"),),
         ("calibration.qubits[1].frequency_hz", "qubit frequency in hertz", "if that is 5.12 GHz, write 5.12e+09"),
         at="      frequency_hz: 5.12\n"),
    Case("anharmonicity_in_mhz", "an anharmonicity in MHz", (("      anharmonicity_hz: -3.32e+08\n", "      anharmonicity_hz: -332\n"),),
         ("calibration.qubits[2].anharmonicity_hz", "if that is -332 MHz, write -3.32e+08"), at="anharmonicity_hz: -332"),
    Case("latency_in_us", "the decision latency in microseconds",
         (("    readout_to_decision_latency_s: 4.0e-07\n", "    readout_to_decision_latency_s: 0.4\n"),),
         ("wiring.controller.readout_to_decision_latency_s", "if that is 0.4 us, write 4.0e-07"),
         at="readout_to_decision_latency_s: 0.4"),
    Case("negative_t2", "a negative coherence time", (("      t2_echo_s: 9.9e-05\n", "      t2_echo_s: -9.9e-05\n"),),
         ("calibration.qubits[1].t2_echo_s", "-9.9e-05 is not a plausible value", "1e-07..0.1 s"),
         at="t2_echo_s: -9.9e-05"),
    Case("error_in_percent", "an error given in percent", (("        error: 4.8e-04\n", "        error: 1.5\n"),),
         ("calibration.qubits[2].x180.error", "probability", "if that is 1.5 percent, write 0.015"),
         at="        error: 1.5"),
    Case("amplitude_too_large", "an amplitude beyond full scale",
         (("pulse: {shape: drag, amplitude: 0.12,", "pulse: {shape: drag, amplitude: 1.7,"),),
         ("calibration.qubits[0].x90.pulse.amplitude", "fraction of DAC full scale, dimensionless (-1..1)"), at="amplitude: 1.7"),
    Case("phase_in_degrees", "an IQ rotation in degrees", (("        iq_rotation_rad: 2.3\n", "        iq_rotation_rad: 132\n"),),
         ("calibration.qubits[2].readout.iq_rotation_rad", "if that is 132 degrees, write 2.30383"),
         at="iq_rotation_rad: 132"),
    Case("sigma_too_wide", "a Gaussian wider than its pulse",
         (("pulse: {shape: drag, amplitude: 0.13, sigma_s: 8.1e-09", "pulse: {shape: drag, amplitude: 0.13, sigma_s: 2.0e-08"),),
         ("calibration.qubits[1].x90", "sigma_s 2e-08 s is more than half the pulse duration 3.3e-08 s"),
         at="        duration_s: 3.3e-08"),
    Case("cz_phase_off", "a CZ whose conditional phase is not pi", (("      conditional_phase_rad: 3.13\n", "      conditional_phase_rad: 2.2\n"),),
         ("calibration.couplers[0].conditional_phase_rad", "a CZ's conditional phase must be near pi"),
         at="conditional_phase_rad: 2.2"),
    # --- names and the coupling graph
    Case("duplicate_qubit", "two qubits with one name", (("    - name: Q3\n      position", "    - name: Q2\n      position"),),
         ("calibration.qubits[3].name", "duplicate qubit 'Q2' (also calibration.qubits[2])"),
         at="    - name: Q2\n      position: [3.0"),
    Case("dangling_coupler", "a coupler to a qubit that does not exist", (("    - qubits: [Q2, Q3]\n      gate", "    - qubits: [Q2, Q7]\n      gate"),),
         ("calibration.couplers[2].qubits[1]", "coupler Q2-Q7 references unknown qubit 'Q7'"), at="qubits: [Q2, Q7]"),
    Case("self_coupler", "a coupler from a qubit to itself", (("    - qubits: [Q1, Q2]\n      gate", "    - qubits: [Q2, Q2]\n      gate"),),
         ("calibration.couplers[1].qubits", "coupler Q2-Q2 couples a qubit to itself"), at="qubits: [Q2, Q2]"),
    Case("duplicate_coupler", "the same gate twice on a coupler",
         (("    - qubits: [Q2, Q3]\n", "    - {qubits: [Q2, Q1], gate: ecr, control: Q1, duration_s: 4.4e-07, error: 8.0e-03}\n"
                                       "    - qubits: [Q2, Q3]\n"),),
         ("calibration.couplers[2].qubits", "duplicate ecr controlled by Q1 on coupler Q2-Q1 (also calibration.couplers[1])"),
         at="{qubits: [Q2, Q1]"),
    Case("disconnected_graph", "a chip in two pieces", ((ECR_BLOCK, ""),),
         ("calibration.couplers", "the coupling graph is not connected: Q2, Q3 cannot reach Q0"), at="    - qubits: [Q0, Q1]\n      gate"),
    Case("ecr_control_elsewhere", "an ECR whose control is not on the coupler", (("      control: Q1\n", "      control: Q3\n"),),
         ("calibration.couplers[1].control", "control 'Q3' is not one of the coupler's qubits Q1, Q2"), at="control: Q3"),
    Case("exclusion_unknown_coupler", "a crosstalk exclusion naming a missing coupler",
         (("    - couplers: [[Q0, Q1], [Q2, Q3]]", "    - couplers: [[Q0, Q1], [Q0, Q3]]"),),
         ("calibration.crosstalk_exclusions[0].couplers[1]", "names Q0-Q3, which is not a coupler"), at="couplers: [[Q0, Q1], [Q0, Q3]]"),
    Case("frequency_collision", "two coupled qubits 10 MHz apart", (("      frequency_hz: 5.0e+09\n", "      frequency_hz: 5.11e+09\n"),),
         ("calibration.qubits[2].frequency_hz", "frequency collision: Q1 (5.12 GHz) and Q2 (5.11 GHz) are coupled and 10 MHz apart"),
         at="frequency_hz: 5.11e+09"),
    Case("readout_collision", "two resonators on one feedline 4 MHz apart", (("        frequency_hz: 7.05e+09\n", "        frequency_hz: 7.004e+09\n"),),
         ("calibration.qubits[1].readout.frequency_hz", "readout collision: resonators of Q0 and Q1", "4 MHz apart"),
         at="frequency_hz: 7.004e+09"),
    # --- wiring against the firmware
    Case("firmware_missing", "a firmware file that does not exist",
         ((FIRMWARE_LINE + "zcu216_tprocv2_rev21_mux_pfb_fw20240928.json", FIRMWARE_LINE + "zcu216_nope.json"),),
         ("wiring.boards[0].firmware", "firmware '../../../device_configs/firmware/zcu216_nope.json': cannot read it"),
         at="{name: zcu216, firmware:"),
    Case("unknown_board", "a channel on a board that is not declared", (("      drive: {board: zcu216, gen: 8}", "      drive: {board: zcu111, gen: 8}"),),
         ("wiring.qubits[3].drive.board", "unknown board 'zcu111' (wiring.boards has: zcu216)"), at="board: zcu111"),
    Case("gen_not_in_firmware", "generator 16 on a 16-generator board", (("      drive: {board: zcu216, gen: 7}", "      drive: {board: zcu216, gen: 16}"),),
         ("wiring.qubits[2].drive.gen", "generator 16 does not exist on board zcu216", "has gens 0..15"), at="gen: 16"),
    Case("ro_not_in_firmware", "readout 12 on a 10-readout board", (("tone: 2, ro: 4,", "tone: 2, ro: 12,"),),
         ("wiring.qubits[2].readout.ro", "readout channel 12 does not exist on board zcu216", "has readouts 0..9"), at="ro: 12"),
    Case("drive_on_mux_gen", "a drive on the 8-tone mux generator", (("      drive: {board: zcu216, gen: 6}", "      drive: {board: zcu216, gen: 4}"),),
         ("wiring.qubits[1].drive.gen", "axis_sg_mixmux8_v1", "plays 8 constant tones and no shaped envelopes"),
         at="drive: {board: zcu216, gen: 4}"),
    Case("tone_out_of_range", "tone 8 of an 8-tone generator", (("tone: 2, ro: 4,", "tone: 8, ro: 4,"),),
         ("wiring.qubits[2].readout.tone", "tone 8 does not exist", "has 8 tones (0..7)"), at="tone: 8"),
    Case("tone_missing", "a mux readout without its tone", (("gen: 4, tone: 1, ro: 3,", "gen: 4, ro: 3,"),),
         ("wiring.qubits[1].readout.gen", "is multiplexed with 8 tones: give the tone"), at="gen: 4, ro: 3,"),
    Case("tone_twice", "two resonators on one tone", (("tone: 2, ro: 4,", "tone: 1, ro: 4,"),),
         ("wiring.qubits[2].readout.tone", "tone 1 of gen 4 is already used by Q1"), at="tone: 1, ro: 4,"),
    Case("readout_without_tproc", "a real-time readout on a PFB output that does not reach the tProc",
         (("tone: 2, ro: 4,", "tone: 2, ro: 8,"),),
         ("wiring.qubits[2].readout.ro", "tproc_ch -1", "cannot feed real-time decisions", "feedback: false"), at="ro: 8,"),
    Case("pfb_output_shared", "two resonators on one fixed-frequency PFB output", (("tone: 1, ro: 3,", "tone: 1, ro: 2,"),),
         ("wiring.qubits[1].readout.ro", "one frequency per program and cannot read both Q0 and Q1"), at="tone: 1, ro: 2,"),
    Case("gen_two_roles", "one generator as drive and flux line", (("      drive: {board: zcu216, gen: 7}", "      drive: {board: zcu216, gen: 10}"),),
         ("gen 10 on zcu216 feeds one line but is used for", "drive of Q2", "flux of Q0-Q1"), at="      flux: {board: zcu216, gen: 10}"),
    Case("coupler_flux_missing", "a CZ on a tunable coupler without a flux line", ((COUPLER_WIRING, ""),),
         ("calibration.couplers[0].flux_pulse.element", "wiring.couplers has none for Q0-Q1"), at="element: coupler"),
    Case("qubit_flux_missing", "a flux pulse on a qubit without a flux line", (("      flux: {board: zcu216, gen: 9}\n", ""),),
         ("calibration.couplers[2].flux_pulse.element", "wiring.qubits has no flux for Q3"), at="element: Q3"),
    Case("qubit_unwired", "a qubit with no wiring", ((Q2_WIRING, ""),),
         ("wiring.qubits", "qubit Q2 has no wiring entry"), at="    - name: Q0\n      drive"),
    Case("beyond_nyquist", "a drive tone beyond the generator's Nyquist zone 2", (("      frequency_hz: 5.45e+09\n", "      frequency_hz: 6.95e+09\n"),),
         ("wiring.qubits[3].drive", "Q3's drive at 6.95 GHz", "beyond Nyquist zone 2 (< 6.88128 GHz)"),
         at="      drive: {board: zcu216, gen: 8}"),
    Case("mixer_span", "one interpolated generator asked for tones 1.8 GHz apart",
         (("      drive: {board: zcu216, gen: 8}", "      drive: {board: zcu216, gen: 5}"), ("      frequency_hz: 5.45e+09\n", "      frequency_hz: 6.7e+09\n")),
         ("gen 5 on zcu216 (axis_sg_int4_v2) must play tones 1800 MHz apart", "covers only 1720 MHz"),
         at="      drive: {board: zcu216, gen: 5}\n      flux"),
    Case("pulse_too_short", "a 5 ns pulse on a 430 MHz fabric clock",
         (("        duration_s: 3.3e-08\n        error: 2.2e-04\n        pulse: {shape: drag, amplitude: 0.13, sigma_s: 8.1e-09",
           "        duration_s: 5.0e-09\n        error: 2.2e-04\n        pulse: {shape: drag, amplitude: 0.13, sigma_s: 1.0e-09"),),
         ("calibration.qubits[1].x90.duration_s", "shorter than 3 fabric cycles of gen 6", "QICK refuses it"),
         at="duration_s: 5.0e-09"),
    Case("envelope_memory", "a 2 us net-zero flux pulse on a full-speed generator",
         (("      flux: {board: zcu216, gen: 10}", "      flux: {board: zcu216, gen: 1}"),
          ("      duration_s: 8.4e-08\n", "      duration_s: 2.0e-06\n"),
          ("pulse: {shape: flat_top, amplitude: 0.3, rise_s: 1.0e-08}", "pulse: {shape: net_zero, amplitude: 0.3, rise_s: 1.0e-08}")),
         ("calibration.couplers[0].duration_s", "envelopes on gen 1 on zcu216 need 19170 samples but it has 16384"),
         at="      duration_s: 2.0e-06\n      error: 4.0e-03"),
    Case("readout_window_short", "a 40 ns window on a 38.4 MHz PFB output", (("        window_s: 1.0e-06\n        time_of_flight_s: 5.0e-07\n        iq_rotation_rad: 2.3",
                                                                             "        window_s: 4.0e-08\n        time_of_flight_s: 5.0e-07\n        iq_rotation_rad: 2.3"),),
         ("calibration.qubits[2].readout.window_s", "shorter than 3 output cycles of readout 4"), at="window_s: 4.0e-08"),
    Case("shaped_readout_on_mux", "a Gaussian readout pulse on the mux generator",
         (("        pulse: {shape: const, amplitude: 0.2}\n", "        pulse: {shape: gaussian, amplitude: 0.2, sigma_s: 1.0e-07}\n"),),
         ("calibration.qubits[0].readout.pulse.shape", "must be const, not gaussian"), at="shape: gaussian"),
    Case("two_boards_independent", "two boards without a shared reference",
         (("    - {name: zcu216, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n",
           "    - {name: zcu216, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n"
           "    - {name: zcu216_b, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n"),),
         ("wiring.controller.alignment.reference", "2 boards need a shared reference clock"), at="alignment: {reference: independent}"),
    Case("inter_board_link_missing", "a board-to-board latency the firmware cannot provide",
         (("    - {name: zcu216, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n",
           "    - {name: zcu216, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n"
           "    - {name: zcu216_b, firmware: ../../device_configs/firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json}\n"),
          ("    alignment: {reference: independent}\n", "    inter_board_latency_s: 6.0e-07\n    alignment: {reference: shared}\n")),
         ("wiring.controller.inter_board_latency_s", "has neither qnet nor qcom"), at="inter_board_latency_s: 6.0e-07"),
]


def render(case: Case) -> str:
    if case.text is not None:
        body = case.text
    else:
        body = BASE.replace(FIRMWARE_LINE, "firmware: ../" + FIRMWARE_LINE.removeprefix("firmware: "))
        for old, new in case.edits:
            old = old.replace(FIRMWARE_LINE, "firmware: ../" + FIRMWARE_LINE.removeprefix("firmware: "))
            new = new.replace(FIRMWARE_LINE, "firmware: ../" + FIRMWARE_LINE.removeprefix("firmware: "))
            n = body.count(old)
            if n != 1:
                raise ValueError(f"{case.name}: edit target occurs {n} times: {old[:60]!r}")
            body = body.replace(old, new)
        body = re.sub(r"\A(#.*\n)+", "", body)  # drop minimal.yaml's own header
    head = f"# broken: {case.what}\n" + "".join(f"# expect: {e}\n" for e in case.expect)
    return head + body


def line_of(text: str, needle: str) -> int:
    """1-based line where `needle` starts in `text`."""
    return text.count("\n", 0, text.index(needle)) + 1


def main() -> None:
    BROKEN.mkdir(exist_ok=True)
    for old in BROKEN.glob("*.yaml"):
        old.unlink()
    for case in CASES:
        (BROKEN / f"{case.name}.yaml").write_text(render(case))
    print(f"wrote {len(CASES)} files to {BROKEN}")


if __name__ == "__main__":
    main()

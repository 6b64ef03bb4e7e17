"""Pulse-only re-emission (what to patch): the previous QICK programs with a new calibration's pulse parameters, byte for
byte what `emit_qick` writes for the new calibration, without planning, assembling or dumping again.

    programs, why = reemit_qick(previous, new_device, program)   # patched (why None), else emitted anew
    programs = patch_qick(previous, new_device)                 # or NotPatchable(reason)

The contract: `previous` was emitted (by emit_qick, or patched from such) for the same timed program and
wiring, on a calibration that differs from `device`'s only in pulse parameters (ctrl.recompile.diff's
`pulse` class: amplitudes, phases, DRAG, sigma, edges, frequencies, thresholds, IQ rotation, the gates'
virtual-Z corrections; and `metadata` and `quality`, which the programs do not read). The instruction
stream then stands: every time, every jump, every waveform-memory address. What the calibration feeds is
recomputed from the pulses' roles (`Play.role`), with the lowering's own code (`Units.pulse`, the frame
sums in the same order) and qick's own converters:

- each pulse's frequency, phase (its frame: VZ angles and the corrections of CZ/ECR gates), gain and
  envelope; the waveform-memory words they make (freq, phase, env, gain registers), in wmem and in the
  dump's `waves`;
- the envelopes' data (and, when envelopes merge or split, the envelope table: names, addresses, every
  waveform's env register, the envelope-memory figures);
- thresholds: the `TEST s8 - #thr` instructions (program-memory word, dump, asm line);
- generator and readout declarations (mixers, Nyquist zones, mux tones and gains, readout frequencies and
  phases, dynamic readouts' configurations), declared again through qick when any of them changed, and
  then the frequency registers of the generators whose mixer moved.

It refuses (NotPatchable, with the reason; reemit_qick then emits in full and returns the reason) when the
result would not be what emit_qick writes: two pulses that shared a waveform no longer agree or two that
did not now would (the waveform table would change), a pulse changes style, length, generator or readout,
the wiring or firmware differs, or anything the full emission would refuse (it then raises that error).

Here: the contract's checks and each pulse role and frame on the new calibration; `patch_waves.py`:
the waveform registers they give; `patch_board.py`: one board's files rewritten.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from ctrl.backends.qick.emit import QickPrograms, emit_qick, firmware_sha, frame_sums
from ctrl.backends.qick.patch_board import BoardPatch
from ctrl.backends.qick.plan import plan_program
from ctrl.backends.qick.sheet import NotPatchable, QickSheet, role_name
from ctrl.backends.qick.units import Pulse, Units
from ctrl.errors import CtrlError

if TYPE_CHECKING:
    from ctrl.device import Device


def reemit_qick(previous: QickPrograms | None, device: Device, program, firmware=None) -> tuple[QickPrograms, str | None]:
    """`patch_qick`, or on NotPatchable `emit_qick(device, program, ...)` (same attempts): (programs, None)
    when patched, else (programs, why it was emitted anew). `program`: the timed program, or a function
    returning it (called only when needed: a full emission, or a patched program's `plan`)."""
    try:
        if previous is None:
            raise NotPatchable("no previous emission with a sheet")
        return patch_qick(previous, device, program, firmware), None
    except NotPatchable as e:
        attempts = previous.sheet.attempts if previous is not None and previous.sheet is not None else None
        prog = program() if callable(program) else program
        kw = {"attempts": attempts} if attempts is not None else {}
        return emit_qick(device, prog, firmware=firmware, **kw), str(e)


def patch_qick(previous: QickPrograms, device: Device, program=None, firmware=None) -> QickPrograms:
    """The programs `emit_qick(device, program, attempts, firmware)` would give, patched from `previous`
    (see the module docstring for the contract). `program` (or a function giving it) is only needed for
    the patched boards' `plan`. Raises NotPatchable."""
    if callable(program):
        program = _checked(program, device)
    elif program is not None:
        device.target.check_program(program)
    sheet = previous.sheet
    if sheet is None:
        raise NotPatchable("the previous programs carry no sheet")
    if device.wiring_hash != sheet.wiring_hash:
        raise NotPatchable("the wiring differs from the previous emission's")
    firmware = dict(firmware or {})
    if tuple(sorted(b for b in firmware if b in sheet.boards)) != sheet.given_firmware:
        raise NotPatchable("compiled against other firmware descriptions than the previous emission")
    fws, parsed = {}, {}
    for bp in previous.boards:
        if bp.board in firmware:
            if firmware_sha(json.dumps(firmware[bp.board], indent=1, sort_keys=True) + "\n") != sheet.firmware[bp.board]:
                raise NotPatchable(f"board {bp.board}: another firmware description than the previous emission's")
        # boards of one kind share one description; read, never written, so parsed once
        fw = parsed.get(bp.firmware)
        if fw is None:
            fw = parsed[bp.firmware] = json.loads(bp.firmware)
        fws[bp.board] = fw
    units = Units(device.target, sheet.clock_hz, fws)
    pulses, changed = _pulses(sheet, units)
    corrections, frames = _frames(sheet, device.target)
    frames_moved = frames is not sheet.frames
    for q in sheet.readout_users:
        try:
            units.use_readout(q, f"readout of {q}")
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
    boards, new_sheets = [], {}
    for bp in previous.boards:
        nb = BoardPatch(bp, fws[bp.board], units, sheet, pulses, changed, frames, frames_moved).run()
        boards.append(nb)
        new_sheets[bp.board] = nb.sheet
    report = previous.report
    if any(nb.usage != bp.usage for nb, bp in zip(boards, previous.boards)):
        report = json.loads(json.dumps(report))
        for nb in boards:
            report["boards"][nb.board]["usage"] = nb.usage
    new = replace(sheet, pulses=pulses, corrections=corrections, frames=frames, boards=new_sheets, report=report)
    if program is not None:
        get = program if callable(program) else (lambda: program)
        for i, nb in enumerate(boards):
            boards[i] = replace(nb, plan_source=_planner(device, get, sheet.attempts, firmware, nb.board))
    return QickPrograms(tuple(boards), report, new)


def _checked(get_program, device: Device):
    """`get_program`, whose program is checked against the device when it is asked for: a patch calls it
    only for a patched board's plan, and building the timed program may be what a caller saves."""

    def get():
        program = get_program()
        device.target.check_program(program)
        return program

    return get


def _planner(device, get_program, attempts, firmware, board):
    def plan():
        return plan_program(device, get_program(), attempts, firmware)[board]

    return plan


# ------------------------------------------------------------------------------------------ calibration


def _pulses(sheet: QickSheet, units: Units):
    """Every pulse role on the new calibration, and the roles whose values changed."""
    pulses, changed = {}, set()
    for key, old in sheet.pulses.items():
        try:
            new = units.pulse(key)
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
        if new == old:
            pulses[key] = old  # the same objects: comparisons of keys holding them stop at identity
            continue
        env = new.envelope
        if env is not None and env is not old.envelope and env == old.envelope:
            new = Pulse(new.board, new.gen, new.style, old.envelope, *new[4:])
        pulses[key] = new
        if (new.board, new.gen, new.style, new.cycles, new.outsel, new.ro, new.frame, new.phase[0]) != (
                old.board, old.gen, old.style, old.cycles, old.outsel, old.ro, old.frame, old.phase[0]):  # fmt: skip
            raise NotPatchable(f"{role_name(key)}: its style, length, channel or readout changed ({old.style} "
                               f"{old.cycles} cycles -> {new.style} {new.cycles} cycles)")  # fmt: skip
        if (env is None) != (old.envelope is None) or (env is not None and env.samples != old.envelope.samples):
            raise NotPatchable(f"{role_name(key)}: its envelope length changed")
        if not 0 <= new.gain <= 1.0 + 1e-9:
            raise NotPatchable(f"{role_name(key)}: gain {new.gain:.4g} is outside [0, 1] of full scale")
        changed.add(key)
    return pulses, changed


def _frames(sheet: QickSheet, target):
    """The gates' corrections on the new calibration (in the form natives gives a CZ) and the frame sums
    (the previous ones, the same object, when no correction changed)."""
    out, moved = {}, False
    for (a, b), old in sheet.corrections.items():
        try:
            new = target.gate(a, b).virtual_z_rad
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
        if tuple(k for k, _ in new) != tuple(k for k, _ in old):
            raise NotPatchable(f"coupler {a}-{b}: its phase corrections name other qubits")
        out[(a, b)] = new
        moved = moved or new != old
    if not moved:
        return sheet.corrections, sheet.frames
    return out, frame_sums(sheet.tape, out)

"""tProc v2 assembly operands as qick writes them: register names, literals, 32-bit values."""

from __future__ import annotations

import re

from ctrl.errors import CtrlError

SREG_NAMES = {
    "s_zero": 0, "zero": 0, "s_rand": 1, "s_cfg": 2, "s_ctrl": 2, "s_arith_l": 3, "s_div_q": 4, "s_div_r": 5,
    "s_core_r1": 6, "s_core_r2": 7, "s_port_l": 8, "s_port_h": 9, "s_status": 10, "s_usr_time": 11,
    "curr_usr_time": 11, "s_core_w1": 12, "s_core_w2": 13, "s_out_time": 14, "out_usr_time": 14, "s_addr": 15,
}  # fmt: skip
WREG_NAMES = {"w_freq": 0, "w_phase": 1, "w_env": 2, "w_gain": 3, "w_length": 4, "w_conf": 5}


def s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def lit(text: str) -> int:
    m = re.fullmatch(r"[#@&]?(-?\d+)", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"#u(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"#b([01]+)", text)
    if m:
        return int(m.group(1), 2)
    m = re.fullmatch(r"#h([0-9A-Fa-f]+)", text)
    if m:
        return int(m.group(1), 16)
    raise CtrlError(f"cannot read literal {text!r}")

"""tProc v2 machine code back to the assembler's instruction dicts, and waveform-memory words back to waves.

A board receives `binprog` (program-memory words of 72 bits, as qick packs them: [bits 0-31, 32-63,
64-71, 0, 0, 0, 0, 0]) and waveform-memory words, not the assembly list. `decode_pmem` gives the
instruction dicts qick's assembler takes (`Assembler.list2bin` turns them back into the same bits: the
tests check it on every emitted program), with literal addresses instead of labels and a qick `WAIT` as
the TEST + JUMP pair it assembles to. `decode_wmem` gives the waveform fields (freq, phase, env, gain,
length, conf). Covers what qick 0.2.436 emits for tProc v2; other encodings raise CtrlError.
"""

from __future__ import annotations

from ctrl.errors import CtrlError

_ALU_FULL = {
    "0000": "+", "0010": "-", "0100": "AND", "0110": "ASR", "1000": "ABS", "1010": "MSH", "1100": "LSH",
    "1110": "SWP", "0001": "NOT", "0011": "OR", "0101": "XOR", "0111": "CAT", "1001": "RFU", "1011": "PAR",
    "1101": "SL", "1111": "SR",
}  # fmt: skip
_ALU_SHORT = {"00": "+", "01": "-", "10": "AND", "11": "ASR"}
_UNARY = {"ABS", "MSH", "LSH", "SWP", "PAR", "NOT"}
_COND = {"000": "1", "001": "Z", "010": "S", "011": "NZ", "100": "NS", "101": "F", "110": "NF", "111": "0"}
_TIME_OPS = {"0001": "rst", "0010": "updt", "0100": "set_ref", "1000": "inc_ref"}


def _bits(word) -> str:
    n0, n1, n2 = (int(x) & 0xFFFFFFFF for x in word[:3])
    return f"{n2 & 0xFF:08b}{n1:032b}{n0:032b}"


def _signed(bits: str) -> int:
    v = int(bits, 2)
    return v - (1 << len(bits)) if bits[0] == "1" else v


def _reg8(bits: str) -> str:
    """An 8-bit source-data register field: 0, kind (s/r/w), index."""
    kind = {"00": "s", "01": "r", "10": "w"}.get(bits[1:3])
    if kind is None:
        raise CtrlError(f"unknown register field {bits}")
    return f"{kind}{int(bits[3:], 2)}"


def _reg7(bits: str) -> str:
    kind = {"00": "s", "01": "r", "10": "w"}.get(bits[:2])
    if kind is None:
        raise CtrlError(f"unknown destination register field {bits}")
    return f"{kind}{int(bits[2:], 2)}"


def _reg6(bits: str) -> str:
    return ("r" if bits[0] == "1" else "s") + str(int(bits[1:], 2))


def _operand(b: str, full: bool) -> dict:
    """OP (and LIT) of the DATA field, from the data-format bits."""
    df, data = b[4:6], b[33:65]
    alu = _ALU_FULL[b[12:16]] if full else _ALU_SHORT[b[14:16]]
    if df == "11":
        return {"LIT": f"#{_signed(data)}"}
    if df == "10":
        a, imm = _reg8(data[:8]), _signed(data[8:])
        if full and alu in _UNARY and imm == 0:
            return {"OP": f"{alu} {a}"}
        return {"OP": f"{a} {alu} #{imm}"}
    if df == "01":
        a, c, imm = _reg8(data[:8]), _reg8(data[8:16]), _signed(data[16:])
        out = {"OP": f"ABS {c}"} if full and alu == "ABS" else {"OP": f"{a} {alu} {c}"}
        if imm:
            out["LIT"] = f"#{imm}"
        return out
    return {}


def _mem_addr(b: str) -> str:
    """[rsA1 + rsA0] memory address: 11-bit literal or register, plus a register."""
    ai, a0, a1 = b[3], b[16:27], b[27:33]
    first = f"&{int(a0, 2)}" if ai == "1" else ("r" if a0[5] == "1" else "s") + str(int(a0[6:], 2))
    if a1 == "000000":
        return first
    return f"{_reg6(a1)} + {first}"


def _wr(b: str, d: dict, full: bool = False) -> None:
    if b[12] == "1":  # -wr(reg op|imm)
        d["WR"] = f"{_reg7(b[65:72])} {'imm' if b[13] == '1' else 'op'}"
        d.update(_operand(b, full))


def decode_word(word, p_addr: int) -> dict:
    b = _bits(word)
    hdr = b[:3]
    d: dict = {"P_ADDR": p_addr}
    if hdr == "000":
        if b[11] == "0" and set(b[3:]) == {"0"}:
            d["CMD"] = "NOP"
            return d
        d.update({"CMD": "TEST", "UF": "1"})
        d.update(_operand(b, False))
        if b[6:9] != "000":
            d["IF"] = _COND[b[6:9]]
        return d
    if hdr == "001":
        cj = b[9:11]
        d["CMD"] = {"00": "JUMP", "10": "CALL", "11": "RET"}[cj]
        if cj != "11":
            d["ADDR"] = f"&{int(b[16:27], 2)}" if b[3] == "1" else "s15"
        if b[6:9] != "000":
            d["IF"] = _COND[b[6:9]]
        if b[11] == "1":
            d["UF"] = "1"
        if b[12] == "1":
            _wr(b, d)
        elif b[11] == "1":
            d.update(_operand(b, False))
        return d
    if hdr == "100":
        src = b[9:11]
        d.update({"CMD": "REG_WR", "DST": _reg7(b[65:72])})
        if b[6:9] != "000" and src != "10":
            d["IF"] = _COND[b[6:9]]
        if b[11] == "1":
            d["UF"] = "1"
        if src == "00":
            d["SRC"] = "op"
            d.update(_operand(b, True))
        elif src == "11":
            d["SRC"] = "imm"
            d["LIT"] = f"#{_signed(b[33:65])}"
        elif src == "01":
            d["SRC"] = "dmem"
            d["ADDR"] = _mem_addr(b)
            d.update(_operand(b, False))
        else:
            d = {"P_ADDR": p_addr, "CMD": "REG_WR", "DST": "r_wave", "SRC": "wmem",
                 "ADDR": f"&{int(b[16:27], 2)}" if b[3] == "1" else _mem_addr(b)}  # fmt: skip
        return d
    if hdr == "101":
        if b[9] == "0":
            d.update({"CMD": "DMEM_WR", "DST": f"[{_mem_addr(b)}]", "SRC": "imm" if b[10] == "1" else "op"})
            if b[6:9] != "000":
                d["IF"] = _COND[b[6:9]]
            if b[11] == "1":
                d["UF"] = "1"
            d.update(_operand(b, False))
            if b[12] == "1":
                _wr(b, d)
            return d
        d.update({"CMD": "WMEM_WR", "DST": f"[&{int(b[16:27], 2)}]"})
        if b[10] == "1":
            d["TIME"] = f"@{_signed(b[33:65])}"
        return d
    if hdr == "110":
        so, to = b[9], b[10]
        ww, sp, wp = b[6], b[7], b[8]
        port = int(b[27:33], 2)
        a0 = int(b[16:27], 2)
        if so == "1":
            d.update({"CMD": "WPORT_WR", "DST": str(port), "SRC": "r_wave" if sp == "1" else "wmem"})
            if sp == "0":
                d["ADDR"] = f"&{a0}" if b[3] == "1" else _mem_addr(b)
            elif ww == "1":
                d["WW"] = "1"
                d["ADDR"] = f"&{a0}"
        elif wp == "0":
            d.update({"CMD": "DPORT_RD", "DST": str(port)})
            return d
        elif port >= 32:
            d.update({"CMD": "TRIG", "DST": str(port - 32), "SRC": "set" if a0 == 1 else "clr"})
        elif sp == "1":
            d.update({"CMD": "DPORT_WR", "DST": str(port), "SRC": "imm", "DATA": str(a0)})
        else:
            d.update({"CMD": "DPORT_WR", "DST": str(port), "SRC": "reg", "DATA": f"r{a0 & 31}"})
        if to == "1":
            d["TIME"] = f"@{_signed(b[33:65])}"
        return d
    if hdr == "010":
        ctrl = b[9:12]
        if ctrl == "000":
            op = _TIME_OPS.get(b[12:16])
            if op is None:
                raise CtrlError(f"unknown TIME operation bits {b[12:16]} at address {p_addr}")
            d.update({"CMD": "TIME", "C_OP": op})
            if b[4:6] == "11":
                d["LIT"] = f"#{_signed(b[33:65])}"
            elif op != "rst":
                d["R1"] = _reg8(b[41:49])
            return d
    raise CtrlError(f"cannot decode the instruction at program address {p_addr} (header {hdr})")


def decode_pmem(pmem) -> list[dict]:
    """Program-memory words -> assembler instruction dicts (P_ADDR = word address)."""
    return [decode_word(w, i) | {"LINE": i + 1} for i, w in enumerate(pmem)]


def decode_wmem(wmem) -> list[dict]:
    """Waveform-memory words (8 x int32, qick's DMA layout) -> {freq, phase, env, gain, length, conf}."""
    out = []
    for w in wmem or []:
        raw = b"".join(int(x & 0xFFFFFFFF).to_bytes(4, "little") for x in w)
        fields = (("freq", 0, 4), ("phase", 4, 4), ("env", 8, 3), ("gain", 12, 4), ("length", 16, 4), ("conf", 20, 2))
        wave = {k: int.from_bytes(raw[o:o + n], "little") for k, o, n in fields}
        wave["gain"] -= (1 << 32) if wave["gain"] & 0x80000000 else 0
        out.append(wave)
    return out

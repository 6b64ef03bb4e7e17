"""What the wiring checks and the compiler need from a QICK firmware description (`soc.dump_cfg()` JSON).

Read as plain JSON, so validation works offline and without a QICK install; the same file loads with
`qick.QickConfig(dict)` for compiling. Kinds:

- generator: `mux` if it has `n_tones` (constant tones gated per pulse, no envelope memory), else it plays
  shaped envelopes from `maxlen` samples of envelope memory at `f_fabric * samps_per_clk` samples/s.
- readout: `dynamic` if the tProc sets its frequency per trigger (`tproc_ctrl`, e.g. axis_dyn_readout_v1),
  so one channel may serve several resonators one after another; otherwise its frequency is fixed for a
  whole program (PFB outputs, axis_readout_v2) and it serves one resonator. `tproc_ch < 0` means its result
  never reaches the tProc, so it cannot feed a real-time decision.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.files import MiB, read_limited


@dataclass(frozen=True)
class GenInfo:
    index: int
    type: str
    dac: str
    fs_hz: float  # DAC sample rate: Nyquist zones 1 and 2 reach up to fs
    f_fabric_hz: float
    f_dds_hz: float  # DDS range; with a mixer, all tones of one program lie within f_dds of each other
    has_mixer: bool
    n_tones: int  # 0: not multiplexed
    envelope_rate_hz: float  # 0 for mux gens (no envelope memory)
    maxlen: int  # envelope memory in samples (0 for mux gens)

    @property
    def mux(self) -> bool:
        return self.n_tones > 0

    def __repr__(self) -> str:
        kind = f"mux{self.n_tones}" if self.mux else "envelope"
        return f"GenInfo({self.index}, {self.type}, {kind}, fs={self.fs_hz / 1e6:.2f} MS/s)"


@dataclass(frozen=True)
class ReadoutInfo:
    index: int
    type: str
    adc: str
    fs_hz: float  # ADC sample rate; a tone near a multiple of fs/2 folds onto its own image
    f_output_hz: float
    tproc_ch: int
    dynamic: bool

    @property
    def feeds_tproc(self) -> bool:
        return self.tproc_ch >= 0

    def __repr__(self) -> str:
        return f"ReadoutInfo({self.index}, {self.type}, adc {self.adc}, tproc_ch={self.tproc_ch})"


@dataclass(frozen=True)
class FirmwareInfo:
    path: Path
    sha256: str
    board: str
    tproc_type: str
    tproc_revision: int
    tproc_version: int  # 1 or 2
    f_time_hz: float
    pmem_size: int
    has_link: bool  # qnet or qcom: a real-time path between boards
    gens: tuple[GenInfo, ...]
    readouts: tuple[ReadoutInfo, ...]

    def __repr__(self) -> str:
        return (f"FirmwareInfo({self.path.name}, {self.board}, tProc v{self.tproc_version} rev {self.tproc_revision}, "
                f"{len(self.gens)} gens, {len(self.readouts)} readouts)")


def _num(d: dict, key: str, default=None):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"field '{key}' missing or not a number")
    return v


def _parse(path: Path, raw: bytes) -> FirmwareInfo:
    cfg = json.loads(raw)
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), list) for k in ("gens", "readouts", "tprocs")):
        raise ValueError("not a QICK firmware description (needs lists 'gens', 'readouts', 'tprocs')")
    if not cfg["tprocs"] or not isinstance(cfg["tprocs"][0], dict):
        raise ValueError("no tProc described")
    tp = cfg["tprocs"][0]
    gens = []
    for i, g in enumerate(cfg["gens"]):
        if not isinstance(g, dict):
            raise ValueError(f"gens[{i}] is not a mapping")
        n_tones = int(g.get("n_tones", 0))
        rate = 0.0 if n_tones else _num(g, "f_fabric") * 1e6 * _num(g, "samps_per_clk", 1)
        gens.append(GenInfo(
            index=i, type=str(g.get("type")), dac=str(g.get("dac")), fs_hz=_num(g, "fs") * 1e6,
            f_fabric_hz=_num(g, "f_fabric") * 1e6, f_dds_hz=_num(g, "f_dds", g.get("fs")) * 1e6,
            has_mixer=bool(g.get("has_mixer", False)), n_tones=n_tones, envelope_rate_hz=rate,
            maxlen=0 if n_tones else int(_num(g, "maxlen", 0)),
        ))
    readouts = []
    for i, r in enumerate(cfg["readouts"]):
        if not isinstance(r, dict):
            raise ValueError(f"readouts[{i}] is not a mapping")
        readouts.append(ReadoutInfo(
            index=i, type=str(r.get("ro_type", "?")), adc=str(r.get("adc")), fs_hz=_num(r, "fs") * 1e6,
            f_output_hz=_num(r, "f_output") * 1e6, tproc_ch=int(_num(r, "tproc_ch", -1)),
            dynamic="tproc_ctrl" in r,
        ))
    ttype = str(tp.get("type"))
    return FirmwareInfo(
        path=path, sha256=hashlib.sha256(raw).hexdigest(), board=str(cfg.get("board", "?")),
        tproc_type=ttype, tproc_revision=int(tp.get("revision", 0)),
        tproc_version=2 if ttype == "qick_processor" else 1,
        f_time_hz=_num(tp, "f_time") * 1e6, pmem_size=int(tp.get("pmem_size", 0)),
        has_link=bool(tp.get("has_qnet", 0) or tp.get("has_qcom", 0)),
        gens=tuple(gens), readouts=tuple(readouts),
    )


MAX_FIRMWARE_BYTES = 16 * MiB  # qick firmware descriptions are tens of kB


@functools.lru_cache(maxsize=64)
def _cached(path: Path, mtime_ns: int, size: int) -> FirmwareInfo:
    return _parse(path, read_limited(path, MAX_FIRMWARE_BYTES, "firmware description"))


class FirmwareError(CtrlError):
    """A firmware description that cannot be read; `reason` says why without repeating the path."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"firmware description {path}: {reason}")


def read_firmware(path: Path) -> FirmwareInfo:
    """Summary of a firmware description; FirmwareError if it cannot be read or is not one."""
    path = Path(path).resolve()
    try:
        st = path.stat()
        return _cached(path, st.st_mtime_ns, st.st_size)
    except OSError as e:
        raise FirmwareError(path, f"cannot read it ({e.strerror})") from None
    except FirmwareError:
        raise
    except CtrlError as e:  # read_limited's reason, with the path once
        raise FirmwareError(path, str(e).split(": ", 1)[-1]) from None
    except RecursionError:
        raise FirmwareError(path, "nested too deeply") from None
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSONDecodeError is a ValueError
        raise FirmwareError(path, f"not a usable QICK firmware description ({e})") from None


def firmware_config(path: Path) -> dict:
    """The raw firmware description, ready for `qick.QickConfig(...)` (a fresh dict on every call)."""
    cfg = json.loads(read_limited(Path(path), MAX_FIRMWARE_BYTES, "firmware description"))
    cfg.get("rf", {}).setdefault("dac_power", "20mA")  # older dumps lack it; only QickConfig.__str__ needs it
    return cfg

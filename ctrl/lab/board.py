"""An emulated QICK board on qick's own remote path: a Pyro4 name server and daemon serving an object
with the part of `qick.QickSoc`'s interface that a tProc v2 acquisition uses.

`EmulatedSoc` records what the client configures (envelopes, generators, readouts, buffers) and keeps
the loaded machine code; `start_readout` runs the loaded program through an engine (`ctrl.lab.engine`)
in a worker thread and streams accumulated readout values back through `poll_data`, shaped as qick's
streamer shapes them. A run belongs to the Pyro connection that started configuring the board; every
other connection is refused with a one-line `RuntimeError` (a plain exception class, so that a client
without ctrl installed can unpickle it) until that connection closes.

Methods raise `RuntimeError` rather than `CtrlError`: they run behind Pyro, where qick's own clients
expect the exceptions a `QickSoc` raises.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ctrl.errors import CtrlError

MAX_MESSAGE_BYTES = 256 * 2**20  # a program, its envelopes or a batch of readouts is a few MB at most
PROXY_NAME = "myqick"  # qick.pyro.start_server's default: what make_proxy looks up unless told otherwise


def configure_pyro_server() -> None:
    """The settings `qick.pyro.start_server` / `start_nameserver` use: pickle only (qick ships numpy
    arrays and dicts), no @expose needed."""
    import Pyro4

    Pyro4.config.REQUIRE_EXPOSE = False
    Pyro4.config.SERIALIZER = "pickle"
    Pyro4.config.SERIALIZERS_ACCEPTED = {"pickle"}
    Pyro4.config.PICKLE_PROTOCOL_VERSION = 4
    Pyro4.config.MAX_MESSAGE_SIZE = MAX_MESSAGE_BYTES


@dataclass
class BoardState:
    """What a client configured, as the hardware would hold it (the engine reads it)."""

    binprog: dict | None = None  # {"pmem", "wmem", "dmem"}: int32 arrays as loaded
    dmem: np.ndarray | None = None  # data memory as the last run left it
    envelopes: dict = field(default_factory=dict)  # (gen, addr) -> int16 (n, 2)
    nyquist: dict = field(default_factory=dict)  # gen -> zone
    mixer: dict = field(default_factory=dict)  # gen -> MHz
    mux_tones: dict = field(default_factory=dict)  # gen -> raw tone list
    readout_regs: dict = field(default_factory=dict)  # ro -> raw readout registers
    mux_readout: dict = field(default_factory=dict)  # pfb path -> raw configs
    avg_length: dict = field(default_factory=dict)  # ro -> accumulation window, readout cycles
    enabled: dict = field(default_factory=dict)  # ro -> (avg, buf)
    start_src: str = "internal"


class EmulatedSoc:
    """Served over Pyro4 in place of `qick.QickSoc`; `engine` executes the loaded program."""

    def __init__(self, cfg: dict, engine, board: str) -> None:
        self._cfg = cfg
        self._engine = engine
        self._board = board
        self._state = BoardState()
        self._mutex = threading.RLock()
        self._owner = None  # Pyro connection holding the board
        self._owner_since = ""
        self._owner_addr = ""
        self._counter = 0
        self._data: queue.Queue = queue.Queue()
        self._errors: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._total = 0
        self._count = 0
        self._acc: dict[int, list] = {}
        self.runs = 0  # completed acquisitions (for the server's log)
        self.last_client = ""

    # ---- ownership: one client at a time -------------------------------------------------------

    def _claim(self) -> None:
        import Pyro4

        conn = getattr(Pyro4.current_context, "client", None)
        if conn is None:  # called in-process, not through Pyro
            return
        with self._mutex:
            if self._owner is None:
                self._owner = conn
                self._owner_addr = _addr(getattr(Pyro4.current_context, "client_sock_addr", None))
                self._owner_since = time.strftime("%H:%M:%S UTC", time.gmtime())
            elif self._owner is not conn:
                raise RuntimeError(
                    f"board {self._board} is busy: a run from {self._owner_addr} holds it since {self._owner_since}; "
                    f"wait for it to finish or stop that client"
                )

    def _release(self, conn) -> None:
        with self._mutex:
            if conn is self._owner:
                self._stop.set()
                self._owner = None
                self.last_client = self._owner_addr

    @property
    def owner(self) -> str:
        return self._owner_addr if self._owner is not None else ""

    # ---- configuration (QickConfig) ------------------------------------------------------------

    def get_cfg(self) -> dict:
        return self._cfg

    def dump_cfg(self, gen_file_path=None) -> str:
        if gen_file_path is not None:
            raise RuntimeError("dump_cfg: the emulated board does not write files; call it without a path")
        return json.dumps(self._cfg, indent=4)

    # ---- tProc ---------------------------------------------------------------------------------

    def start_src(self, src):
        self._claim()
        if src not in ("internal", "external"):
            raise RuntimeError(f"start_src: unknown source {src!r} (internal or external)")
        self._state.start_src = src

    def stop_tproc(self, lazy=False):
        self._claim()
        self._stop.set()
        self._join()

    def start_tproc(self):
        self._claim()
        # qick's accumulated acquisition starts the tProc from its streamer (start_readout); a bare
        # start without a readout job runs the program with nowhere to put data, which nothing here needs.

    def load_bin_program(self, binprog, load_mem=True):
        self._claim()
        prog = {}
        for mem in ("pmem", "dmem", "wmem"):
            v = binprog.get(mem) if isinstance(binprog, dict) else None
            # machine words are unsigned 32-bit; numpy 2 refuses to wrap them into int32 as qick casts
            prog[mem] = None if v is None else np.array(v, dtype=np.int64).astype(np.uint32).view(np.int32)
        if prog["pmem"] is None:
            raise RuntimeError("load_bin_program: no program memory (pmem) in the binary program")
        limit = self._cfg["tprocs"][0].get("pmem_size", 0)
        if len(prog["pmem"]) > limit:
            raise RuntimeError(f"load_bin_program: {len(prog['pmem'])} words of pmem, board {self._board} has {limit}")
        self._engine.load(prog, self._cfg)  # identifies the program; raises RuntimeError if it cannot run it
        self._state.binprog = prog
        if load_mem:
            self.reload_mem()

    def reload_mem(self):
        self._claim()
        b = self._state.binprog
        size = self._cfg["tprocs"][0].get("dmem_size", 0)
        dmem = np.zeros(size, dtype=np.int32)
        if b is not None and b["dmem"] is not None:
            dmem[: len(b["dmem"])] = b["dmem"]
        self._state.dmem = dmem

    def load_mem(self, data, mem_sel="dmem", addr=0):
        self._claim()
        if mem_sel != "dmem":
            raise RuntimeError(f"load_mem: the emulated board writes only dmem, not {mem_sel}")
        data = np.array(data, dtype=np.int32)
        if self._state.dmem is None:
            self.reload_mem()
        self._state.dmem[addr : addr + len(data)] = data

    def read_mem(self, length, mem_sel="dmem", addr=0):
        self._claim()
        if mem_sel != "dmem":
            raise RuntimeError(f"read_mem: the emulated board reads only dmem, not {mem_sel}")
        if self._state.dmem is None:
            self.reload_mem()
        return self._state.dmem[addr : addr + length].copy()

    def clear_tproc_counter(self, addr):
        self._claim()
        self._counter = 0

    def get_tproc_counter(self, addr):
        self._claim()
        return self._counter

    # ---- generators and readouts: recorded, as the hardware would hold them ----------------------

    def load_envelope(self, ch, data, addr):
        self._claim()
        self._state.envelopes[(int(ch), int(addr))] = np.array(data, dtype=np.int16)

    def load_weights(self, ch, data, addr=0):
        self._claim()

    def set_nyquist(self, ch, nqz, force=False):
        self._claim()
        self._state.nyquist[int(ch)] = int(nqz)

    def set_mixer_freq(self, ch, f, ro_ch=None, phase_reset=True, fullscale=False):
        self._claim()
        self._state.mixer[int(ch)] = float(f)

    def config_mux_gen(self, ch, tones):
        self._claim()
        self._state.mux_tones[int(ch)] = list(tones)

    def configure_readout(self, ch, ro_regs):
        self._claim()
        self._state.readout_regs[int(ch)] = dict(ro_regs)

    def config_mux_readout(self, pfbpath, cfgs, sel=None):
        self._claim()
        self._state.mux_readout[str(pfbpath)] = list(cfgs)

    def config_avg(self, ch, address=0, length=1, edge_counting=False, high_threshold=1000, low_threshold=0):
        self._claim()
        self._state.avg_length[int(ch)] = int(length)

    def config_buf(self, ch, address=0, length=1):
        self._claim()

    def enable_buf(self, ch, enable_avg=True, enable_buf=True):
        self._claim()
        self._state.enabled[int(ch)] = (bool(enable_avg), bool(enable_buf))

    # ---- acquisition ---------------------------------------------------------------------------

    def prepare_round(self):
        self._claim()

    def cleanup_round(self):
        self._claim()

    def start_readout(self, total_shots, counter_addr=1, ch_list=None, reads_per_shot=1, stride=None):
        """Run the loaded program for `total_shots` (its own loop count) and stream the accumulated
        values of `ch_list`, `reads_per_shot[i]` per shot, as qick's streamer does."""
        self._claim()
        if self._state.binprog is None:
            raise RuntimeError("start_readout: no program loaded (load_bin_program first)")
        ch_list = [0, 1] if ch_list is None else [int(c) for c in ch_list]
        if isinstance(reads_per_shot, int):
            reads_per_shot = [reads_per_shot] * len(ch_list)
        self._stop.set()
        self._join()
        while not self._data.empty():
            self._data.get_nowait()
        self._stop = threading.Event()
        self._total, self._count, self._counter = int(total_shots), 0, 0
        stop = self._stop
        args = (int(total_shots), ch_list, [int(r) for r in reads_per_shot], stride, stop)
        self._worker = threading.Thread(target=self._run, args=args, daemon=True, name=f"board-{self._board}")
        self._worker.start()

    def poll_data(self, totaltime=0.1, timeout=None):
        """qick's semantics: whatever arrived, waiting up to `totaltime` for more while shots remain."""
        self._claim()
        end = time.time() + totaltime
        out = []
        while totaltime < 0 or (self._count < self._total and time.time() < end):
            try:
                err = self._errors.get_nowait()
            except queue.Empty:
                pass
            else:
                raise RuntimeError(f"board {self._board}: {err}")
            try:
                n, data = self._data.get(timeout=0.05 if timeout is None else timeout)
            except queue.Empty:
                if timeout is not None:
                    break
                if self._worker is not None and not self._worker.is_alive() and self._data.empty():
                    if not self._errors.empty():
                        continue
                    break
                continue
            self._count += n
            out.append((n, data))
        return out

    def get_accumulated(self, ch, address=0, length=None):
        self._claim()
        buf = np.array(self._acc.get(int(ch), []), dtype=np.int64).reshape(-1, 2)
        length = len(buf) if length is None else length
        return buf[address : address + length]

    def ctrl_truth(self) -> dict:
        """Not part of QickSoc: the emulator's ground truth for the last acquisition (per attempt slot, the
        Stim proxy it was sampled from and whether its final state carried a logical error)."""
        self._claim()
        return self._engine.truth()

    def ctrl_stream(self) -> dict:
        """Not part of QickSoc: where the emulated board's random stream stands (`StimEngine.stream`), so
        a client can record which samples each batch holds."""
        self._claim()
        return self._engine.stream()

    def ctrl_seek(self, position: int) -> None:
        """Not part of QickSoc: start the next acquisition at this stream position, so that a board
        restarted with the same seed resumes past what a results file already holds instead of replaying it."""
        self._claim()
        self._engine.seek(position)

    def get_decimated(self, ch, address=0, length=None):
        raise RuntimeError("get_decimated: the emulated board has no decimated (waveform) buffers")

    def _join(self) -> None:
        w = self._worker
        if w is not None and w is not threading.current_thread():
            w.join()

    def _run(self, total, ch_list, reads, stride, stop) -> None:
        """Worker: execute, then hand out packets of `stride` shots (qick's default: a tenth of the buffer)."""
        try:
            if stride is None:
                maxlen = min(self._cfg["readouts"][c]["avg_maxlen"] / reads[i] for i, c in enumerate(ch_list))
                stride = max(1, int(0.1 * maxlen))
            pending = {c: [] for c in ch_list}
            self._acc = {c: [] for c in ch_list}
            t0 = time.time()
            done = 0

            def shot(values: dict) -> None:
                nonlocal done
                for i, c in enumerate(ch_list):
                    v = values.get(c, [])
                    if len(v) != reads[i]:
                        raise RuntimeError(
                            f"shot {done}: the program made {len(v)} readouts on ro {c}, "
                            f"the acquisition expects {reads[i]}"
                        )
                    pending[c].extend(v)
                    self._acc[c].extend(v)
                done += 1
                self._counter = done
                if done % stride == 0 or done == total:
                    n = stride if done % stride == 0 else done % stride
                    bufs = [np.array(pending[c], dtype=np.int64).reshape(-1, 2) for c in ch_list]
                    for c in ch_list:
                        pending[c] = []
                    self._data.put((n, (bufs, (time.time() - t0, done, 0, n))))

            self._engine.execute(self._state, total, shot, stop)
            if done != total and not stop.is_set():
                raise RuntimeError(f"the program completed {done} shots, the acquisition expects {total}")
            self.runs += 1
        except Exception as e:  # noqa: BLE001 - handed to poll_data, as qick's streamer does
            self._errors.put(e)
            self._data.put((0, ([], None)))
        finally:
            self._state.start_src = "internal"


def _addr(sa) -> str:
    try:
        return f"{sa[0]}:{sa[1]}"
    except (TypeError, IndexError):
        return "another client"


def _outward_address() -> str:
    """The local address of the interface a packet to the outside would leave by (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing decision only
            return s.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class BoardServer:
    """A Pyro4 name server and daemon (threads in this process) serving `soc` as `proxy_name`."""

    def __init__(self, soc: EmulatedSoc, host: str = "127.0.0.1", port: int = 8888, allow_remote: bool = False,
                 proxy_name: str = PROXY_NAME, key: bytes | None = None) -> None:
        """`key`: the HMAC key every message must carry (default: the board key file's, `ctrl.lab.auth`)."""
        if not _is_loopback(host):
            if not allow_remote:
                raise CtrlError(
                    f"refusing to serve the board on {host}: it accepts pickled calls (Pyro4's pickle serializer, "
                    f"which qick requires); pass --allow-remote to serve beyond this machine"
                )
            print(f"ctrl: warning: serving the board on {host}, beyond this machine: anyone who can reach it and "
                  f"holds the board key can run code here", file=sys.stderr)  # fmt: skip
        import Pyro4
        import Pyro4.naming

        from ctrl.lab.auth import ensure_key

        configure_pyro_server()
        self.soc = soc
        self.proxy_name = proxy_name
        self.key = key if key is not None else ensure_key()[0]
        try:
            self.ns_uri, self._ns_daemon, _ = Pyro4.naming.startNS(host=host, port=port, enableBroadcast=False,
                                                                   hmac=self.key)  # fmt: skip
        except OSError as e:
            raise CtrlError(f"cannot start the name server on {host}:{port}: {e.strerror or e}") from None
        self.host, self.port = self._ns_daemon.sock.getsockname()[:2]

        board = soc
        conns = self._conns = set()

        class _Daemon(Pyro4.Daemon):
            def validateHandshake(self, conn, data):  # noqa: N802 - Pyro4's hook names
                conns.add(conn)
                return super().validateHandshake(conn, data)

            def clientDisconnect(self, conn):  # noqa: N802
                conns.discard(conn)
                board._release(conn)

        nat = {}
        if host in ("0.0.0.0", "::", ""):
            # a wildcard bind would advertise 0.0.0.0 in the board's URI; advertise the address a client
            # elsewhere reaches instead (qick's start_server does the same with its interface lookup)
            nat = {"nathost": _outward_address(), "natport": 0}
        self._daemon = _Daemon(host=host, port=0, **nat)
        self._daemon._pyroHmacKey = self.key  # messages without this key's HMAC are refused before unpickling
        self.uri = self._daemon.register(soc, objectId="ctrl.emulated_board")
        self._ns_daemon.nameserver.register(proxy_name, self.uri)
        self._threads = [
            threading.Thread(target=self._ns_daemon.requestLoop, daemon=True, name="pyro-ns"),
            threading.Thread(target=self._daemon.requestLoop, daemon=True, name="pyro-board"),
        ]
        for t in self._threads:
            t.start()

    def __repr__(self) -> str:
        return f"BoardServer({self.proxy_name} at {self.uri}, name server {self.host}:{self.port})"

    def close(self) -> None:
        """Stop serving and drop every client connection, as a board that goes away would."""
        self.soc._stop.set()
        self._daemon.shutdown()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._ns_daemon.shutdown()
        for t in self._threads:
            t.join(timeout=5)


def serve(device_file, board: str | None = None, host: str = "127.0.0.1", port: int = 8888,
          allow_remote: bool = False, noise: str = "calibration", seed: int = 0,
          key: bytes | None = None, proxy_name: str = PROXY_NAME) -> BoardServer:
    """Load the device, build the emulated board (one board of the device) and serve it as `proxy_name`."""
    from ctrl.device import load_device
    from ctrl.lab.engine import StimEngine

    device = load_device(device_file)
    boards = sorted(device.firmware)
    if board is None:
        if len(boards) != 1:
            raise CtrlError(
                f"{device_file}: device {device.name} has boards {', '.join(boards)}; choose one with --board"
            )
        board = boards[0]
    elif board not in boards:
        raise CtrlError(f"{device_file}: device {device.name} has no board {board!r} (boards: {', '.join(boards)})")
    from ctrl.emulate.run import check_noise

    check_noise(noise)
    soc = EmulatedSoc(device.firmware_config(board), StimEngine(device, board, noise, seed), board)
    return BoardServer(soc, host=host, port=port, allow_remote=allow_remote, proxy_name=proxy_name, key=key)

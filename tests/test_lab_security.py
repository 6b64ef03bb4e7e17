"""The Pyro path between `ctrl run` and a board is authenticated: qick ships pickles, so a message that
does not carry the board key's HMAC must be refused before it is unpickled, in both directions."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

pytest.importorskip("Pyro4")
pytest.importorskip("qick")

import Pyro4  # noqa: E402
import Pyro4.errors  # noqa: E402
import Pyro4.naming  # noqa: E402

from ctrl.cli import main  # noqa: E402
from ctrl.device import DEFAULT_DEVICE, load_device  # noqa: E402
from ctrl.errors import CtrlError  # noqa: E402
from ctrl.lab.auth import ensure_key, read_key  # noqa: E402
from ctrl.lab.board import BoardServer, EmulatedSoc, serve  # noqa: E402
from ctrl.lab.engine import StimEngine  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")


class _Payload:
    """Unpickling this creates `marker`: proof that a pickle from the other side was deserialised."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def compiled(default_program):
    return default_program


@pytest.fixture(scope="module")
def board():
    server = serve(DEFAULT_DEVICE, port=0, noise="calibration*0.2", seed=3)
    yield server
    server.close()


def test_an_unauthenticated_pickle_is_refused_before_it_is_unpickled(board, tmp_path):
    marker = tmp_path / "ran"
    # straight to the board's daemon, and to its name server, without the key
    for uri, method in ((board.uri, "get_cfg"), (board.ns_uri, "lookup")):
        proxy = Pyro4.Proxy(uri)
        proxy._pyroTimeout = 10
        with pytest.raises(Pyro4.errors.PyroError):
            getattr(proxy, method)(_Payload(marker))
        proxy._pyroRelease()
    assert not marker.exists()
    # with a wrong key
    proxy = Pyro4.Proxy(board.uri)
    proxy._pyroHmacKey = b"not the key, but long enough"
    proxy._pyroTimeout = 10
    with pytest.raises(Pyro4.errors.PyroError):
        proxy.get_cfg(_Payload(marker))
    proxy._pyroRelease()
    assert not marker.exists()
    # the same call with the key is unpickled and run: the refusals above were the key's doing
    proxy = Pyro4.Proxy(board.uri)
    proxy._pyroHmacKey = board.key
    proxy._pyroTimeout = 10
    with pytest.raises(Exception):  # noqa: B017 - get_cfg takes no argument; the payload ran on the way in
        proxy.get_cfg(_Payload(marker))
    proxy._pyroRelease()
    assert marker.exists()


class _EvilBoard:
    def __init__(self, marker: Path):
        self.marker = marker

    def get_cfg(self):
        return _Payload(self.marker)


def _fake_unauthenticated_board(marker: Path):
    """A name server and daemon without a key (as qick's own server) whose get_cfg returns a payload."""
    Pyro4.config.SERIALIZERS_ACCEPTED = {"pickle"}
    Pyro4.config.REQUIRE_EXPOSE = False
    ns_uri, ns_daemon, _ = Pyro4.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    daemon = Pyro4.Daemon(host="127.0.0.1", port=0)
    ns_daemon.nameserver.register("myqick", daemon.register(_EvilBoard(marker)))
    threads = [threading.Thread(target=d.requestLoop, daemon=True) for d in (ns_daemon, daemon)]
    for t in threads:
        t.start()
    return ns_daemon, daemon


def test_ctrl_run_refuses_a_board_that_does_not_authenticate(compiled, tmp_path, capsys):
    marker = tmp_path / "ran"
    ns_daemon, daemon = _fake_unauthenticated_board(marker)
    port = ns_daemon.sock.getsockname()[1]
    res = tmp_path / "res.h5"
    try:
        code = main(["run", "--board", f"127.0.0.1:{port}", "--program", str(compiled), "--shots", "10",
                     "--out", str(res), "--timeout-s", "10"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "--insecure-board" in err and len(err.strip().splitlines()) == 1
        assert not marker.exists() and not res.exists()
        # told that the board does not authenticate, it talks to it, and says so loudly
        code = main(["run", "--board", f"127.0.0.1:{port}", "--program", str(compiled), "--shots", "10",
                     "--out", str(res), "--insecure-board", "--timeout-s", "10"])  # fmt: skip
        err = capsys.readouterr().err
        assert "WARNING" in err and "not authenticated" in err
        assert marker.exists()  # what that warning is about: the board's pickle was unpickled here
    finally:
        daemon.shutdown()
        ns_daemon.shutdown()


def test_a_silent_board_stops_the_run_after_the_timeout(compiled, tmp_path, capsys):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts connections (the kernel does) and never answers
    try:
        code = main(["run", "--board", f"127.0.0.1:{listener.getsockname()[1]}", "--program", str(compiled),
                     "--shots", "10", "--out", str(tmp_path / "r.h5"), "--timeout-s", "1"])  # fmt: skip
    finally:
        listener.close()
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_serving_beyond_loopback_warns(capsys):
    device = load_device(DEFAULT_DEVICE)
    soc = EmulatedSoc(device.firmware_config("zcu216"), StimEngine(device, "zcu216", "uniform:0.001"), "zcu216")
    server = BoardServer(soc, host="0.0.0.0", port=0, allow_remote=True)
    server.close()
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err and "beyond this machine" in err


def test_board_key_files_must_be_private(tmp_path):
    key, created = ensure_key(tmp_path / "k" / "board.key")
    assert created and len(key) == 64 and (tmp_path / "k" / "board.key").stat().st_mode & 0o777 == 0o600
    assert ensure_key(tmp_path / "k" / "board.key") == (key, False)  # kept, never replaced
    loose = tmp_path / "loose.key"
    loose.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(loose, 0o644)
    with pytest.raises(CtrlError, match="chmod 600"):
        read_key(loose)
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    os.chmod(short, 0o600)
    with pytest.raises(CtrlError, match="at least 16"):
        read_key(short)
    with pytest.raises(CtrlError, match="regular file"):
        read_key(Path("/dev/null"))
    with pytest.raises(CtrlError, match="no board key"):
        read_key(tmp_path / "missing.key")

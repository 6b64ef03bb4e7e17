"""The shipped devices: valid, built as documented, and reproducible from tools/generate_devices.py."""

import importlib.util
import json
from pathlib import Path

import networkx as nx
import pytest
import yaml
from networkx.algorithms import isomorphism

from ctrl.device import DEFAULT_DEVICE, load_device, validate
from ctrl.device.schema import json_schema_text
from ctrl.device.source import parse
from ctrl.protocol.cn20 import cn20_protocol, variants

CONFIGS = Path(__file__).resolve().parents[2] / "device_configs"
FILES = sorted(CONFIGS.glob("*.yaml"))


def _generator():
    spec = importlib.util.spec_from_file_location("device_generate", CONFIGS.parent / "tools" / "generate_devices.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _protocol_graph(d: int, family: str | None = None) -> nx.Graph:
    g = nx.Graph()
    g.add_edges_from(cn20_protocol(d, dict(variants(d))[family] if family else None).couplers)
    return g


def test_the_four_devices_ship():
    assert {f.name for f in FILES} >= {"planar16_d3.yaml", "grid55_d5.yaml", "heavyhex65_ecr.yaml", "grid25_cz.yaml"}
    assert DEFAULT_DEVICE in FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_shipped_file_validates(path):
    assert validate(path) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_loader_data_is_exactly_safe_load(path):
    text = path.read_text()
    assert parse(text, path.name).data == yaml.safe_load(text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_header_documents_the_device(path):
    head = [ln for ln in path.read_text().splitlines()[:40] if ln.startswith("#")]
    text = " ".join(head)
    assert len(head) >= 10
    assert "Numbers:" in text and "Wiring:" in text and "firmware" in text


def test_generator_reproduces_the_shipped_files():
    gen = _generator()
    for name in gen.DEVICES:
        assert gen.render(name) == (CONFIGS / name).read_text(), f"{name} is stale: run python tools/generate_devices.py"
    assert (CONFIGS / "device.schema.json").read_text() == json_schema_text()


def test_default_device_is_the_d3_protocol_on_one_zcu216_v2():
    dev = load_device(DEFAULT_DEVICE)
    c = cn20_protocol(3)
    assert [q.name for q in dev.qubits] == [f"Q{q.index}" for q in c.qubits]
    assert {frozenset(x.qubits) for x in dev.couplers} == {frozenset((f"Q{a}", f"Q{b}")) for a, b in c.couplers}
    for q, p in zip(dev.qubits, c.qubits):
        assert q.position == pytest.approx(p.coords)
    assert len(dev.wiring.boards) == 1
    fw = dev.firmware[dev.wiring.boards[0].name]
    assert fw.board == "ZCU216" and fw.tproc_version == 2 and 21 <= fw.tproc_revision <= 27
    # one board cannot give 16 qubits a generator each: drive lines are shared, readout is multiplexed
    drive_gens = {dev.qubit_wiring(q.name).drive.gen for q in dev.qubits}
    assert len(drive_gens) < len(dev.qubits)
    assert any(fw.gens[dev.qubit_wiring(q.name).readout.gen].mux for q in dev.qubits)


def test_d3_protocol_embeds_in_the_default_device_by_name():
    dev = load_device(DEFAULT_DEVICE)
    g = dev.graph(usable_only=True)
    for a, b in cn20_protocol(3).couplers:
        assert g.has_edge(f"Q{a}", f"Q{b}")


def test_55_qubit_device_contains_the_d5_protocol_and_spares():
    dev = load_device(CONFIGS / "grid55_d5.yaml")
    g = dev.graph(usable_only=True)
    assert len(dev.qubits) == 55 and len(dev.wiring.boards) > 1
    p = _protocol_graph(5, "tree4")  # the shared-register design the device is laid out around
    assert len(p) == 44 and len(dev.couplers) > p.number_of_edges()
    assert isomorphism.GraphMatcher(g, p).subgraph_is_monomorphic()
    assert {c.gate for c in dev.couplers} == {"cz"}


def test_heavy_hex_device():
    dev = load_device(CONFIGS / "heavyhex65_ecr.yaml")
    g = dev.graph()
    assert len(g) >= 27 and nx.is_bipartite(g) and max(d for _, d in g.degree) == 3
    deg = dict(g.degree)
    assert all(not (deg[a] == 3 and deg[b] == 3) for a, b in g.edges)  # heavy: degree-3 sites never touch
    assert {c.gate for c in dev.couplers} <= {"cr", "ecr"}
    assert all(w.flux is None for w in dev.wiring.qubits) and not dev.wiring.couplers
    bad_q = [q.name for q in dev.qubits if not q.usable]
    bad_c = [c.qubits for c in dev.couplers if not c.usable]
    assert len(bad_q) >= 3 and len(bad_c) >= 3
    assert dev.calibration.crosstalk_exclusions
    good = dev.graph(usable_only=True)
    assert not set(bad_q) & set(good) and all(not good.has_edge(*p) for p in bad_c)


def test_square_grid_device():
    dev = load_device(CONFIGS / "grid25_cz.yaml")
    g = dev.graph()
    assert nx.is_isomorphic(g, nx.grid_2d_graph(5, 5))
    assert {c.gate for c in dev.couplers} == {"cz"}
    assert all(c.flux_pulse.element == "coupler" for c in dev.couplers)
    assert all(dev.coupler_wiring(*c.qubits) is not None for c in dev.couplers)


@pytest.mark.parametrize("name", ["heavyhex65_ecr.yaml", "grid25_cz.yaml", "grid55_d5.yaml"])
def test_d3_protocol_fits_on_the_usable_part(name):
    # the compiler's placement for graphs without the default layout: bad parts must not leave it nowhere to go
    from ctrl.codes.color import color_code
    from ctrl.compile.embed import embed_layout

    g = load_device(CONFIGS / name).graph(usable_only=True)
    e = embed_layout(color_code(3), g)
    assert set(e.nodes) <= set(g)


def test_firmware_is_copied_with_provenance_and_loads_in_qick():
    qick = pytest.importorskip("qick")
    readme = (CONFIGS / "firmware" / "README.md").read_text()
    seen = set()
    for f in FILES:
        dev = load_device(f)
        for b in dev.wiring.boards:
            fw = dev.firmware[b.name]
            assert fw.path.parent == (CONFIGS / "firmware").resolve()
            assert fw.path.name in readme and fw.sha256 in readme
            if fw.path not in seen:
                seen.add(fw.path)
                cfg = qick.QickConfig(dev.firmware_config(b.name))
                assert len(cfg["gens"]) == len(fw.gens) and len(cfg["readouts"]) == len(fw.readouts)


def test_schema_file_is_json_and_names_units():
    s = json.loads((CONFIGS / "device.schema.json").read_text())
    q = s["$defs"]["QubitCalibration"]["properties"]
    assert q["t1_s"]["anyOf"][0]["x-unit"] == "s" and q["frequency_hz"]["anyOf"][0]["x-unit"] == "Hz"
    assert s["$defs"]["QubitCalibration"]["additionalProperties"] is False

"""Sweeps: ctrl.collect tasks, sinter CSV statistics, resumed by running again; task identity from content,
summary of what was asked, an honest interval for the two-component logical error, the plot."""

import json
import math
import shutil

import matplotlib
import numpy as np
import pytest
import sinter
import stim
from scipy.stats import beta

from ctrl.cli import main
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate import sweep
from ctrl.collect.stats import either_fails
from ctrl.collect.task import Task
from ctrl.realtime.decision import DecisionProgram

SHOTS = 1000  # small: enough for some discards and errors at p = 0.002, not a statistics test


def _csv_lines(csv):
    return csv.read_text().splitlines()


@pytest.fixture
def moved_device(tmp_path):
    """The default device file copied to another folder (with the firmware files its wiring names)."""
    where = tmp_path / "elsewhere"
    where.mkdir()
    shutil.copy(DEFAULT_DEVICE, where / "renamed.yaml")
    shutil.copytree(DEFAULT_DEVICE.parent / "firmware", where / "firmware")
    return where / "renamed.yaml"


def _sweep(devices, noises, csv, shots=SHOTS):
    task_list = sweep.tasks([str(d) for d in devices], [3], noises)
    stats = sweep.run(task_list, csv, shots, 10**6)
    return task_list, stats, sweep.summarize(stats, task_list)


def test_sweep_resumes_from_its_csv(tmp_path, capsys):
    csv = tmp_path / "stats.csv"
    args = ["sweep", "--device", str(DEFAULT_DEVICE), "--noise", "uniform:0.002", "--csv", str(csv), "--cluster", "local:1"]
    assert main(args + ["--max-shots", str(SHOTS), "--plot", str(tmp_path / "p.png")]) == 0
    first = sinter.read_stats_from_csv_files(str(csv))
    assert sorted(s.json_metadata["proxy"] for s in first) == ["X", "Z"]
    assert all(s.shots >= SHOTS for s in first)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args + ["--max-shots", str(2 * SHOTS)]) == 0
    second = sinter.read_stats_from_csv_files(str(csv))
    assert len(second) == 2, "the rerun adds shots to the same two tasks"
    for s in second:
        assert s.shots >= 2 * SHOTS
        assert 0 < s.discards < s.shots, "attempts are aborted by the program's own decision points"
        assert sum(v for k, v in s.custom_counts.items() if k.startswith("abort:")) == s.discards
    assert "acceptance" in capsys.readouterr().out


def test_task_identity_has_no_path(moved_device):
    a = sweep.tasks([str(DEFAULT_DEVICE)], [3], ["uniform:0.002", "calibration*0.5"])
    b = sweep.tasks([str(moved_device)], [3], ["uniform:2e-3", "calibration*0.5"])
    assert [t.strong_id for t in a] == [t.strong_id for t in b]
    assert str(DEFAULT_DEVICE.parent) not in json.dumps([t.metadata for t in a])
    m = a[0].metadata
    assert m["name"] == "planar16_d3" and m["p"] == 0.002 and m["device_sha256"].startswith("sha256:")
    assert a[2].metadata["scale"] == 0.5 and "p" not in a[2].metadata


def test_summary_does_not_change_when_the_device_is_given_by_another_path(tmp_path, moved_device):
    csv = tmp_path / "stats.csv"
    _, stats_a, rows_a = _sweep([DEFAULT_DEVICE], ["uniform:0.002"], csv)
    lines = _csv_lines(csv)
    # Same content at another path, same limits: the same tasks resume, nothing new is sampled.
    _, stats_b, rows_b = _sweep([moved_device], ["uniform:0.002"], csv)
    assert _csv_lines(csv) == lines
    assert rows_b == rows_a
    assert len(rows_a) == 1 and rows_a[0]["shots_X"] == sum(s.shots for s in stats_a if s.json_metadata["proxy"] == "X")
    # Both paths at once are one device, not two (the summary used to add both sets).
    _, _, rows_both = _sweep([DEFAULT_DEVICE, moved_device], ["uniform:0.002"], csv)
    assert rows_both == rows_a
    assert json.loads(json.dumps(rows_a, allow_nan=False)) == rows_a


def test_summary_lists_exactly_the_asked_points(tmp_path):
    csv = tmp_path / "stats.csv"
    _sweep([DEFAULT_DEVICE], ["uniform:0.002", "uniform:0.003"], csv)
    task_list, stats, rows = _sweep([DEFAULT_DEVICE], ["uniform:3e-3"], csv)
    assert len(sinter.read_stats_from_csv_files(str(csv))) == 4, "the CSV still holds the earlier point"
    assert [(r["device"], r["distance"], r["noise"]) for r in rows] == [("planar16_d3", 3, "uniform:0.003")]
    assert {s.json_metadata["p"] for s in stats} == {0.003}
    # The row's p_L is the either-fails rate of its own two proxies' counts.
    x, z = (next(s for s in stats if s.json_metadata["proxy"] == k) for k in "XZ")
    ex, ez = x.errors / (x.shots - x.discards), z.errors / (z.shots - z.discards)
    assert rows[0]["p_L"] == pytest.approx(1 - (1 - ex) * (1 - ez))
    assert rows[0]["acceptance"] == (x.shots - x.discards) / x.shots


def _clopper_pearson(k, n, conf):
    """Independently of either_fails: the exact interval from beta quantiles."""
    a = 1 - conf
    lo = 0.0 if k == 0 else beta.ppf(a / 2, k, n - k + 1)
    hi = 1.0 if k == n else beta.ppf(1 - a / 2, k + 1, n - k)
    return lo, hi


def test_either_fails_combines_the_two_components():
    (ex, ax), (ez, az) = (7, 900), (3, 1200)
    rate, (lo, hi) = either_fails([(ex, ax), (ez, az)])
    assert rate == pytest.approx(1 - (1 - 7 / 900) * (1 - 3 / 1200))
    assert rate < 7 / 900 + 3 / 1200  # the union, not the sum
    each = math.sqrt(0.95)  # two independent components, each at sqrt(0.95): jointly 0.95
    (lx, hx), (lz, hz) = _clopper_pearson(ex, ax, each), _clopper_pearson(ez, az, each)
    assert lo == pytest.approx(1 - (1 - lx) * (1 - lz), rel=1e-9)
    assert hi == pytest.approx(1 - (1 - hx) * (1 - hz), rel=1e-9)
    assert lo < rate < hi
    rate0, (lo0, hi0) = either_fails([(0, 500), (0, 800)])
    assert rate0 == 0 and lo0 == 0 and 0 < hi0 < 0.02
    assert either_fails([(0, 0), (1, 10)]) == (None, None)


@pytest.mark.parametrize("px,pz,nx,nz", [(0.004, 0.002, 400, 700), (0.02, 0.0005, 300, 300)])
def test_either_fails_interval_covers(px, pz, nx, nz):
    """Coverage over repeated experiments is at least 95% (small counts, where intervals go wrong)."""
    rng = np.random.default_rng(7)
    truth = 1 - (1 - px) * (1 - pz)
    trials = 1000
    hits = 0
    for kx, kz in zip(rng.binomial(nx, px, trials), rng.binomial(nz, pz, trials)):
        _, (lo, hi) = either_fails([(kx, nx), (kz, nz)])
        hits += lo <= truth <= hi
    assert hits / trials >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / trials)


def _stats(p=None, scale=None, proxy="X", shots=1000, discards=300, errors=0):
    noise = f"uniform:{p!r}" if p is not None else f"calibration*{scale!r}"
    meta = {"name": "dev", "device_sha256": "sha256:" + "0" * 64, "calibration_hash": "c", "wiring_hash": "w",
            "protocol": "cn20", "d": 3, "noise": noise, "family": "uniform" if p is not None else "calibration",
            "proxy": proxy, **({"p": p} if p is not None else {"scale": scale})}  # fmt: skip
    task = Task(stim.Circuit("H 0"), DecisionProgram((), (), (), 0, 0), 3, proxy, 3, meta)
    stat = sinter.TaskStats(strong_id=task.strong_id, decoder="ctrl", json_metadata=meta, shots=shots,
                            errors=errors, discards=discards)  # fmt: skip
    return task, stat


def test_plot_draws_calibration_scales_bars_and_upper_bounds(tmp_path):
    pairs = [_stats(p=1e-3, proxy=k, errors=0) for k in "XZ"]
    pairs += [_stats(p=2e-3, proxy=k, errors=e) for k, e in (("X", 4), ("Z", 2))]
    pairs += [_stats(scale=s, proxy=k, errors=e) for s in (0.5, 1.0) for k, e in (("X", 3), ("Z", 1))]
    task_list, stats = [t for t, _ in pairs], [s for _, s in pairs]
    rows = sweep.summarize(stats, task_list)
    import matplotlib.pyplot as plt

    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    fig = sweep.plot(rows, stats, tmp_path / "sweep.png")
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
    assert isinstance(fig, matplotlib.figure.Figure)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = fig.get_axes()
    titles = [a.get_title() for a in axes]
    assert "uniform noise" in titles and "calibration noise" in titles
    cal = axes[titles.index("calibration noise")]
    assert "scale" in cal.get_xlabel()
    # Error bars: the calibration curve's bar ends are its rows' intervals.
    want = sorted(v for r in rows if r["family"] == "calibration" for v in r["p_L_ci95"])
    got = sorted(float(y) for c in cal.collections for seg in c.get_segments() for y in (seg[0][1], seg[1][1]))
    assert got == pytest.approx(want)
    # The zero-error point: a downward triangle at its upper bound; nothing at an invented floor.
    uni = axes[titles.index("uniform noise")]
    zero = next(r for r in rows if r["noise"] == "uniform:0.001")
    assert zero["p_L"] == 0
    tri = [ln for ln in uni.get_lines() if ln.get_marker() == "v"]
    assert len(tri) == 1 and list(tri[0].get_xdata()) == [1e-3] and list(tri[0].get_ydata()) == [zero["p_L_ci95"][1]]
    ys = [y for a in axes[:2] for ln in a.get_lines() for y in ln.get_ydata()]
    assert min(ys) > 1e-9
    assert any("paper" in t for t in uni.get_legend_handles_labels()[1])


def test_rows_say_whether_the_protocol_beats_the_physical_baseline_and_where_it_breaks_even():
    pairs = []
    for scale, (ex, ez), base in ((0.1, (0, 0), 0.05), (0.2, (1, 0), 0.05), (0.5, (60, 40), 0.05), (1.0, (200, 100), 0.05)):
        for proxy, e in zip("XZ", (ex, ez)):
            task, stat = _stats(scale=scale, proxy=proxy, errors=e)
            task.metadata["baseline_error"] = base
            stat.json_metadata["baseline_error"] = base
            pairs.append((task, stat))
    rows = sweep.summarize([s for _, s in pairs], [t for t, _ in pairs])
    beats = {r["scale"]: r["beats_baseline"] for r in rows}
    # 700 accepted per proxy: 0 or 1 errors is surely below 5 %, 100 or more surely above
    for r in rows:
        lo, hi = r["p_L_ci95"]
        assert beats[r["scale"]] == (True if hi < 0.05 else False if lo > 0.05 else None)
    assert beats[0.1] is True and beats[0.2] is True and beats[0.5] is False
    (b,) = sweep.break_even(rows)
    assert (b["beats_up_to_scale"], b["loses_from_scale"]) == (0.2, 0.5)


def test_a_calibration_sweep_carries_the_baseline_at_its_scale():
    from ctrl.emulate.budget import baseline

    task_list = sweep.tasks([str(DEFAULT_DEVICE)], [3], ["calibration*0.5", "uniform:0.001"])
    scaled = [t.metadata for t in task_list if t.metadata["family"] == "calibration"]
    assert {m["baseline_error"] for m in scaled} == {baseline(load_device(DEFAULT_DEVICE), 0.5)["state_error"]}
    assert all("baseline_error" not in t.metadata for t in task_list if t.metadata["family"] == "uniform")

"""Sweeps: sinter tasks with the ctrl sampler, CSV statistics, resumed by running again."""

import sinter

from ctrl.cli import main
from ctrl.device import DEFAULT_DEVICE


def test_sweep_resumes_from_its_csv(tmp_path, capsys):
    csv = tmp_path / "stats.csv"
    args = ["sweep", "--device", str(DEFAULT_DEVICE), "--noise", "uniform:0.002", "--csv", str(csv)]
    assert main(args + ["--max-shots", "3000", "--plot", str(tmp_path / "p.png")]) == 0
    first = sinter.read_stats_from_csv_files(str(csv))
    assert sorted(s.json_metadata["proxy"] for s in first) == ["X", "Z"]
    assert all(s.shots >= 3000 for s in first)
    assert (tmp_path / "p.png").stat().st_size > 0
    assert main(args + ["--max-shots", "6000"]) == 0
    second = sinter.read_stats_from_csv_files(str(csv))
    for s in second:
        assert 6000 <= s.shots < 6000 + 20000
        assert 0 < s.discards < s.shots, "attempts are aborted by the program's own decision points"
        assert sum(v for k, v in s.custom_counts.items() if k.startswith("abort:")) == s.discards
    assert "acceptance" in capsys.readouterr().out

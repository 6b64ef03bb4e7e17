# %% [markdown]
# # ctrl from Python: compile, plot, emulate, sweep, and a lab run loaded as xarray
#
# A notebook in jupytext's "percent" format: open it in Jupyter (with jupytext) or VS Code as a notebook,
# or run it as a plain script: `cd docs && python example.py`. The figures go to the current folder
# (the PNGs beside this file are its output); every other file goes to a temporary folder.
# tests/test_example.py runs it.
#
# Every name used here is in `ctrl`'s top-level API (see `help(ctrl)`).

# %%
import secrets
import tempfile
from pathlib import Path

import numpy as np

import ctrl

FIGURES = Path.cwd()
work_dir = tempfile.TemporaryDirectory(prefix="ctrl-example-")  # removed when the session ends
WORK = Path(work_dir.name)

# %% [markdown]
# ## Compile
# The shipped device (16 transmons on one ZCU216 board) at distance 3: placement, native gates, schedule,
# and the QICK program. `write_outputs` writes the compile folder that `ctrl run` takes.

# %%
device = ctrl.load_device(ctrl.DEFAULT_DEVICE)
compiled = ctrl.compile_program(device, 3)
program = compiled.program
written = ctrl.write_outputs(compiled, WORK / "prog", device)
print(f"{device.name}: d={program.distance}, one attempt {program.seconds(program.duration) * 1e6:.1f} us, "
      f"{len(written)} files in the compile folder")

# %% [markdown]
# ## Plot
# `plot_timeline` returns a matplotlib `Figure` (no pyplot, the session's backend is left alone); in a
# notebook, `fig` as the last line of a cell displays it.

# %%
fig = ctrl.plot_timeline(program, out=FIGURES / "example_timeline.png")
print(f"timeline: {fig.get_size_inches()[0]:.0f} x {fig.get_size_inches()[1]:.0f} in, saved to example_timeline.png")

# %% [markdown]
# ## Emulate
# Stim, with the device's calibrated noise: acceptance (attempts that pass every decision point) and the
# logical error per accepted state, both with 95% intervals.

# %%
stats = ctrl.emulate_program(device, program, shots=5000, noise="calibration", seed=1)
lo, hi = stats["acceptance_ci95"]
print(f"acceptance {stats['acceptance']:.3f} (95% {lo:.3f}..{hi:.3f}) over {stats['shots']} attempts")
lo, hi = stats["logical_error_rate_ci95"]
print(f"p_L {stats['logical_error_rate']:.2e} per accepted state (95% {lo:.2e}..{hi:.2e})")

# %% [markdown]
# ## Sweep
# Two noise points (the calibration scaled by 0.5 and by 1), few shots each, into a sinter CSV.
# `ctrl.sweep.tasks` makes the sampling tasks (one per noise point and proxy, known by content);
# `ctrl.sweep.run(tasks, csv, max_shots, max_errors, executor)` samples them in seeded chunks, appends one
# sinter CSV row per chunk and resumes from the CSV it is given. Without an executor it samples in this
# process; `ctrl.collect.cluster.executor("local:4")` or `executor("tcp://scheduler:8786")` (a Dask
# scheduler) give the same numbers faster. `summarize` and `plot` take the statistics from there.

# %%
sweep_csv = WORK / "sweep.csv"
tasks = ctrl.sweep.tasks([str(ctrl.DEFAULT_DEVICE)], [3], ["calibration*0.5", "calibration*1"])
collected = ctrl.sweep.run(tasks, sweep_csv, max_shots=1000, max_errors=None)
rows = ctrl.sweep.summarize(collected, tasks)
for r in rows:
    print(f"{r['noise']:>16}: acceptance {r['acceptance']:.3f}, p_L {r['p_L']:.2e} "
          f"(95% {r['p_L_ci95'][0]:.1e}..{r['p_L_ci95'][1]:.1e}), {r['shots_X'] + r['shots_Z']} shots")
sweep_fig = ctrl.sweep.plot(rows, collected, FIGURES / "example_sweep.png")

# %% [markdown]
# ## A lab run, loaded as xarray
# `ctrl serve-board` and `ctrl run` from Python: an emulated board (threads in this process) on qick's
# Pyro4 path, and the client that drives a real board, appending to its HDF5 results file batch by batch
# (1000 attempts each). The key signs every message; here a throwaway one, so no key file is touched.
# `open_dataset` loads the file as an `xarray.Dataset`.

# %%
from ctrl.lab.board import serve  # noqa: E402
from ctrl.lab.client import run  # noqa: E402

key = secrets.token_hex(32).encode()
board = serve(ctrl.DEFAULT_DEVICE, port=0, noise="calibration*0.2", seed=1, key=key)
try:
    results_h5 = WORK / "results.h5"
    summary = run(f"127.0.0.1:{board.port}", WORK / "prog", 2000, results_h5, key=key)
finally:
    board.close()
print(f"lab run: {summary['shots']} attempts, acceptance {summary['acceptance']:.3f}")

ds = ctrl.open_dataset(results_h5)
print(ds)

# %%
# What a lab does next: select, group, reduce. Acceptance per batch, the board's verdicts against the
# rule's, and where the aborted attempts stopped.
per_batch = ds["accepted"].groupby(ds["batch"]).mean()
print("acceptance per batch:", np.round(per_batch.values, 3).tolist())
print("board and rule disagree on", int((ds["board_outcome"] != ds["rule_outcome"]).sum()), "attempts")
aborted = ds["board_outcome"].where(ds["board_outcome"] > 0, drop=True)
points, counts = np.unique(aborted.values.astype(int) - 1, return_counts=True)
print("aborts by decision point:", dict(zip(points.tolist(), counts.tolist())))
ones = ds["bit"].where(ds["bit"] >= 0).mean("shot")  # how often each thresholded window read 1
print("most often 1:", {str(k): round(float(v), 3) for k, v in
                        zip(ds["readout_label"].values, ones.values) if v == ones.max()})
print("provenance:", {k: ds.attrs[k] for k in ("device", "distance", "board", "calibration_hash", "seeds")})

# %% [markdown]
# A figure of the run: where aborted attempts stopped (from `board_outcome`), and the raw accumulated I of
# every readout window for the first 200 attempts (the `iq` array as it is). A Figure again, saved
# without pyplot.

# %%
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

lab_fig = Figure(figsize=(11, 4.2))
FigureCanvasAgg(lab_fig)
left, right = lab_fig.subplots(1, 2, width_ratios=[1, 2])
left.bar(points, counts, color="C3")
left.set_xlabel("decision point")
left.set_ylabel("aborted attempts")
left.set_title(f"{int((~ds['accepted']).sum())} of {ds.sizes['shot']} attempts aborted", fontsize=9)
shown = ds["iq"].sel(quadrature="I").isel(shot=slice(0, 200))
im = right.imshow(shown.values.T, aspect="auto", interpolation="nearest", cmap="viridis")
right.set_yticks(range(shown.sizes["readout"]))
right.set_yticklabels([f"ro{c}: {label}" for c, label in zip(ds["readout_channel"].values,
                                                             ds["readout_label"].values)], fontsize=5)
right.set_xlabel("attempt (shot)")
right.set_title("accumulated I per readout window", fontsize=9)
lab_fig.colorbar(im, ax=right, label="I (ADC units)")
lab_fig.tight_layout()
lab_fig.savefig(FIGURES / "example_lab.png", dpi=90)

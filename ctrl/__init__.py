"""ctrl: fault-tolerant |H> magic-state preparation, from the protocol down to QICK FPGA programs.

The command is `ctrl` (start with `ctrl dry-run`). The Python API, all importable from `ctrl` itself
(each name is imported on first use, so `import ctrl` and `import ctrl.x` stay cheap):

    import ctrl
    device = ctrl.load_device(ctrl.DEFAULT_DEVICE)     # ctrl.device.Device (a YAML device file)
    compiled = ctrl.compile_program(device, 3)         # ctrl.compile.pipeline.Compiled: .program (TimedProgram),
                                                       #   .report (dict), .native_counts, .placement
    ctrl.write_outputs(compiled, "prog", device)       # the compile folder (program.json, qick_<board>.json, ...);
                                                       #   returns the list of paths written
    fig = ctrl.plot_timeline(compiled.program)         # matplotlib Figure (pulse diagram); never touches
                                                       #   pyplot or the backend. out="t.png" also saves it
    stats = ctrl.emulate_program(device, compiled.program, shots=5000, noise="calibration", seed=0)
                                                       # dict: acceptance (+ _ci95), logical_error_rate (+ _ci95),
                                                       #   components, timing, provenance
    ctrl.sweep                                         # module ctrl.emulate.sweep: tasks(), run() (a resumable
                                                       #   sinter CSV), summarize() (rows of dicts), plot() (a Figure)
    res = ctrl.read_results("results.jsonl")          # a lab run's JSON lines: ctrl.lab.results.Results
                                                       #   (.header with provenance, .batches, .shots)
    ctrl.convert_results("results.jsonl", "results.h5")  # HDF5 (ctrl.lab.dataset); dict of what it wrote
    ds = ctrl.open_dataset("results.h5")               # xarray.Dataset: dims shot, readout, quadrature,
                                                       #   batch_index; provenance in ds.attrs
    ctrl.CtrlError                                     # the one exception for bad input, with a one-line message
    ctrl.__version__                                   # the installed distribution's version

Why `compile_program` and `emulate_program`, not `ctrl.compile` and `ctrl.emulate`: those two names are
subpackages (`ctrl/compile/`, `ctrl/emulate/`). Python sets a package's attribute to its subpackage when
the subpackage is imported, so a function `ctrl.compile` would be replaced by the module as soon as
anything ran `import ctrl.compile.pipeline`: which one you got would depend on import order. Here
`ctrl.compile` and `ctrl.emulate` are always the subpackages (imported on first attribute access), and
`import ctrl.compile.pipeline` / `from ctrl.emulate.run import emulate` work as for any package.

The rest of the library is its subpackages (`ctrl.device`, `ctrl.protocol`, `ctrl.backends`, ...), see
docs/architecture.md; an end-to-end example is docs/example.py.
"""

from __future__ import annotations

import importlib

# public name -> (module, attribute); None: the module itself
_API = {
    "load_device": ("ctrl.device", "load_device"),
    "DEFAULT_DEVICE": ("ctrl.device", "DEFAULT_DEVICE"),
    "compile_program": ("ctrl.compile.pipeline", "compile_program"),
    "write_outputs": ("ctrl.outputs", "write_outputs"),
    "plot_timeline": ("ctrl.backends.plot", "plot_timeline"),
    "emulate_program": ("ctrl.emulate.run", "emulate"),
    "sweep": ("ctrl.emulate.sweep", None),
    "read_results": ("ctrl.lab.dataset", "read_results"),
    "convert_results": ("ctrl.lab.dataset", "convert"),
    "open_dataset": ("ctrl.lab.dataset", "open_dataset"),
    "CtrlError": ("ctrl.errors", "CtrlError"),
}
# subpackages that share a name with an operation: attribute access imports them (see the docstring)
_SUBPACKAGES = ("compile", "emulate")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # looked up on first use: every `import ctrl.x` runs this module, and most never ask for these
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ctrl")
        except PackageNotFoundError:  # a source tree on sys.path that was never installed
            return "unknown"
    if name in _API:
        module, attr = _API[name]
        mod = importlib.import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it as an attribute too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))

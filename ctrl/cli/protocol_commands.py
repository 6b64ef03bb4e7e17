"""`ctrl protocol` and `ctrl simulate`: the protocol itself, before any device."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ctrl.cli.progress import _sampling, _Stages
from ctrl.cli.summaries import _human
from ctrl.errors import CtrlError
from ctrl.files import write_atomic

MAX_EXACT_SHOTS = 10**6  # the state-vector method runs about 1000 attempts per second


def _cmd_protocol(args: argparse.Namespace) -> int:
    from ctrl.noise.models import parse_noise
    from ctrl.protocol.cn20 import cn20_protocol
    from ctrl.sim.lower import to_stim

    noise = parse_noise(args.noise) if args.noise else None
    circuit = cn20_protocol(args.distance)
    out = Path(args.out)
    stim_text = str(to_stim(circuit, "X", noise)) + "\n"
    write_atomic(out / "protocol.json", circuit.to_json())
    write_atomic(out / "protocol.stim", stim_text)
    print(f"wrote {out / 'protocol.json'} and {out / 'protocol.stim'}: {circuit!r}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ctrl.noise.models import parse_noise
    from ctrl.sim.report import simulate

    noise = parse_noise(args.noise)
    if args.method == "statevector" and args.shots > MAX_EXACT_SHOTS:
        raise CtrlError(f"--shots {args.shots}: the statevector method runs at most {MAX_EXACT_SHOTS} shots "
                        f"(about 1000 per second); use the proxy method, or several runs with other seeds")  # fmt: skip
    if args.method == "statevector":
        from ctrl.collect.cluster import local_workers

        # its workers are forked with the simulator's checkpoints in memory: processes of this machine only
        workers = local_workers(args.cluster, "the statevector method")
        with _Stages(unit="chunk") as stages:  # single faults, then chunks of fault configurations
            result = simulate(args.distance, noise, args.shots, method=args.method, seed=args.seed, progress=stages,
                              workers=workers)  # fmt: skip
    else:
        with _sampling(args, ["simulate proxy X", "simulate proxy Z"], args.shots) as (pool, heard):
            result = simulate(args.distance, noise, args.shots, method=args.method, seed=args.seed, executor=pool,
                              progress=heard)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        print(_human(result))
    return 0

"""Sampling: tasks, the one sampler, seeded chunks on local processes or a Dask cluster, resumable CSVs.

`simulate` (the protocol IR), `emulate` (a compiled program) and `sweep` (many of either) build `Task`s
and hand them to `collect`; every number they report comes from `Stats` records summed here.
"""

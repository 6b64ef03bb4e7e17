"""Lab runs: `ctrl run` drives a QICK board through qick's Pyro4 remote interface (`client`), and
`ctrl serve-board` serves an emulated board on the same path (`board`; what it executes: `engine`;
readout outcomes from the device's noise: `source`); the HDF5 results file, written batch by batch
(`results`), loaded as an xarray Dataset (`dataset`), and the JSON lines of older runs read for
conversion (`jsonl`). docs/lab.md."""

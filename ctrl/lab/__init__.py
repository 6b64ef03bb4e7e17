"""Lab runs: `ctrl run` drives a QICK board through qick's Pyro4 remote interface (`client`), and
`ctrl serve-board` serves an emulated board on the same path (`board`, `source`); results files with
provenance, written batch by batch (`results`)."""

"""The research plan as a declarative file, run as trials on Ray, reported from files on disk.

plan.py      plan file format (TOML), validation, resolution of stage references into trials
selection.py final training loss, divergence, winner of a stage (pure functions)
trial.py     one trial: lerobot-train subprocess (resumable), evaluations, DONE.json
runner.py    the driver: Ray, stage order, live progress
resources.py CPUs/GPUs per trial checked against the cluster's nodes; every node sees the run's files
hub.py       datasets given by hub id: LeRobot's cache, fetched into once
overrides.py command-line changes to a plan (dataset, dataset seed, stages, evaluation episodes)
dry_run.py   `run --dry_run=true`: the trials a run would start, nothing started
report.py    report.md and PNGs from the files of an output_dir
cli.py       `actsmooth-experiment run|report|validate`

Ray and matplotlib are imported inside the functions that need them.
"""

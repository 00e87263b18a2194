"""Wall time and peak memory of a command and all its descendants (Ray's processes included).

    .venv/bin/python benchmarks/bench_experiment.py --json=runs/cpu-small.bench.json -- \
        .venv/bin/actsmooth-experiment run --plan=cpu-small --output_dir=runs/cpu-small

Samples the summed resident memory (RSS) of the process tree once a second; prints the wall time,
the peak of that sum, and the peak process count. RSS double-counts pages shared between
processes (Ray's shared object store), so the sum is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import psutil


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    peak_rss, peak_procs = 0, 0
    while proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        rss = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        peak_rss, peak_procs = max(peak_rss, rss), max(peak_procs, len(procs))
        time.sleep(args.interval)
    rc = proc.wait()
    wall = time.time() - t0
    figures = {"command": cmd, "exit_code": rc, "wall_s": round(wall, 1), "peak_tree_rss_gib": round(peak_rss / 2**30, 2),
               "peak_processes": peak_procs, "cpu_count": psutil.cpu_count(), "total_memory_gib": round(psutil.virtual_memory().total / 2**30, 1)}
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return rc


if __name__ == "__main__":
    sys.exit(main())

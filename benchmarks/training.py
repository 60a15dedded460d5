"""Seconds and peak memory of ``train_model`` on synthetic frames of N rows x ~100 features.

    .venv/bin/python -m benchmarks.training --rows 10000,100000 [--features 100] [--trials 8] [--json out.json]

Each size runs in its own child process (``--one N``), so its peak RSS (``ru_maxrss``) is that
size's alone; the child also reports the RSS before training (the frame itself) and tracemalloc's
peak of Python/numpy allocations during ``train_model``. Defaults are the spec's: robust scaling,
selection with 3 stability runs, random search of the default space with ``--trials`` trials.
``--trials-over N:T`` lowers the trial count for sizes above N (e.g. ``1000000:2``).

Synthetic features: log-normal counts (a third), normals, a few constants and near-duplicates (so
selection has work), 0.5% rows shifted far out (the anomalies). Not part of the test suite: the
figures depend on the machine and on what else runs on it (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

MIB = 1024 * 1024


def synthetic_frame(rows: int, features: int, seed: int = 7):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns = {}
    for j in range(features):
        kind = j % 10
        if kind in (0, 1, 2):
            columns[f"count_{j}"] = rng.lognormal(mean=1.0, sigma=1.2, size=rows)
        elif kind == 9 and j >= 10:
            columns[f"dup_{j}"] = columns[f"count_{j - 9}"] * 1.001  # r = 1 with an earlier count
        elif kind == 8 and j % 30 == 8:
            columns[f"const_{j}"] = np.full(rows, 3.0)
        else:
            columns[f"ratio_{j}"] = rng.normal(size=rows)
    frame = pd.DataFrame(columns)
    anomalies = rng.choice(rows, size=max(1, rows // 200), replace=False)
    shifted = [c for c in frame.columns if c.startswith(("count_", "dup_"))]
    frame.loc[frame.index[anomalies], shifted] *= 25.0
    return frame


def run_one(rows: int, features: int, trials: int) -> dict:
    from ndr_assets.models.training import train_model
    from ndr_resources.model_specs import IfTrainingSpec

    frame = synthetic_frame(rows, features)
    spec = IfTrainingSpec.model_validate({
        "feature_inputs": {"fg_a": {"s3_prefix": "s3://bench/fg_a/"}, "fg_c": {"s3_prefix": "s3://bench/fg_c/"}},
        "model": {"version": "bench"},
        "output": {"artifacts_s3_prefix": "s3://bench/a/", "report_s3_prefix": "s3://bench/r/"},
        "tuning": {"max_trials": trials, "timeout_seconds": 3600},
        "sampling": {"max_rows": max(rows, 100)},
    })
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    started = time.perf_counter()
    result = train_model(frame, list(frame.columns), spec, month="2026-06",
                         trained_on={"first_window_end": "", "last_window_end": "", "rows": rows, "sampled_rows": rows,
                                     "sampling": {}})
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report = result.report
    return {
        "rows": rows, "features": features, "kept": len(report["features"]["kept"]), "trials": len(result.trials),
        "seconds": round(seconds, 1), "tuning_seconds": report["tuning"]["seconds"],
        "frame_mib": round(frame.memory_usage(index=False).sum() / MIB),
        "rss_before_mib": round(rss_before / MIB), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "traced_peak_mib": round(traced_peak / MIB), "best_params": report["best_params"],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000", help="comma-separated row counts")
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--trials-over", default=None, help="ROWS:TRIALS, fewer trials above ROWS rows")
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:
        print(json.dumps(run_one(args.one, args.features, args.trials)))
        return []

    over_rows, over_trials = (int(v) for v in args.trials_over.split(":")) if args.trials_over else (None, None)
    figures = []
    for rows in (int(r) for r in args.rows.split(",")):
        trials = over_trials if over_rows is not None and rows > over_rows else args.trials
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.training", "--one", str(rows), "--features", str(args.features),
             "--trials", str(trials)], capture_output=True, text=True, check=True, env=os.environ.copy())
        figures.append(json.loads(child.stdout.strip().splitlines()[-1]))
        # Each size as it finishes: the large ones take long, and a stopped run keeps the rest.
        print(json.dumps(figures[-1]), file=sys.stderr, flush=True)

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = ("rows", "features", "kept", "trials", "seconds", "tuning_seconds", "frame_mib", "rss_before_mib",
              "peak_rss_mib", "traced_peak_mib")
    print(" | ".join(header))
    for f in figures:
        print(" | ".join(f"{f[h]:,}" if isinstance(f[h], int) else str(f[h]) for h in header))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return figures


if __name__ == "__main__":
    main()

"""Detection quality over generator seeds and scenario files: the demo, run once per (file, seed).

    .venv/bin/python -m benchmarks.detection                                    # default + stealthy, seeds 7, 8, 9
    .venv/bin/python -m benchmarks.detection --scenarios seeds/scenarios/stealthy.json --seeds 11 --json out.json

Each run is ``ndr demo`` (two tenants, the whole graph on the embedded defaults, the held-out day
scored) in its own home under ``--home`` (default: a temporary folder, deleted), with the file's
attacks and the seed's traffic. The table has one row per (file, seed, project, scenario): ROC-AUC,
PR-AUC, precision at 20 and the worst day-rank (the attack host's best rank among the day's
host-windows, on its worst day; the goal is <= 20), model / baseline (largest |z_mad|). The summary
gives per file and scenario kind the worst figure over seeds and projects. About 20 minutes per
run on 2 cores; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

SCENARIO_FILES = ("seeds/scenarios/default.json", "seeds/scenarios/stealthy.json")
SEEDS = (7, 8, 9)
K = 20

console = Console(width=max(Console().width, 140))


def run_one(home: Path, scenario_file: str, seed: int, days: float, start: str) -> list[dict]:
    from ndr_jobs.demo import run_demo
    from ndr_jobs.synthetic.scenario_files import load_scenario_file

    outcome = run_demo(home=home, days=days, start=datetime.fromisoformat(start), seed=seed, fresh=True,
                       scenarios=load_scenario_file(Path(scenario_file)))
    rows = []
    for evaluation in outcome.detection:
        for row in evaluation.report.as_rows():
            rows.append({"scenario_file": scenario_file, "seed": seed, "project": evaluation.project, **row})
    return rows


def _cell(model, baseline, digits: int = 3) -> str:
    def fmt(v):
        return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
    return f"{fmt(model)} / {fmt(baseline)}"


def _extreme(members: list[dict], key: str, pick):
    values = [m[key] for m in members if m[key] is not None]
    return pick(values) if values else None


def print_tables(rows: list[dict]) -> None:
    table = Table(title="Detection quality per run: model / baseline")
    for column in ("file", "seed", "project", "scenario", "positives", "ROC-AUC", "PR-AUC", f"P@{K}", "worst day-rank"):
        table.add_column(column, justify="left" if column in ("file", "project", "scenario") else "right")
    for r in rows:
        table.add_row(Path(r["scenario_file"]).stem, str(r["seed"]), r["project"], r["scenario"], str(r["positives"]),
                      _cell(r["roc_auc_model"], r["roc_auc_baseline"]), _cell(r["pr_auc_model"], r["pr_auc_baseline"]),
                      _cell(r.get(f"p_at_{K}_model"), r.get(f"p_at_{K}_baseline")),
                      _cell(r["worst_day_rank_model"], r["worst_day_rank_baseline"]))
    console.print(table)

    summary = Table(title="Worst over seeds and projects (goal: ROC-AUC >= 0.97, worst day-rank <= 20)")
    for column in ("file", "scenario kind", "runs", "lowest ROC-AUC model / baseline", "highest worst day-rank model / baseline"):
        summary.add_column(column, justify="left" if column in ("file", "scenario kind") else "right")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((Path(r["scenario_file"]).stem, r["kind"]), []).append(r)
    for (file, kind), members in sorted(groups.items()):
        summary.add_row(file, kind, str(len(members)),
                        _cell(_extreme(members, "roc_auc_model", min), _extreme(members, "roc_auc_baseline", min)),
                        _cell(_extreme(members, "worst_day_rank_model", max), _extreme(members, "worst_day_rank_baseline", max)))
    console.print(summary)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", action="append", help="scenario file (repeatable); default: default + stealthy")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated generator seeds")
    parser.add_argument("--days", type=float, default=4.0, help="days of traffic per run (as ndr demo)")
    parser.add_argument("--start", default="2026-03-30", help="first day of traffic (as ndr demo)")
    parser.add_argument("--home", type=Path, help="keep each run's NDR home under this folder")
    parser.add_argument("--json", type=Path, help="write every row as JSON here")
    args = parser.parse_args(argv)
    files = args.scenarios or list(SCENARIO_FILES)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    console.print(f"load average {os.getloadavg()[0]:.2f}; {len(files)} scenario file(s) x {len(seeds)} seed(s)")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ndr-detection-") as scratch:
        base = args.home or Path(scratch)
        for file in files:
            for seed in seeds:
                rows += run_one(base / f"{Path(file).stem}-seed{seed}", file, seed, args.days, args.start)
    print_tables(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
        console.print(f"rows written to {args.json}")


if __name__ == "__main__":
    main()

"""The demo: two synthetic tenants end to end on the embedded defaults, with a summary.

Provision the SQLite parameter store -> generate PAN-OS traffic into the local lake -> per project
one single-run backfill of each stage: delta, pair_counts and FG-A over every window; the first
month's inventory and FG-B; FG-C; the month's Isolation Forest (learnt from the month's first day);
predictions and the prediction-feature join of the held-out day after it, which alone carries the
attacks -> a summary of rows, DQ counters, the model, detection quality and the top host-windows. The Dagster instance lives under ``<home>/dagster`` so
``ndr dev`` (or ``dagster dev -w workspace.yaml`` with the same DAGSTER_HOME) shows the partitions.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT, first_baseline_month
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start
from ndr_jobs.backfill import BackfillOutcome, backfill_project, use_home
from ndr_jobs.synthetic.scenario_files import ScenarioFile
from ndr_resources.environments import WAREHOUSE_TABLES_ENV, LocalPaths
from ndr_resources.errors import NdrError

DEMO_BUCKET = "ndr-demo"
DEMO_TENANTS = (("acme", "finance"), ("globex", "retail"))
FEATURE_SPEC_VERSION = "v1"

# Wide enough for the summary tables when the output is not a terminal (CI logs, pipes).
console = Console(width=max(Console().width, 140))


def project_name_for(org1: str, org2: str) -> str:
    return f"ndr-{org1}-{org2}"


# Days of the first baseline month the demo's model learns from; the day after is scored, held out.
TRAINING_DAYS = 1


def demo_spec_overrides(start: datetime) -> dict[str, dict]:
    """Spec values that fit the baselines and the model to the demo's history (no code branch knows
    about the demo).

    The demo generates the last few days before a month boundary, so FG-B's 30d horizon is cut to
    those days and 7d to half of them (``fg_b_builder.horizon_days``); a real deployment keeps 7 and 30.
    Its model learns from the first day of the month it scores (``if_training.window.in_month_days``)
    instead of four whole months, and scores the day after, which alone carries the attacks.
    """
    history_days = (first_baseline_month(start) - start).days
    return {
        "fg_b_builder": {
            "horizon_days": {"7d": min(7, max(1, history_days // 2)), "30d": min(30, history_days)},
        },
        "if_training": {"window": {"in_month_days": TRAINING_DAYS}},
    }


@dataclass
class DemoOutcome:
    traffic: list[BackfillOutcome]
    baselines: list[BackfillOutcome]
    correlation: list[BackfillOutcome]
    models: list[BackfillOutcome]
    scoring: list[BackfillOutcome]
    detection: list = field(default_factory=list)  # ndr_jobs.evaluation.ProjectEvaluation per project


def run_demo(*, home: Path, days: float, start: datetime, seed: int, fresh: bool, verbose: bool = False,
             scenarios: ScenarioFile | None = None) -> DemoOutcome:
    """Provision, generate (``scenarios``: the attacks, default ``seeds/scenarios/default.json``), then per
    project: the 15-minute graph, the month's baselines, FG-C, the model, the held-out day's scores."""
    from ndr_jobs.synthetic.generate import generate_traffic
    from ndr_jobs.synthetic.writers import warehouse_tables_uri
    from ndr_resources.lake import LocalLake
    from ndr_resources.parameter_store.sqlite import SqliteParameterStore
    from seeds.provision import provision

    began = time.monotonic()
    # The project's partitions start at the first window touching its start date (the 23:53 window of
    # the day before); generation and the backfill start there too, so FG-A has no hole to refuse.
    start = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = start + timedelta(days=days)
    month = first_baseline_month(start)
    scored_from = month + timedelta(days=TRAINING_DAYS)  # the held-out day: after the model's training day
    if end <= scored_from + timedelta(minutes=2 * SLICE_MINUTES):
        raise NdrError(
            f"the demo needs traffic past {scored_from:%Y-%m-%d} (the first month boundary {month:%Y-%m-%d} plus "
            f"{TRAINING_DAYS} training day(s)) to score held-out windows: "
            f"start {start:%Y-%m-%d} + {days:g} day(s) ends {end:%Y-%m-%d %H:%M}"
        )
    if fresh and home.exists():  # only once the arguments are known to be good
        shutil.rmtree(home)
    paths = use_home(home)
    # Where the generator puts the synthetic machine table: the demo configures the embedded
    # warehouse there, as a user of `ndr generate` would.
    os.environ[WAREHOUSE_TABLES_ENV] = warehouse_tables_uri(DEMO_BUCKET)
    overrides = demo_spec_overrides(start)
    lake = LocalLake(root=str(paths.lake_root))
    store = SqliteParameterStore(path=str(paths.parameters_db))
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    outcome = DemoOutcome([], [], [], [], [])
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("Provisioning the parameter store", total=len(DEMO_TENANTS))
        for org1, org2 in DEMO_TENANTS:
            provision(
                store, lake, project_name=project_name_for(org1, org2), bucket=DEMO_BUCKET,
                feature_spec_version=FEATURE_SPEC_VERSION, org1=org1, org2=org2, start_date=start.date().isoformat(),
                spec_overrides=overrides,
            )
            progress.advance(task)
        task = progress.add_task(f"Generating {days:g} day(s) of traffic for {len(DEMO_TENANTS)} tenants", total=None)
        generation = generate_traffic(
            lake, bucket=DEMO_BUCKET, tenants=list(DEMO_TENANTS), start=start, days=days, seed=seed, fmt="jsonl",
            attacks_from=scored_from, scenarios=scenarios,
        )
        progress.update(task, total=1, completed=1)
        first = floor_to_window_start(start).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        last_start = floor_to_window_start(end - timedelta(seconds=1))
        last = last_start.strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        first_fg_c = floor_to_window_start(month + timedelta(minutes=SLICE_MINUTES)).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        first_scored = floor_to_window_start(scored_from).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        months = (f"{month:%Y-%m}", f"{last_start:%Y-%m}")
        stages = (
            ("traffic", "delta, pair_counts, fg_a", first, last, outcome.traffic),
            ("baselines", "machine_inventory, FG-B", *months, outcome.baselines),
            ("fg_c", "FG-C", first_fg_c, last, outcome.correlation),
            ("models", "training coverage, Isolation Forest", *months, outcome.models),
            ("scoring", "predictions, prediction-feature join (held-out day)", first_scored, last, outcome.scoring),
        )
        instance = dg.DagsterInstance.get()
        try:
            for kind, what, range_start, range_end, results in stages:
                for org1, org2 in DEMO_TENANTS:
                    project = project_name_for(org1, org2)
                    task = progress.add_task(f"{project}: {what} ({range_start} .. {range_end})", total=None)
                    results.append(
                        backfill_project(project, range_start, range_end, instance=instance, kind=kind, verbose=verbose)
                        .raise_on_failure()
                    )
                    progress.update(task, total=1, completed=1)
        finally:
            instance.dispose()
    _print_summary(outcome, generation, paths, time.monotonic() - began, overrides)
    _print_models(outcome)
    _print_detection_quality(outcome, scored_from, end)
    _print_top_host_windows(store, lake, outcome)
    console.print(f"Demo finished in {time.monotonic() - began:.0f} s. Open the UI with: [bold].venv/bin/ndr dev[/] "
                  "(then http://localhost:3000)")
    return outcome


def _print_models(outcome: DemoOutcome) -> None:
    table = _table("Monthly Isolation Forest (month of use) and the held-out day's scores",
                   ("project", "model", "trained on", "rows", "features kept", "dropped", "threshold",
                    "scored windows", "predictions", "labelled", "payloads", "run s", "failed checks"))
    for model_run, scoring_run in zip(outcome.models, outcome.scoring, strict=True):
        model = model_run.materializations.get("if_model", {})
        scores = scoring_run.materializations.get("predictions", {})
        table.add_row(
            model_run.project, str(model.get("model_version", "-")), str(model.get("training_range", "-")),
            str(model.get("rows", "-")), str(model.get("features_kept", "-")), str(model.get("features_dropped", "-")),
            f"{model.get('score_threshold', float('nan')):.3f}", str(scoring_run.partitions), str(scores.get("rows_out", "-")),
            str(scores.get("labelled_anomalous", "-")), str(scores.get("payloads", "-")),
            f"{model_run.seconds + scoring_run.seconds:.0f}",
            ", ".join(model_run.failed_checks + scoring_run.failed_checks) or "none",
        )
    console.print(table)


def _print_detection_quality(outcome: DemoOutcome, scored_from: datetime, end: datetime) -> None:
    """``ndr evaluate`` of the held-out day(s) per project: model vs the largest-|z_mad| baseline."""
    from ndr_jobs.evaluation import detection_table, evaluate_project
    from ndr_resources.spark import build_spark_session

    first_day = scored_from.date().isoformat()
    last_day = (end - timedelta(seconds=1)).date().isoformat()
    spark = build_spark_session()
    for run in outcome.scoring:
        evaluation = evaluate_project(run.project, first_day, last_day, spark=spark)
        outcome.detection.append(evaluation)
        console.print(detection_table(run.project, first_day, last_day, evaluation.report))
    console.print("worst day-rank: the attack host's best rank among the day's host-windows, on its worst day "
                  "(goal <= 20); also recorded on each project's if_model")


def _print_top_host_windows(store, lake, outcome: DemoOutcome, top: int = 8) -> None:
    """The highest-scored host-windows of the held-out day per project, with what drove each score."""
    from ndr_assets.models.schemas import PREDICTIONS_SCHEMA
    from ndr_assets.models.scoring_asset import versioned_uri
    from ndr_resources.model_specs import InferencePredictionsSpec
    from ndr_resources.spark import build_spark_session

    spark = build_spark_session()
    for run in outcome.scoring:
        spec = store.load_typed_spec(InferencePredictionsSpec, run.project, "inference_predictions", FEATURE_SPEC_VERSION)
        uri = versioned_uri(spec.output.s3_prefix, FEATURE_SPEC_VERSION)
        predictions = spark.read.schema(PREDICTIONS_SCHEMA).parquet(lake.spark_uri(uri))
        rows = predictions.orderBy(predictions.prediction_score.desc()).limit(top).collect()  # a bounded take
        table = Table(title=f"{run.project}: top {top} host-windows of the held-out day, and why")
        for column in ("host", "window end", "score", "label", "top contributing features (value vs baseline: contribution)"):
            table.add_column(column)
        for row in rows:
            why = "; ".join(f"{t['feature']} {t['value']:.3g} vs {t['baseline']:.3g}: {t['contribution']:+.3f}"
                            for t in row["top_features"][:3])
            table.add_row(row["host_ip"], f"{row['window_end_ts']:%Y-%m-%d %H:%M}", f"{row['prediction_score']:.3f}",
                          str(row["prediction_label"]), why)
        console.print(table)


def _table(title: str, columns: Sequence[str], left: Sequence[str] = ("project", "failed checks")) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", no_wrap=column == "project")
    return table


def _print_summary(outcome: DemoOutcome, generation, paths: LocalPaths, seconds: float, overrides: dict) -> None:
    table = _table("NDR demo: the 15-minute graph",
                   ("project", "windows", "raw records", "sessions", "quarantined", "skipped", "delta rows",
                    "pair rows", "FG-A rows", "run s", "failed checks"))
    for o in outcome.traffic:
        delta, pairs, fg_a = (o.materializations.get(k, {}) for k in ("delta", "pair_counts", "fg_a"))
        table.add_row(
            o.project, str(o.partitions),
            *(str(delta.get(k, "-")) for k in ("records_in", "records_published", "records_quarantined",
                                                "records_skipped", "rows_out")),
            str(pairs.get("rows_out", "-")), str(fg_a.get("rows_out", "-")),
            f"{o.seconds:.0f}", ", ".join(o.failed_checks) or "none",
        )
    console.print(table)
    for o in outcome.traffic:
        delta = o.materializations.get("delta", {})
        console.print(
            f"[bold]{o.project}[/] delta over the whole run: quarantined {delta.get('quarantined_by_reason', {})}, "
            f"skipped by rule {delta.get('skipped_by_reason', {})}, late sessions {delta.get('late_sessions', 0)}, "
            f"unknown actions {delta.get('unknown_action', 0)}"
        )
    console.print("raw records = sessions + quarantined + skipped (start logs, redeliveries, other log types, "
                  "sessions without a monitored host), per window")

    table = _table("Monthly baselines (FG-B, month of use; built from the month before)",
                   ("project", "month", "horizons", "new IPs", "host rows", "seg rows", "cold", "VDI", "pair rows",
                    "run s", "failed checks"))
    for o in outcome.baselines:
        inventory, host, meta, rarity = (
            o.materializations.get(k, {}) for k in ("machine_inventory", "fg_b_host", "fg_b_ip_metadata", "pair_rarity")
        )
        table.add_row(
            o.project, str(host.get("months", "-")), str(host.get("horizons", "-")), str(inventory.get("rows_out", "-")),
            str(host.get("rows_out", "-")), str(o.materializations.get("fg_b_segment", {}).get("rows_out", "-")),
            str(meta.get("cold_start_host_labels", "-")), str(meta.get("non_persistent_host_labels", "-")),
            str(rarity.get("rows_out_host", 0) + rarity.get("rows_out_segment", 0)),
            f"{o.seconds:.0f}", ", ".join(o.failed_checks) or "none",
        )
    console.print(table)
    console.print("cold / VDI: (host, time band) rows of ip_metadata that are cold-start / non-persistent machines, "
                  "summed over the horizons")
    console.print(f"Demo spec values (set through provisioning, see fg_b_builder.horizon_days): {overrides}")

    table = _table("FG-C: which baseline each host-window used, and what was imputed",
                   ("project", "windows", "rows", "columns", "host bl", "seg: cold", "seg: new", "pairs", "pairs: seg",
                    "pairs: 0", "run s", "failed checks"))
    for o in outcome.correlation:
        fg_c = o.materializations.get("fg_c", {})
        imputation = fg_c.get("imputation") or {}
        table.add_row(
            o.project, str(o.partitions), str(fg_c.get("rows_out", "-")), str(fg_c.get("columns", "-")),
            *(str(imputation.get(k, "-")) for k in ("host_baseline", "segment_cold_start", "segment_no_history", "pairs")),
            str(imputation.get("pairs_segment_imputed", 0) + imputation.get("pairs_segment_cold_start", 0)),
            str(imputation.get("pairs_zero_filled", "-")), f"{o.seconds:.0f}", ", ".join(o.failed_checks) or "none",
        )
    console.print(table)
    console.print("host bl / seg: cold / seg: new: host-windows scored against the host's own baseline, its segment's "
                  "(cold start or VDI), its segment's (no history); pairs: seg / 0: pair rarity taken from the segment, "
                  "zero-filled (never seen)")
    from ndr_jobs.synthetic.cli import summary_tables

    for generated in summary_tables(generation):
        console.print(generated)
    console.print(f"Lake (s3://{DEMO_BUCKET}/...): {paths.lake_root / DEMO_BUCKET}")
    console.print(f"Parameter store: {paths.parameters_db}")
    console.print(f"Features, baselines and scores computed in {seconds:.0f} s.")

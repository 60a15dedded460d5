"""The demo: two synthetic tenants end to end on the embedded defaults, with a summary.

Provision the SQLite parameter store -> generate PAN-OS traffic into the local lake -> one
single-run backfill per project of delta, pair_counts and FG-A over every window -> a summary of
windows, rows, DQ counters and locations. The Dagster instance lives under ``<home>/dagster`` so
``ndr dev`` (or ``dagster dev -w workspace.yaml`` with the same DAGSTER_HOME) shows the partitions.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start
from ndr_resources.environments import LocalPaths, current_environment, parameter_store_for
from ndr_resources.errors import NdrError
from ndr_resources.projects import load_project_configs

DEMO_BUCKET = "ndr-demo"
DEMO_TENANTS = (("acme", "finance"), ("globex", "retail"))
FEATURE_SPEC_VERSION = "v1"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

# Wide enough for the summary tables when the output is not a terminal (CI logs, pipes).
console = Console(width=max(Console().width, 140))


def project_name_for(org1: str, org2: str) -> str:
    return f"ndr-{org1}-{org2}"


@dataclass
class BackfillOutcome:
    project: str
    first_window: str
    last_window: str
    windows: int
    seconds: float
    materializations: dict[str, dict]
    checks_failed: list[str]
    error: str | None = None
    run_id: str | None = None  # the run's id in the instance (its event log has the step timings)

    def raise_on_failure(self) -> BackfillOutcome:
        if self.error:
            raise RuntimeError(
                f"backfill of {self.project} {self.first_window}..{self.last_window} failed: {self.error}"
                + (f" (failed checks: {', '.join(self.checks_failed)})" if self.checks_failed else "")
            )
        return self


def use_home(home: Path) -> LocalPaths:
    os.environ["NDR_HOME"] = str(home.resolve())
    os.environ["DAGSTER_HOME"] = str((home / "dagster").resolve())
    paths = LocalPaths.from_env()
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    return paths


def _window_key(value: str, *, last: bool) -> str:
    """Accepts a partition key or an ISO date (first/last window of that day)."""
    try:
        return datetime.strptime(value, FIFTEEN_MINUTE_KEY_FORMAT).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
    except ValueError:
        day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        edge = floor_to_window_start(day + timedelta(days=1) - timedelta(seconds=1)) if last else (
            floor_to_window_start(day + timedelta(minutes=SLICE_MINUTES - 1))
        )
        return edge.strftime(FIFTEEN_MINUTE_KEY_FORMAT)


def backfill_project(
    project: str,
    start: str,
    end: str,
    *,
    instance: dg.DagsterInstance | None = None,
    asset_selection: Sequence[str] | None = None,
) -> BackfillOutcome:
    """One run that materializes the project's 15-minute assets for every window in [start, end].

    ``asset_selection`` (asset names such as ``"delta"``) limits the run to those assets; all of
    the project's assets by default.
    """
    from ndr_jobs.definitions import build_definitions
    from ndr_jobs.jobs import traffic_job_name

    store = parameter_store_for(current_environment())
    routed = sorted(config.project_name for config in load_project_configs(store))
    if project not in routed:
        raise NdrError(f"project '{project}' has no enabled routing record in the parameter store; routed: {routed}")
    defs = build_definitions()
    job = defs.resolve_job_def(traffic_job_name(project))
    first, last = _window_key(start, last=False), _window_key(end, last=True)
    windows = len(job.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    began = time.monotonic()
    own_instance = instance is None
    instance = instance or dg.DagsterInstance.get()
    try:
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
            run_config=QUIET_LOGS,
            raise_on_error=False,
            asset_selection=[dg.AssetKey([project, name]) for name in asset_selection] if asset_selection else None,
        )
    finally:
        if own_instance:
            instance.dispose()
    materializations: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        name = mat.asset_key.path[-1]
        if name not in materializations and mat.metadata:
            materializations[name] = {k: v.value for k, v in mat.metadata.items()}
    failed_checks = [
        f"{e.asset_check_evaluation_data.asset_key.path[-1]}.{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
    ]
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure]
        error = failures[-1].message if failures else "see the run's logs"
        step_errors = [e.step_failure_data.error for e in failures if e.is_step_failure and e.step_failure_data.error]
        if step_errors:
            error = step_errors[0].message.strip()
    return BackfillOutcome(
        project, first, last, windows, time.monotonic() - began, materializations, failed_checks, error, result.run_id
    )


def run_demo(*, home: Path, days: float, start: datetime, seed: int, fresh: bool) -> list[BackfillOutcome]:
    from ndr_jobs.synthetic.generate import generate_traffic
    from ndr_resources.lake import LocalLake
    from ndr_resources.parameter_store.sqlite import SqliteParameterStore
    from seeds.provision import provision

    began = time.monotonic()
    if fresh and home.exists():
        shutil.rmtree(home)
    paths = use_home(home)
    # The project's partitions start at the first window touching its start date (the 23:53 window of
    # the day before); generation and the backfill start there too, so FG-A has no hole to refuse.
    start = datetime(start.year, start.month, start.day, tzinfo=UTC)
    lake = LocalLake(root=str(paths.lake_root))
    store = SqliteParameterStore(path=str(paths.parameters_db))
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("Provisioning the parameter store", total=len(DEMO_TENANTS))
        for org1, org2 in DEMO_TENANTS:
            provision(
                store, lake, project_name=project_name_for(org1, org2), bucket=DEMO_BUCKET,
                feature_spec_version=FEATURE_SPEC_VERSION, org1=org1, org2=org2, start_date=start.date().isoformat(),
            )
            progress.advance(task)
        task = progress.add_task(f"Generating {days:g} day(s) of traffic for {len(DEMO_TENANTS)} tenants", total=None)
        generation = generate_traffic(
            lake, bucket=DEMO_BUCKET, tenants=list(DEMO_TENANTS), start=start, days=days, seed=seed, fmt="jsonl"
        )
        progress.update(task, total=1, completed=1)
        outcomes = []
        end = start + timedelta(days=days)
        first = floor_to_window_start(start).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        last = (floor_to_window_start(end - timedelta(seconds=1))).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
        instance = dg.DagsterInstance.get()
        try:
            for org1, org2 in DEMO_TENANTS:
                project = project_name_for(org1, org2)
                task = progress.add_task(f"Backfilling {project}: delta, pair_counts, fg_a ({first} .. {last})", total=None)
                outcomes.append(backfill_project(project, first, last, instance=instance).raise_on_failure())
                progress.update(task, total=1, completed=1)
        finally:
            instance.dispose()
    _print_summary(outcomes, generation, paths, time.monotonic() - began)
    _print_findings(store, lake, start, end)
    return outcomes


def _print_findings(store, lake, start: datetime, end: datetime) -> None:
    """Per injected scenario: how high the scenario host ranks on the feature that should reveal it."""
    from ndr_assets.transforms.windows import window_starts
    from ndr_jobs.findings import scenario_findings
    from ndr_jobs.synthetic.writers import ground_truth_uri
    from ndr_resources.spark import build_spark_session
    from ndr_resources.specs import FgABuilderSpec

    table = Table(title="What FG-A shows about the injected attacks (before any model)")
    for column in ("project", "scenario", "host", "windows", "feature", "best value", "percentile of host-windows"):
        table.add_column(column)
    spark = build_spark_session()
    windows = window_starts(floor_to_window_start(start), end)
    for org1, org2 in DEMO_TENANTS:
        project = project_name_for(org1, org2)
        spec = store.load_typed_spec(FgABuilderSpec, project, "fg_a_builder", FEATURE_SPEC_VERSION)
        findings = scenario_findings(
            spark, lake, fg_a_uri=spec.fg_a_output.s3_prefix, ground_truth_uri=ground_truth_uri(DEMO_BUCKET, org1, org2),
            window_starts=windows,
        )
        by_scenario: dict[tuple[str, str], list] = {}
        for finding in findings:
            by_scenario.setdefault((finding.scenario, finding.host_ip), []).append(finding)
        for (scenario, host), group in sorted(by_scenario.items()):
            best = max(group, key=lambda f: -1 if f.percentile is None else f.percentile)
            table.add_row(
                project, scenario, host, str(len(group)), best.feature,
                "-" if best.value is None else f"{best.value:g}",
                "-" if best.percentile is None else f"{100 * best.percentile:.1f}%",
            )
    console.print(table)


def _print_summary(outcomes: list[BackfillOutcome], generation, paths: LocalPaths, seconds: float) -> None:
    table = Table(title="NDR demo: what was materialized")
    for column in ("project", "windows", "raw rows", "quarantined", "delta rows", "pair rows", "FG-A rows", "run s", "failed checks"):
        table.add_column(column, justify="right" if column not in ("project", "failed checks") else "left")
    for o in outcomes:
        delta, pairs, fg_a = (o.materializations.get(k, {}) for k in ("delta", "pair_counts", "fg_a"))
        table.add_row(
            o.project, str(o.windows), str(delta.get("rows_in", "-")), str(delta.get("rows_quarantined", "-")),
            str(delta.get("rows_out", "-")), str(pairs.get("rows_out", "-")), str(fg_a.get("rows_out", "-")),
            f"{o.seconds:.0f}", ", ".join(o.checks_failed) or "none",
        )
    console.print(table)
    for o in outcomes:
        counters = o.materializations.get("delta", {}).get("dq_counters", {})
        shown = {k: v for k, v in sorted(counters.items()) if v}
        console.print(f"[bold]{o.project}[/] reader and DQ counters over the whole run: {shown}")
    from ndr_jobs.synthetic.cli import summary_tables

    for generated in summary_tables(generation):
        console.print(generated)
    console.print(f"Lake (s3://{DEMO_BUCKET}/...): {paths.lake_root / DEMO_BUCKET}")
    console.print(f"Parameter store: {paths.parameters_db}")
    console.print(f"Demo finished in {seconds:.0f} s. Open the UI with: [bold].venv/bin/ndr dev[/] (then http://localhost:3000)")

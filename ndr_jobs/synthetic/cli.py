"""``ndr generate``: write seeded synthetic PAN-OS traffic into the local lake.

The lead's CLI registers :func:`generate` as a command (``app.command("generate")(generate)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ndr_jobs.synthetic.generate import GenerationProgress, GenerationSummary, generate_traffic
from ndr_jobs.synthetic.network import MAX_HOSTS, MIN_HOSTS
from ndr_jobs.synthetic.scenario_files import DEFAULT_SCENARIO_FILE, ScenarioFileError, load_scenario_file
from ndr_jobs.synthetic.writers import FORMATS, warehouse_tables_uri
from ndr_resources.environments import WAREHOUSE_TABLES_ENV, LocalPaths
from ndr_resources.lake import LocalLake

DEFAULT_TENANTS = "acme/finance,globex/retail"
DEFAULT_START = "2026-01-05T00:08"  # the first window of a Monday


def parse_tenants(text: str) -> list[tuple[str, str]]:
    """``"acme/finance,globex/retail"`` -> ``[("acme", "finance"), ("globex", "retail")]``."""
    tenants = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        org1, sep, org2 = item.partition("/")
        if not sep or not org1 or not org2 or "/" in org2:
            raise typer.BadParameter(f"tenant {item!r} is not of the form org1/org2", param_hint="--tenants")
        tenants.append((org1, org2))
    if not tenants:
        raise typer.BadParameter("no tenant given", param_hint="--tenants")
    return tenants


def parse_start(text: str, option: str = "--start") -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO date or date-time", param_hint=option) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def summary_tables(summary: GenerationSummary) -> tuple[Table, Table]:
    """Per-tenant counts, and one row per injected scenario."""
    counts = Table(
        title=f"{summary.start:%Y-%m-%d %H:%M} .. {summary.end:%Y-%m-%d %H:%M} UTC, "
        f"{summary.fmt}, seed {summary.seed}, scale {summary.scale:g}"
    )
    columns = ("tenant", "sessions", "windows", "batches", "late", "malformed", "non-TRAFFIC", "start logs",
               "redelivered", "respelled")  # fmt: skip
    for column in columns:
        counts.add_column(column, justify="left" if column == "tenant" else "right")
    for tenant in summary.tenants:
        counts.add_row(
            tenant.label,
            f"{tenant.sessions:,}",
            str(tenant.windows),
            str(tenant.mini_batches),
            str(tenant.late_sessions),
            str(tenant.malformed_total),
            str(tenant.non_traffic_lines),
            str(tenant.start_logs),
            str(tenant.redelivered),
            str(tenant.respelled_actions),
        )
    scenarios = Table(title="Injected scenarios (ground truth)")
    for column in ("tenant", "scenario", "host", "sessions", "windows", "first window"):
        scenarios.add_column(column, justify="right" if column in ("sessions", "windows") else "left")
    for tenant in summary.tenants:
        for s in tenant.scenarios:
            first = s.window_starts[0][:16].replace("T", " ") if s.window_starts else "-"
            # The name, and the kind when the file named it otherwise (several of one kind, say).
            label = s.name if s.name == s.kind else f"{s.name} ({s.kind})"
            scenarios.add_row(tenant.label, label, s.host_ip, str(s.sessions), str(len(s.window_starts)), first)
    return counts, scenarios


def generate(
    lake_root: Annotated[
        str | None,
        typer.Option(help="Root folder of the local lake (s3://bucket/key -> <root>/bucket/key; "
                     "default: lake/ in $NDR_HOME, else ./.ndr)."),
    ] = None,
    bucket: Annotated[str, typer.Option(help="Bucket the data is written to.")] = "ndr-demo",
    tenants: Annotated[str, typer.Option(help="Comma-separated org1/org2 tenants.")] = DEFAULT_TENANTS,
    start: Annotated[
        str, typer.Option(help="ISO date or date-time (UTC) of the first window; floored onto the 08/23/38/53 grid.")
    ] = DEFAULT_START,
    days: Annotated[
        float, typer.Option(min=0.01, help="How many days of windows to generate (fractions allowed).")
    ] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same arguments write the same bytes.")] = 7,
    fmt: Annotated[
        str, typer.Option("--format", help=f"File format of the mini-batches: {', '.join(FORMATS)}.")
    ] = "jsonl",
    scale: Annotated[
        float,
        typer.Option(min=0.001, help="Multiplies normal session rates (1.0 = ~30k sessions per weekday per tenant)."),
    ] = 1.0,
    hosts: Annotated[
        int, typer.Option(min=MIN_HOSTS, max=MAX_HOSTS, help="Approximate number of hosts per tenant.")
    ] = 120,
    late_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of sessions that arrive in the next window's mini-batch.")
    ] = 0.005,
    malformed_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Share of records with one injected defect (bad IP, negative elapsed or bytes, null dport).",
        ),
    ] = 0.001,
    scenarios: Annotated[
        Path,
        typer.Option(
            help="Scenario file (JSON list of attacks: kind, tenant, host, start, duration and the kind's "
            "parameters; see ndr_jobs/synthetic/scenario_files.py). seeds/scenarios/stealthy.json holds slow, "
            "spread-out attacks; [] injects none.",
        ),
    ] = DEFAULT_SCENARIO_FILE,
    attacks_from: Annotated[
        str | None,
        typer.Option(help="ISO date or date-time (UTC): inject attacks only from this instant on "
                     "(a scenario's '+<duration>' start counts from here)."),
    ] = None,
) -> None:
    """Generate seeded synthetic PAN-OS TRAFFIC mini-batches, machine inventory and attack ground truth."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        scenario_file = load_scenario_file(scenarios)
    except ScenarioFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenarios") from None
    tenant_list = parse_tenants(tenants)
    lake_root = lake_root or str(LocalPaths.from_env().lake_root)
    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TextColumn("{task.fields[sessions]:,} sessions"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks = {f"{o1}/{o2}": bar.add_task(f"{o1}/{o2}", total=None, sessions=0) for o1, o2 in tenant_list}

        def report(event: GenerationProgress) -> None:
            bar.update(tasks[event.tenant], completed=event.chunk, total=event.chunks, sessions=event.sessions)

        try:
            summary = generate_traffic(
                LocalLake(root=lake_root),
                bucket=bucket,
                tenants=tenant_list,
                start=parse_start(start),
                days=days,
                seed=seed,
                fmt=fmt,
                scale=scale,
                hosts_per_tenant=hosts,
                late_rate=late_rate,
                malformed_rate=malformed_rate,
                scenarios=scenario_file,
                progress=report,
                attacks_from=parse_start(attacks_from, "--attacks-from") if attacks_from else None,
            )
        except ScenarioFileError as exc:  # a scenario that cannot be placed in this range
            raise typer.BadParameter(str(exc), param_hint="--scenarios") from None
    for table in summary_tables(summary):
        console.print(table)
    console.print(
        f"{summary.total_sessions:,} sessions in {summary.seconds:.1f} s under {lake_root}/{bucket}/paloalto/ ; "
        f"ground truth under {lake_root}/{bucket}/synthetic/, inventory under {lake_root}/{bucket}/warehouse/dim/machines/",
        highlight=False, soft_wrap=True,
    )
    console.print(
        f"The machine inventory is the warehouse table dim.machines: point the embedded warehouse at it with "
        f"{WAREHOUSE_TABLES_ENV}={warehouse_tables_uri(bucket)}",
        highlight=False, soft_wrap=True,
    )

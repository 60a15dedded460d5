"""``ndr seed``: provision, validate and inspect the parameter and routing tables."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ndr_resources.environments import LocalPaths
from ndr_resources.errors import SpecError
from ndr_resources.lake import Lake, LocalLake, S3Lake, validate_bucket_name
from ndr_resources.parameter_store import DynamoDBParameterStore, ParameterStore, SqliteParameterStore
from ndr_resources.specs import DeltaInput
from seeds.provision import ProvisioningError, ValidationReport, provision, render_templates, validate_items

seed_app = typer.Typer(
    help="Provision, validate and inspect the parameter and routing tables.",
    no_args_is_help=True,
    add_completion=False,
)


class Backend(str, Enum):
    sqlite = "sqlite"
    dynamodb = "dynamodb"


class LakeKind(str, Enum):
    local = "local"
    s3 = "s3"


PROJECT = typer.Option(..., "--project", help="Project name, e.g. ndr-acme-finance.")
VERSION = typer.Option("v1", "--version", help="Feature spec version.")
def _bucket(name: str) -> str:
    try:
        return validate_bucket_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


BUCKET = typer.Option(..., "--bucket", callback=_bucket, help="Bucket of the project's data and code prefixes (S3 naming rules).")
ORG1 = typer.Option(..., "--org1", help="First org path fragment of the ingestion prefix.")
ORG2 = typer.Option(..., "--org2", help="Second org path fragment of the ingestion prefix.")
BACKEND = typer.Option(Backend.sqlite, "--backend", help="Parameter store backend.")
SQLITE_PATH = typer.Option(
    None, "--sqlite-path", help="SQLite file of the embedded store (default: parameters.sqlite in $NDR_HOME, else ./.ndr)."
)
ENDPOINT_URL = typer.Option(None, "--endpoint-url", help="AWS endpoint override (e.g. a moto server).")
REGION = typer.Option(None, "--region", help="AWS region (default: the AWS configuration).")
TEMPLATES_DIR = typer.Option(None, "--templates-dir", help="Folder of seed templates (default: seeds/templates).")
# The raw formats the readers accept, as the delta_builder spec model declares them.
INPUT_FORMATS = get_args(DeltaInput.model_fields["format"].annotation)


def _input_format(value: str | None) -> str | None:
    if value is not None and value not in INPUT_FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(INPUT_FORMATS)}")
    return value


INPUT_FORMAT = typer.Option(
    None, "--input-format", callback=_input_format,
    help=f"Format of the raw mini-batches ({', '.join(INPUT_FORMATS)}): sets delta_builder.input.format and "
    "pair_counts_builder.traffic_input.format (default: the templates').",
)


def input_format_overrides(input_format: str | None) -> dict[str, dict]:
    """``spec_overrides`` that make both readers of the raw mini-batches expect ``input_format``."""
    if input_format is None:
        return {}
    return {
        "delta_builder": {"input": {"format": input_format}},
        "pair_counts_builder": {"traffic_input": {"format": input_format}},
    }


START_DATE = typer.Option(
    None, "--start-date", help="First day of the project's 15-minute partitions (default: this month's first day)."
)


def _sqlite_path(sqlite_path: Path | None) -> Path:
    return sqlite_path or LocalPaths.from_env().parameters_db


def _store(backend: Backend, sqlite_path: Path | None, endpoint_url: str | None, region: str | None) -> ParameterStore:
    if backend is Backend.sqlite:
        return SqliteParameterStore(path=str(_sqlite_path(sqlite_path)))
    return DynamoDBParameterStore(region_name=region, endpoint_url=endpoint_url)


def _lake(kind: LakeKind, lake_root: Path | None, endpoint_url: str | None, region: str | None) -> Lake:
    if kind is LakeKind.local:
        return LocalLake(root=str(lake_root or LocalPaths.from_env().lake_root))
    return S3Lake(region_name=region, endpoint_url=endpoint_url)


def _print_report(console: Console, report: ValidationReport) -> None:
    if report.items:
        table = Table(title="Seed validation")
        for column in ("item", "kind", "status"):
            table.add_column(column, overflow="fold")
        for item in report.items:
            status = "[green]ok[/]" if item.ok else f"[red]{len(item.lines())} problem(s)[/]"
            kind = item.kind + (f" ({', '.join(item.steps)})" if item.steps else "")
            table.add_row(escape(item.item), escape(kind), status)
        console.print(table)
    # Problems quote regexes and placeholders such as [a-z0-9] and <bucket>: never read them as markup.
    for problem in report.problems:
        console.print(f"[red]*[/] {escape(problem)}", highlight=False, soft_wrap=True)
    for item in report.items:
        for line in item.lines():
            console.print(f"[red]{escape(item.item)}[/]: {escape(line)}", highlight=False, soft_wrap=True)


@seed_app.command("provision")
def provision_command(
    project: str = PROJECT,
    bucket: str = BUCKET,
    version: str = VERSION,
    org1: str = ORG1,
    org2: str = ORG2,
    start_date: str = START_DATE,
    input_format: str | None = INPUT_FORMAT,
    backend: Backend = BACKEND,
    sqlite_path: Path = SQLITE_PATH,
    lake: LakeKind = typer.Option(LakeKind.local, "--lake", help="Where the port-set reference file goes."),
    lake_root: Path | None = typer.Option(
        None, "--lake-root", help="Root folder of the local lake (default: lake/ in $NDR_HOME, else ./.ndr)."
    ),
    endpoint_url: str = ENDPOINT_URL,
    region: str = REGION,
    templates_dir: Path = TEMPLATES_DIR,
) -> None:
    """Create both tables, then validate and insert every seed item and the routing record."""
    console = Console()
    try:
        result = provision(
            _store(backend, sqlite_path, endpoint_url, region),
            _lake(lake, lake_root, endpoint_url, region),
            project_name=project,
            bucket=bucket,
            feature_spec_version=version,
            org1=org1,
            org2=org2,
            start_date=start_date,
            templates_dir=templates_dir,
            spec_overrides=input_format_overrides(input_format),
        )
    except ProvisioningError as exc:
        _print_report(console, exc.report)
        console.print("[red]Nothing was written.[/]")
        raise typer.Exit(1) from None
    except SpecError as exc:
        console.print(f"[red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"Provisioned {result.project_name} ({result.feature_spec_version}, {backend.value})")
    table.add_column("table")
    table.add_column("key", overflow="fold")
    for key in result.items:
        table.add_row("parameters", key)
    table.add_row("routing", result.routing_key)
    console.print(table)
    console.print(f"port sets: {escape(result.port_sets_uri)}", highlight=False, soft_wrap=True)


@seed_app.command("validate")
def validate_command(
    project: str = PROJECT,
    bucket: str = BUCKET,
    version: str = VERSION,
    org1: str = ORG1,
    org2: str = ORG2,
    start_date: str = START_DATE,
    templates_dir: Path = TEMPLATES_DIR,
) -> None:
    """Render and validate the seed items without writing anything; exit 1 on any problem."""
    console = Console()
    try:
        items = render_templates(project, bucket, version, org1, org2, start_date, templates_dir=templates_dir)
        report = validate_items(items)
    except ProvisioningError as exc:
        report = exc.report
    _print_report(console, report)
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"[green]{len(report.items)} item(s) valid.[/]")


@seed_app.command("show")
def show_command(
    project: str = PROJECT,
    job: str = typer.Option(..., "--job", help="Logical job name, e.g. delta_builder."),
    version: str = VERSION,
    backend: Backend = BACKEND,
    sqlite_path: Path = SQLITE_PATH,
    endpoint_url: str = ENDPOINT_URL,
    region: str = REGION,
) -> None:
    """Print one item of the parameters table as JSON (``<job>#<version>``, or a matching legacy item)."""
    err = Console(stderr=True)
    if backend is Backend.sqlite and not _sqlite_path(sqlite_path).is_file():
        err.print(f"[red]no parameter store at {escape(str(_sqlite_path(sqlite_path)))}; run `ndr seed provision` first[/]")
        raise typer.Exit(1)
    try:
        item = _store(backend, sqlite_path, endpoint_url, region).load_job_item(project, job, version)
    except (SpecError, ValueError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(item, indent=2, sort_keys=True))

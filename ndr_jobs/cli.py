"""The ``ndr`` command line: provisioning, synthetic traffic, backfills, the demo, the UI."""

from __future__ import annotations

import functools
import subprocess
import sys
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import typer
from rich.console import Console

from ndr_resources.errors import NdrError

from ndr_jobs.catalog_cli import catalog_app
from ndr_jobs.synthetic.cli import generate
from seeds.cli import seed_app

app = typer.Typer(
    help="NDR feature platform: provision tenants, generate traffic, backfill features, run the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
# The beta parameters we rely on (single-run backfill policy, non-existent upstream partitions) are
# documented choices; their warnings would drown the command's own output.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Our own errors already say what is wrong and where: print them without a stack trace."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (NdrError, RuntimeError) as exc:
            Console(stderr=True).print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None

    return wrapper
app.add_typer(seed_app, name="seed", help="Provision and inspect the parameter and routing tables.")
app.command("generate", help="Generate synthetic PAN-OS TRAFFIC mini-batches into the lake.")(generate)
app.add_typer(catalog_app, name="catalog", help="The feature catalog: counts per group, Markdown and Parquet.")


@app.command()
@friendly_errors
def demo(
    home: Path = typer.Option(Path(".ndr"), help="Where the embedded store, lake and Dagster instance live."),
    days: float = typer.Option(5.0, help="Days of synthetic traffic per tenant (must cross the first month boundary)."),
    start: str = typer.Option("2026-03-28", help="First day of traffic and of the projects (UTC, ISO date)."),
    seed: int = typer.Option(7, help="Random seed of the generator."),
    fresh: bool = typer.Option(True, help="Start from an empty lake, store and instance."),
) -> None:
    """Provision two tenants, generate traffic, run the 15-minute graph, the month's baselines and FG-C; summarize."""
    from ndr_jobs.demo import run_demo

    run_demo(home=home, days=days, start=datetime.fromisoformat(start), seed=seed, fresh=fresh)


@app.command()
@friendly_errors
def backfill(
    project: str = typer.Option(..., help="Project name, e.g. ndr-acme-finance."),
    start: str = typer.Option(..., help="First partition: a window start such as 2026-01-05-00:08, a date, or a month (baselines)."),
    end: str = typer.Option(..., help="Last partition (inclusive), same forms as --start."),
    kind: str = typer.Option("traffic", help="traffic (delta, pair_counts, fg_a), fg_c, or baselines (inventory + FG-B, months)."),
    home: Path = typer.Option(Path(".ndr"), help="NDR_HOME of the embedded defaults."),
) -> None:
    """Materialize one of a project's jobs for a partition range as one run."""
    from ndr_jobs.backfill import backfill_project, use_home

    use_home(home)
    outcome = backfill_project(project, start, end, kind=kind).raise_on_failure()
    Console().print(
        f"{outcome.project}: {outcome.partitions} partition(s) {outcome.first_partition} .. {outcome.last_partition} "
        f"materialized in {outcome.seconds:.0f} s; failed checks: {', '.join(outcome.failed_checks) or 'none'}"
    )


@app.command()
def dev(
    home: Path = typer.Option(Path(".ndr"), help="NDR_HOME of the embedded defaults."),
    port: int = typer.Option(3000, help="Port of the Dagster UI."),
) -> None:
    """Open the Dagster UI on this project's instance (``dagster dev -w workspace.yaml``)."""
    from ndr_jobs.backfill import use_home

    use_home(home)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(port)]
    raise typer.Exit(subprocess.call(cmd))


if __name__ == "__main__":
    app()

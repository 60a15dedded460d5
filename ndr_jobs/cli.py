"""The ``ndr`` command line: provisioning, synthetic traffic, backfills, the demo, the UI."""

from __future__ import annotations

import functools
import logging
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
from rich.markup import escape

from ndr_jobs.catalog_cli import catalog_app
from ndr_jobs.synthetic.cli import generate
from ndr_resources.environments import LocalPaths
from ndr_resources.errors import NdrError
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
HOME = typer.Option(
    None, "--home", help="Folder of the embedded store, lake and Dagster instance (default: $NDR_HOME, else ./.ndr)."
)
VERBOSE = typer.Option(
    False, "--verbose", help="Also print Dagster's step events and failure traces (they are always in the run's event log)."
)


def quiet_terminal(*, verbose: bool) -> None:
    """Keep library warnings and log records off the terminal unless ``--verbose``: the command's
    summary or error is the output. Dagster's run events are quieted in the run config instead
    (:func:`ndr_jobs.backfill.console_logs`)."""
    if verbose:
        return
    warnings.simplefilter("ignore")
    for name in ("py4j", "dagster", "pyspark"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Our own errors already say what is wrong and where: print them without a stack trace."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (NdrError, RuntimeError) as exc:
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


app.add_typer(seed_app, name="seed", help="Provision and inspect the parameter and routing tables.")
app.command("generate", help="Generate synthetic PAN-OS TRAFFIC mini-batches into the lake.")(generate)
app.add_typer(catalog_app, name="catalog", help="The feature catalog: counts per group, Markdown and Parquet.")


@app.command()
@friendly_errors
def demo(
    home: Path | None = HOME,
    days: float = typer.Option(4.0, help="Days of synthetic traffic per tenant (must reach a day past the first month's first)."),
    start: str = typer.Option("2026-03-30", help="First day of traffic and of the projects (UTC, ISO date)."),
    seed: int = typer.Option(7, help="Random seed of the generator."),
    fresh: bool = typer.Option(True, help="Start from an empty lake, store and instance."),
    scenarios: Path | None = typer.Option(
        None, help="Scenario file of the attacks injected on the held-out day (default: seeds/scenarios/default.json; "
        "seeds/scenarios/stealthy.json holds slow, spread-out ones)."
    ),
    verbose: bool = VERBOSE,
) -> None:
    """Provision two tenants, generate traffic, run the 15-minute graph, the month's baselines, FG-C, the model and
    its scores of a held-out day; evaluate them against the ground truth and summarize."""
    from ndr_jobs.demo import run_demo
    from ndr_jobs.synthetic.scenario_files import ScenarioFileError, load_scenario_file

    try:
        scenario_file = load_scenario_file(scenarios) if scenarios else None
    except ScenarioFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenarios") from None
    quiet_terminal(verbose=verbose)
    paths = LocalPaths.resolve(home)
    Console().print(f"NDR home: {paths.home}" + (" (emptied first)" if fresh else ""), highlight=False, soft_wrap=True)
    run_demo(home=paths.home, days=days, start=datetime.fromisoformat(start), seed=seed, fresh=fresh, verbose=verbose,
             scenarios=scenario_file)


def parse_assets(text: str | None) -> list[str] | None:
    """``"delta,pair_counts"`` -> ``["delta", "pair_counts"]``; nothing given -> every asset of the job."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


@app.command()
@friendly_errors
def backfill(
    project: str = typer.Option(..., help="Project name, e.g. ndr-acme-finance."),
    start: str = typer.Option(
        ..., help="First partition: a window start such as 2026-01-05-00:08, a day (its 96 windows: 23:53 of the "
        "day before to 23:38), or a month (baselines)."
    ),
    end: str = typer.Option(..., help="Last partition (inclusive), same forms as --start."),
    kind: str = typer.Option("traffic", help="traffic (delta, pair_counts, fg_a), fg_c, scoring (predictions + join), or months: baselines (inventory + FG-B), models (coverage + if_model)."),
    assets: str | None = typer.Option(
        None, "--assets", help="Comma-separated assets of the kind's job to run, e.g. delta,pair_counts (default: all)."
    ),
    home: Path | None = HOME,
    verbose: bool = VERBOSE,
) -> None:
    """Materialize one of a project's jobs for a partition range as one run; exit 1 if a step or a blocking check failed."""
    from ndr_jobs.backfill import backfill_project, use_home

    quiet_terminal(verbose=verbose)
    use_home(home)
    outcome = backfill_project(
        project, start, end, kind=kind, asset_selection=parse_assets(assets), verbose=verbose
    ).raise_on_failure()
    non_blocking = ", ".join(f"{check} (non-blocking)" for check in outcome.failed_checks)
    Console().print(
        f"{outcome.project}: {outcome.partitions} partition(s) {outcome.first_partition} .. {outcome.last_partition} "
        f"materialized in {outcome.seconds:.0f} s; failed checks: {non_blocking or 'none'}",
        highlight=False, soft_wrap=True,
    )


@app.command()
@friendly_errors
def evaluate(
    project: str = typer.Option(..., help="Project name, e.g. ndr-acme-finance."),
    start: str = typer.Option(..., help="First day (YYYY-MM-DD; its 96 windows, 23:53 of the day before to 23:38)."),
    end: str = typer.Option(..., help="Last day (inclusive, YYYY-MM-DD)."),
    k: str = typer.Option("10,20,50", help="Comma-separated k of precision at k."),
    ground_truth: str | None = typer.Option(
        None, help="s3:// URI of the ground truth CSV (default: the generator's, in the project's ingestion bucket)."
    ),
    home: Path | None = HOME,
    verbose: bool = VERBOSE,
) -> None:
    """Score the project's predictions against the synthetic ground truth (ROC-AUC, PR-AUC, P@k, day-rank)
    next to the largest-|z_mad| baseline; print the table and record it on the month's if_model."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ndr_jobs.backfill import use_home
    from ndr_jobs.evaluation import TOP_OF_DAY, detection_table, evaluate_project

    quiet_terminal(verbose=verbose)
    use_home(home)
    try:
        k_values = tuple(int(part) for part in k.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{k!r} is not a comma-separated list of integers", param_hint="--k") from None
    if not k_values or min(k_values) < 1:
        raise typer.BadParameter("give at least one k >= 1", param_hint="--k")
    console = Console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        bar.add_task(f"{project}: evaluating {start} .. {end}", total=None)
        outcome = evaluate_project(project, start, end, k_values=k_values, ground_truth=ground_truth)
    console.print(detection_table(project, start, end, outcome.report))
    console.print(f"worst day-rank: the scenario host's best rank in its day, on its worst day (goal: <= {TOP_OF_DAY}); "
                  f"predictions {outcome.predictions_uri}, ground truth {outcome.ground_truth_uri}",
                  highlight=False, soft_wrap=True)
    where = ", ".join(outcome.recorded_months)
    console.print(f"Recorded on {project}/if_model for {where}" if where else "No Dagster instance: not recorded",
                  highlight=False)


@app.command()
def dev(
    home: Path | None = HOME,
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

"""``ndr catalog``: the feature catalog (spec 003 item 15) as counts, Markdown and Parquet.

Without ``--project`` the catalog describes the v1 defaults with ``s3://<bucket>/...`` templates;
with it, the FG-B, FG-C and inventory specs and every dataset location come from the project's
items in the parameter store (``NDR_ENV``/``NDR_HOME`` choose the store, as for every command).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ndr_assets.catalog import (
    GROUPS,
    FeatureEntry,
    build_catalog,
    column_counts,
    to_markdown,
    to_parquet,
)
from ndr_assets.catalog.builder import fg_c_lists
from ndr_assets.catalog.helper_formulas import fallback_names
from ndr_resources.errors import NdrError, SpecError
from ndr_resources.parameter_store.base import versioned_job_key
from ndr_resources.specs import (
    DeltaBuilderSpec,
    FgABuilderSpec,
    FgBBuilderSpec,
    FgCBuilderSpec,
    MachineInventoryUnloadSpec,
    PairCountsBuilderSpec,
)

catalog_app = typer.Typer(
    help="The feature catalog generated from the code: counts per group, Markdown and Parquet.",
    no_args_is_help=True,
    add_completion=False,
)

MARKDOWN_FILE = "feature_catalog.md"
PARQUET_FILE = "feature_catalog.parquet"

PROJECT = typer.Option(None, "--project", help="Read specs and dataset locations of this project from the parameter store.")
VERSION = typer.Option("v1", "--version", help="Feature spec version.")
HOME = typer.Option(
    None, "--home", help="Use the embedded store and lake of this folder (default: NDR_ENV's, with $NDR_HOME or ./.ndr)."
)


@dataclass
class CatalogInputs:
    """What ``build_catalog`` takes from a project's items, and the items that were not there."""

    fg_b_spec: FgBBuilderSpec | None = None
    fg_c_spec: FgCBuilderSpec | None = None
    inventory_spec: MachineInventoryUnloadSpec | None = None
    storage_paths: dict[str, str] = field(default_factory=dict)
    missing_items: list[str] = field(default_factory=list)


def load_catalog_inputs(store: Any, project: str, version: str) -> CatalogInputs:
    """Specs and dataset locations of ``project`` from a ParameterStore; absent items are listed, not fatal."""
    from ndr_assets.baselines.datasets import fg_b_table_uri
    from ndr_assets.datasets import delta_host_slices_uri, delta_peer_slices_uri

    inputs = CatalogInputs()

    def load(model: type, job: str) -> Any:
        try:
            return store.load_typed_spec(model, project, job, version)
        except SpecError as exc:
            if exc.key != "job_name":  # present but malformed: the operator must fix it
                raise
            inputs.missing_items.append(versioned_job_key(job, version))
            return None

    paths = inputs.storage_paths
    if (delta := load(DeltaBuilderSpec, "delta_builder")) is not None:
        paths["delta_host_slices"] = delta_host_slices_uri(delta.output.s3_prefix)
        paths["delta_peer_slices"] = delta_peer_slices_uri(delta.output.s3_prefix)
    if (pairs := load(PairCountsBuilderSpec, "pair_counts_builder")) is not None:
        paths["pair_counts"] = pairs.pair_counts_output.s3_prefix
    if (fg_a := load(FgABuilderSpec, "fg_a_builder")) is not None:
        paths["fg_a"] = fg_a.fg_a_output.s3_prefix
    if (fg_b := load(FgBBuilderSpec, "fg_b_builder")) is not None:
        inputs.fg_b_spec = fg_b
        for group, table in (
            ("fg_b_host", "host"),
            ("fg_b_segment", "segment"),
            ("fg_b_ip_metadata", "ip_metadata"),
            ("pair_rarity_host", "pair_rarity_host"),
            ("pair_rarity_segment", "pair_rarity_segment"),
        ):
            paths[group] = fg_b_table_uri(fg_b.fg_b_output.s3_prefix, table)
    if (fg_c := load(FgCBuilderSpec, "fg_c_builder")) is not None:
        inputs.fg_c_spec = fg_c
        paths["fg_c"] = fg_c.fg_c_output.s3_prefix
    if (inventory := load(MachineInventoryUnloadSpec, "machine_inventory_unload")) is not None:
        inputs.inventory_spec = inventory
        paths["machine_inventory"] = inventory.output.s3_prefix
    return inputs


def _resources(home: Path | None) -> dict[str, Any]:
    """Parameter store and lake: the embedded ones of ``home`` if given, else those of ``NDR_ENV``."""
    from ndr_resources.environments import LocalPaths, current_environment, resources_for
    from ndr_resources.lake import LocalLake
    from ndr_resources.parameter_store import SqliteParameterStore

    if home is None:
        return resources_for(current_environment())
    paths = LocalPaths.resolve(home)
    return {
        "parameter_store": SqliteParameterStore(path=str(paths.parameters_db)),
        "lake": LocalLake(root=str(paths.lake_root)),
    }


def _catalog(project: str | None, version: str, home: Path | None, console: Console) -> tuple[list[FeatureEntry], CatalogInputs]:
    if project is None:
        return build_catalog(feature_spec_version=version), CatalogInputs()
    inputs = load_catalog_inputs(_resources(home)["parameter_store"], project, version)
    if inputs.missing_items:
        console.print(
            f"[yellow]{escape(project)}: no item {', '.join(inputs.missing_items)}; v1 defaults and "
            "<bucket> templates used for them[/]",
            highlight=False,
            soft_wrap=True,
        )
    entries = build_catalog(
        feature_spec_version=version,
        fg_b_spec=inputs.fg_b_spec,
        fg_c_spec=inputs.fg_c_spec,
        storage_paths=inputs.storage_paths,
        inventory_spec=inputs.inventory_spec,
    )
    return entries, inputs


def _fail(exc: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(1)


def print_counts(console: Console, entries: list[FeatureEntry], fg_c_spec: FgCBuilderSpec | None, version: str) -> None:
    """The rich table of counts per group, and how the FG-C count is made up."""
    table = Table(title=f"Feature catalog {version}")
    table.add_column("group", no_wrap=True)
    table.add_column("model inputs", justify="right")
    for column in ("features", "keys", "auxiliary", "columns"):
        table.add_column(column, justify="right")
    counts = column_counts(entries)
    for group, c in counts.items():
        model_inputs = sum(e.is_model_input for e in entries if e.feature_group == group)
        model = f"{model_inputs:,}" if GROUPS[group].model_input else "no"
        table.add_row(group, model, f"{c['features']:,}", str(c["keys"]), str(c["auxiliary"]), f"{c['columns']:,}")
    total_features = sum(c["features"] for c in counts.values())
    total_columns = sum(c["columns"] for c in counts.values())
    table.add_row("total", "", f"{total_features:,}", "", "", f"{total_columns:,}", style="bold")
    console.print(table)
    lists = fg_c_lists(fg_c_spec or FgCBuilderSpec.model_construct(), version)
    transforms = len(lists.metric_columns) * len(lists.transforms) * len(lists.horizons)
    console.print(
        f"FG-C: {len(lists.metric_columns)} metric columns x {len(lists.transforms)} transforms "
        f"({', '.join(lists.transforms)}) x {len(lists.horizons)} horizon(s) = {transforms:,} transform features "
        f"+ {counts['fg_c']['features'] - transforms} suspicion/rare-pair features = {counts['fg_c']['features']:,}",
        highlight=False,
        soft_wrap=True,
    )


@catalog_app.command("show")
def show(project: str | None = PROJECT, version: str = VERSION, home: Path | None = HOME) -> None:
    """Print the number of features per catalog group (keys and auxiliary columns counted apart)."""
    console = Console()
    try:
        entries, inputs = _catalog(project, version, home, console)
        print_counts(console, entries, inputs.fg_c_spec, version)
        pending = fallback_names()
        if pending:
            names = ", ".join(f"{module.rsplit('.', 1)[-1]}:{name}" for module, name in sorted(pending))
            console.print(
                f"[yellow]{len(pending)} formula(s) not documented by their module's FORMULAS, taken from "
                f"ndr_assets.catalog.helper_formulas.FALLBACK_FORMULAS: {escape(names)}[/]",
                highlight=False,
                soft_wrap=True,
            )
    except NdrError as exc:
        raise _fail(exc) from None


@catalog_app.command("write")
def write(
    out: str = typer.Option(..., "--out", help="Folder (or s3:// prefix) for feature_catalog.md and .parquet."),
    project: str | None = PROJECT,
    version: str = VERSION,
    home: Path | None = HOME,
    parquet: bool = typer.Option(True, "--parquet/--no-parquet", help="Also write the Parquet export."),
    full_markdown: bool = typer.Option(
        False, "--full-markdown", help="List every column in Markdown (default: families of alike columns for large groups)."
    ),
) -> None:
    """Write the catalog as Markdown (for review) and Parquet (for DynamoDB, Redshift, Aurora or S3 Tables)."""
    console = Console()
    try:
        entries, _ = _catalog(project, version, home, console)
        markdown = to_markdown(entries, max_rows=None) if full_markdown else to_markdown(entries)
        written = []
        if out.startswith("s3://"):
            from ndr_resources.lake import join_uri

            lake = _resources(home)["lake"]
            md_uri = join_uri(out, MARKDOWN_FILE)
            lake.write_bytes(md_uri, markdown.encode())
            written.append(md_uri)
            if parquet:
                written.append(to_parquet(entries, join_uri(out, PARQUET_FILE), lake))
        else:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MARKDOWN_FILE).write_text(markdown)
            written.append(str(folder / MARKDOWN_FILE))
            if parquet:
                written.append(to_parquet(entries, folder / PARQUET_FILE))
    except NdrError as exc:
        raise _fail(exc) from None
    console.print(f"{len(entries):,} catalog entries written to {', '.join(written)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    catalog_app()

"""The monthly assets of one tenant project: ``machine_inventory`` and the FG-B baselines.

A monthly partition is the month in which its data is USED: ``machine_inventory`` 2026-04 is the
snapshot FG-B 2026-04 reads, and FG-B 2026-04 (host, segment, ip_metadata and pair rarity tables) is
computed from March's FG-A and pair-count windows and serves April's FG-C windows. The monthly ->
15-minute dependency is a ``TimeWindowPartitionMapping`` of one month back; the body only reads the
windows of each horizon inside that month range.

A range of several months runs as one run (BaselineMode BACKFILL); one month is REGULAR.
"""


from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import dagster as dg

from ndr_assets.baselines import checks
from ndr_assets.baselines.datasets import (
    baseline_partition,
    fg_b_table_uri,
    horizon_window_partitions,
    month_label,
    months_in,
    with_baseline_partition_columns,
)
from ndr_assets.contracts import enforce_contract
from ndr_assets.datasets import read_required_windows
from ndr_assets.inventory.unload import published_months, read_machine_inventory, unload_machine_inventory
from ndr_assets.naming import FG_B_TABLES, MACHINE_INVENTORY, fg_b_asset_keys, fg_b_op_name, group_name_for
from ndr_assets.partitions import monthly_partitions, previous_month_windows_mapping
from ndr_assets.publishing import cached
from ndr_assets.transforms.baselines import BaselineMetricError, build_fg_b
from ndr_assets.transforms.pair_rarity import build_pair_rarity
from ndr_assets.transforms.schemas import PAIR_COUNTS_SCHEMA, fg_a_schema
from ndr_resources.errors import SpecError
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgBBuilderSpec, MachineInventoryUnloadSpec
from ndr_resources.warehouse import Warehouse


class FgBRunConfig(dg.Config):
    """Run parameters of the FG-B pipeline (spec 004): which horizon(s), and the baseline mode."""

    baseline_horizon: str = "both"  # "both" = every horizon of the spec, else one of them (e.g. "7d")
    baseline_mode: Literal["AUTO", "REGULAR", "BACKFILL"] = "AUTO"  # AUTO: REGULAR for one month


def _months(context: dg.AssetExecutionContext) -> list[datetime]:
    window = context.partition_time_window
    return months_in(window.start, window.end)


def _monthly_settings(project: ProjectConfig, partitions_def) -> dict:
    return {
        "group_name": group_name_for(project.project_name),
        "partitions_def": partitions_def,
        "backfill_policy": dg.BackfillPolicy.single_run(),
    }


def _build_inventory_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, MACHINE_INVENTORY])

    @dg.asset(
        key=key,
        **_monthly_settings(project, partitions_def),
        kinds={"redshift", "parquet"},
        description=(
            f"Monthly snapshot of machines (IP, name) of project {project.project_name} not seen in earlier "
            "snapshots, unloaded from the warehouse dimension table; FG-B reads it to flag non-persistent (VDI) machines."
        ),
    )
    def machine_inventory(
        context: dg.AssetExecutionContext,
        parameter_store: ParameterStore,
        lake: Lake,
        spark: SparkResource,
        warehouse: Warehouse,
    ) -> dg.MaterializeResult:
        item = versioned_job_key("machine_inventory_unload", project.feature_spec_version)
        spec = parameter_store.load_typed_spec(
            MachineInventoryUnloadSpec, project.project_name, "machine_inventory_unload", project.feature_spec_version
        )
        session = spark.session()
        totals = {"existing_ips": 0, "rows_unloaded": 0}
        counters: dict[str, int] = {}
        for month in _months(context):
            result = unload_machine_inventory(
                spec=spec, project=project.project_name, item=item, warehouse=warehouse, lake=lake, spark=session,
                snapshot_month=month_label(month),
            )
            context.log.info(
                f"{project.project_name}: snapshot {month_label(month)}: {result.rows_existing_ips} known IPs, "
                f"{result.rows_published} new machines -> {result.location}"
            )
            totals["existing_ips"] = max(totals["existing_ips"], result.rows_existing_ips)
            totals["rows_unloaded"] += result.rows_published
            for name, value in result.counters.items():
                counters[name] = counters.get(name, 0) + int(value)
        return dg.MaterializeResult(
            metadata={
                "months": len(_months(context)),
                "known_ips_before": totals["existing_ips"],
                "rows_out": totals["rows_unloaded"],
                "counters": dg.MetadataValue.json(counters),
                "location": dg.MetadataValue.path(spec.output.s3_prefix),
            }
        )

    return machine_inventory


def _inventory_prefix(parameter_store: ParameterStore, project: ProjectConfig, spec: FgBBuilderSpec) -> str:
    """``project_parameters[<s3_prefix_key>]`` (spec 001: ``ip_machine_mapping_s3_prefix`` by default)."""
    params = parameter_store.load_project_parameters(project.project_name, project.feature_spec_version)
    key = spec.ip_machine_mapping.s3_prefix_key
    value = getattr(params, key, None) or (params.model_extra or {}).get(key)
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise SpecError(
            project.project_name, versioned_job_key("project_parameters", project.feature_spec_version), key,
            "required by fg_b_builder.ip_machine_mapping.s3_prefix_key: an s3:// prefix of the machine inventory",
        )
    return value


def _horizons(spec: FgBBuilderSpec, requested: str, project: ProjectConfig) -> list[str]:
    if requested == "both":
        return list(spec.horizons)
    if requested not in spec.horizons:
        raise SpecError(
            project.project_name, versioned_job_key("fg_b_builder", project.feature_spec_version), "horizons",
            f"run asked for baseline_horizon {requested!r}, the spec has {spec.horizons}",
        )
    return [requested]


def _spec_value_error(project: ProjectConfig, key: str, exc: ValueError) -> SpecError:
    return SpecError(project.project_name, versioned_job_key("fg_b_builder", project.feature_spec_version), key, str(exc))


def _build_fg_b_assets(
    *, project: ProjectConfig, partitions_def, key_prefix: list[str], fg_a_key: dg.AssetKey,
    pair_counts_key: dg.AssetKey, inventory_key: dg.AssetKey,
) -> dg.AssetsDefinition:
    keys = fg_b_asset_keys(project.project_name)
    window_deps = [
        dg.AssetDep(fg_a_key, partition_mapping=previous_month_windows_mapping()),
        dg.AssetDep(pair_counts_key, partition_mapping=previous_month_windows_mapping()),
    ]
    descriptions = {
        "host": "Per host and time band: median, p25, p75, p95, p99, MAD, IQR and support of every baseline metric.",
        "segment": "Per segment and time band: the host table's statistics over the segment's pooled host-windows.",
        "ip_metadata": "Per host and time band: is_full_history, is_non_persistent_machine, is_cold_start.",
        "pair_rarity": "Per (host, dst_ip, dst_port) and per (segment, dst_ip, dst_port): how often and how recently seen.",
    }
    specs = [
        dg.AssetSpec(
            key,
            deps=[*window_deps, inventory_key] if table == "ip_metadata" else window_deps,
            group_name=group_name_for(project.project_name),
            kinds={"spark", "parquet"},
            description=f"FG-B ({project.project_name}, month of use; built from the previous month): {descriptions[table]}",
        )
        for table, key in keys.items()
    ]

    @dg.multi_asset(
        name=fg_b_op_name(project.project_name),
        specs=specs,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=checks.fg_b_check_specs(keys),
        can_subset=False,
    )
    def fg_b(
        context: dg.AssetExecutionContext,
        config: FgBRunConfig,
        parameter_store: ParameterStore,
        lake: Lake,
        spark: SparkResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        version = project.feature_spec_version
        spec = parameter_store.load_typed_spec(FgBBuilderSpec, project.project_name, "fg_b_builder", version)
        horizons = _horizons(spec, config.baseline_horizon, project)
        months = _months(context)
        mode = config.baseline_mode if config.baseline_mode != "AUTO" else ("REGULAR" if len(months) == 1 else "BACKFILL")
        if mode == "REGULAR" and len(months) > 1:
            raise dg.Failure(f"{project.project_name}: baseline_mode REGULAR computes one month, the run has {len(months)}")
        if spec.pair_counts is None:
            raise _spec_value_error(project, "pair_counts.s3_prefix", ValueError("required: pair rarity reads pair counts"))
        inventory_prefix = _inventory_prefix(parameter_store, project, spec)
        # Column names come from the unload's spec; the location from project_parameters (spec 001).
        inventory_spec = parameter_store.load_typed_spec(
            MachineInventoryUnloadSpec, project.project_name, "machine_inventory_unload", version
        )
        inventory_output = inventory_spec.output.model_copy(update={"s3_prefix": inventory_prefix})
        session = spark.session()
        written: dict[str, int] = dict.fromkeys(FG_B_TABLES, 0)
        summaries: list[dict] = []
        check_inputs = checks.FgBCheckInputs()
        longest = max(spec.days_of(h) for h in horizons)
        for month in months:
            partitions = horizon_window_partitions(month, longest, project.start)
            needed_by = f"{project.project_name}: FG-B {month_label(month)}"
            fg_a = read_required_windows(session, lake, spec.fg_a_input.s3_prefix, partitions, fg_a_schema(),
                                         needed_by=needed_by, dataset="fg_a")
            pairs = read_required_windows(session, lake, spec.pair_counts.s3_prefix, partitions, PAIR_COUNTS_SCHEMA,
                                          needed_by=needed_by, dataset="pair_counts")
            # The month's snapshot must exist (even empty): without it VDI machines would pass as persistent.
            if month_label(month) not in published_months(lake, inventory_output):
                raise dg.Failure(
                    f"{project.project_name}: FG-B {month_label(month)} needs the machine inventory snapshot "
                    f"snapshot_month={month_label(month)} under {inventory_prefix}; materialize machine_inventory for "
                    f"{month_label(month)} first."
                )
            inventory = read_machine_inventory(lake, session, inventory_output, month_label(month))
            # Every horizon reads the month's FG-A and pair counts: read them once.
            with cached(fg_a, pairs):
                for horizon in horizons:
                    days, gap = spec.days_of(horizon), spec.safety_gaps.get(horizon, 0)
                    try:
                        frames = build_fg_b(fg_a, inventory, spec, horizon=horizon, baseline_end=month)
                    except BaselineMetricError as exc:
                        raise _spec_value_error(project, exc.key, ValueError(exc.problem)) from None
                    rarity = build_pair_rarity(
                        pairs, segment_mapping=spec.segment_mapping, baseline_end=month, days=days, gap_days=gap,
                        thresholds=spec.pair_rarity,
                    )
                    partition = baseline_partition(version, horizon, month)
                    tables = {
                        table: enforce_contract(df, FG_B_TABLES[table].catalog_group, fg_b_spec=spec)
                        for table, df in (("host", frames.host), ("segment", frames.segment),
                                          ("ip_metadata", frames.ip_metadata), ("pair_rarity_host", rarity.host),
                                          ("pair_rarity_segment", rarity.segment))
                    }
                    rows = {}
                    for table, df in tables.items():
                        rows[table] = lake.publish_partitions(
                            with_baseline_partition_columns(df, partition), fg_b_table_uri(spec.fg_b_output.s3_prefix, table),
                            [partition],
                        )[partition.label()]
                        written[table] += rows[table]
                    summary = checks.summarize_horizon(frames, spec=spec, month=month_label(month))
                    summaries.append({**summary, "rows": rows})
                    check_inputs.add(lake=lake, session=session, spec=spec, partition=partition, summary=summary, rows=rows)
                    context.log.info(
                        f"{project.project_name}: FG-B {month_label(month)} {horizon} ({days} d, gap {gap} d): "
                        f"{rows['host']} host rows, {rows['segment']} segment rows, cold-start host-labels "
                        f"{summary['cold_start_host_labels']}/{summary['host_labels']}"
                    )
                    frames.unpersist()
        common = {
            "baseline_mode": mode,
            "months": ", ".join(month_label(m) for m in months),
            "horizons": ", ".join(f"{h}={spec.days_of(h)}d" for h in horizons),
        }
        location = {table: fg_b_table_uri(spec.fg_b_output.s3_prefix, table) for table in FG_B_TABLES}
        yield dg.MaterializeResult(
            asset_key=keys["host"],
            metadata={**common, "rows_out": written["host"], "location": dg.MetadataValue.path(location["host"]),
                      "per_horizon": dg.MetadataValue.json(summaries)},
        )
        yield dg.MaterializeResult(
            asset_key=keys["segment"],
            metadata={**common, "rows_out": written["segment"], "location": dg.MetadataValue.path(location["segment"])},
        )
        yield dg.MaterializeResult(
            asset_key=keys["ip_metadata"],
            metadata={
                **common, "rows_out": written["ip_metadata"], "location": dg.MetadataValue.path(location["ip_metadata"]),
                "cold_start_host_labels": sum(s["cold_start_host_labels"] for s in summaries),
                "non_persistent_host_labels": sum(s["non_persistent_host_labels"] for s in summaries),
                "inventory_location": dg.MetadataValue.path(inventory_prefix),
            },
        )
        yield dg.MaterializeResult(
            asset_key=keys["pair_rarity"],
            metadata={
                **common, "rows_out_host": written["pair_rarity_host"],
                "rows_out_segment": written["pair_rarity_segment"],
                "location_host": dg.MetadataValue.path(location["pair_rarity_host"]),
                "location_segment": dg.MetadataValue.path(location["pair_rarity_segment"]),
            },
        )
        yield from check_inputs.results(keys)

    return fg_b


def build_baseline_assets(
    *, project: ProjectConfig, fg_a_key: dg.AssetKey, pair_counts_key: dg.AssetKey
) -> list[dg.AssetsDefinition]:
    """The monthly assets of one project: machine inventory and the FG-B multi-asset."""
    partitions_def = monthly_partitions(project.start)
    key_prefix = [project.project_name]
    inventory = _build_inventory_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix)
    fg_b = _build_fg_b_assets(
        project=project, partitions_def=partitions_def, key_prefix=key_prefix, fg_a_key=fg_a_key,
        pair_counts_key=pair_counts_key, inventory_key=inventory.key,
    )
    return [inventory, fg_b]


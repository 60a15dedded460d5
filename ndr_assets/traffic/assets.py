"""The 15-minute traffic assets of one tenant project: ``delta``, ``pair_counts`` and ``fg_a``.

Built by one keyword-only factory per project (asset key prefix = project name). Each asset reads its
job spec from the parameter store at run time, computes with the pure transforms of
``ndr_assets.transforms``, publishes its window partitions atomically through the lake, and reports
counts, locations, DQ counters and a preview as metadata, with its checks.
"""


import re
from datetime import timedelta

import dagster as dg
from pyspark import StorageLevel
from pyspark.sql import functions as F

from ndr_assets.contracts import dataset_contract, enforce_contract
from ndr_assets.partitions import fifteen_minute_partitions, trailing_24h_mapping
from ndr_assets.traffic import checks
from ndr_assets.traffic.datasets import (
    delta_host_slices_uri,
    delta_peer_slices_uri,
    markdown_preview,
    quarantine_uri,
    read_required_windows,
    window_partitions,
    with_partitions_of_window_end,
    with_window_partition_columns,
)
from ndr_assets.traffic.raw_input import (
    arrival_window_col,
    lateness_counts,
    read_window_traffic,
    with_arrival_window,
)
from ndr_assets.transforms.delta import build_delta
from ndr_assets.transforms.dq import apply_dq, to_quarantine
from ndr_assets.transforms.fg_a import build_fg_a
from ndr_assets.transforms.pair_counts import build_pair_counts
from ndr_assets.transforms.port_sets import PortSets
from ndr_assets.transforms.schemas import (
    DELTA_HOST_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SCHEMA,
    PAIR_COUNTS_SCHEMA,
    fg_a_schema,
)
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start, window_starts
from ndr_resources.errors import SpecError
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import DeltaBuilderSpec, DeltaDQ, FgABuilderSpec, PairCountsBuilderSpec

DELTA_KEYS = ["host_ip", "role", "slice_start"]
FG_A_KEYS = ["host_ip", "window_label", "window_end_ts"]
PAIR_COUNT_KEYS = ["src_ip", "dst_ip", "dst_port", "event_ts"]
PAIR_COUNTS_DQ = DeltaDQ(drop_malformed_ip=True, duration_non_negative=False, bytes_non_negative=False,
                         filter_null_bytes_ports=False)


def group_name_for(project_name: str) -> str:
    """Dagster group names allow only letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]", "_", project_name)


def _windows(context: dg.AssetExecutionContext) -> list:
    window = context.partition_time_window
    return window_starts(window.start, window.end)


def _published_schema(spark, lake: Lake, dataset_uri: str, partitions, rows_by_label: dict[str, int]):
    for partition in partitions:
        if rows_by_label.get(partition.label()):
            return spark.read.parquet(lake.spark_uri(dataset_uri.rstrip("/") + "/" + partition.path())).schema
    return None


def _load_port_sets(lake: Lake, spec: DeltaBuilderSpec, item: str) -> PortSets:
    location = spec.enrichment.port_sets_location
    if location is None:
        return PortSets.empty()
    try:
        return PortSets.from_json(lake.read_json(location))
    except ValueError as exc:
        raise SpecError(spec.project_name, item, "enrichment.port_sets_location", f"{location}: {exc}") from None


def _window_asset_settings(key: dg.AssetKey, project: ProjectConfig, partitions_def, *, with_dq: bool) -> dict:
    """What every 15-minute asset of a project shares: group, partitions, single-run backfills, checks."""
    return {
        "key": key,
        "group_name": group_name_for(project.project_name),
        "partitions_def": partitions_def,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "check_specs": checks.check_specs(key, with_dq=with_dq),
        "kinds": {"spark", "parquet"},
    }


def _delta_frames(clean, spec: DeltaBuilderSpec, port_sets: PortSets, item: str):
    """Host and peer slices; an operator the builder does not know is a spec error, named."""
    try:
        frames = build_delta(clean, spec, port_sets)
    except ValueError as exc:
        raise SpecError(spec.project_name, item, "operators", str(exc)) from None
    host_slices = enforce_contract(frames.host_slices, "delta_host_slices")
    return host_slices.persist(StorageLevel.MEMORY_AND_DISK), enforce_contract(frames.peer_slices, "delta_peer_slices")


def _build_delta_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, "delta"])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, with_dq=True),
        description=(
            f"Per host, direction and 15-minute slice: the base traffic metrics of project "
            f"{project.project_name}, from the raw PAN-OS mini-batches that landed in each window."
        ),
    )
    def delta(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        item = f"delta_builder#{project.feature_spec_version}"
        spec = parameter_store.load_typed_spec(
            DeltaBuilderSpec, project.project_name, "delta_builder", project.feature_spec_version
        )
        port_sets = _load_port_sets(lake, spec, item)
        starts = _windows(context)
        window = context.partition_time_window
        session = spark.session()
        listing, read = read_window_traffic(session, lake, spec.input, window.start, window.end)
        context.log.info(
            f"{project.project_name}: {len(listing.batches)} mini-batches, {len(listing.files)} files "
            f"for {len(starts)} window(s) from {window.start:%Y-%m-%d %H:%M}"
        )
        if listing.unrecognised_folders:
            context.log.warning(
                f"{len(listing.unrecognised_folders)} folder(s) under {spec.input.s3_prefix} carry no landing "
                f"time and were not read, e.g. {listing.unrecognised_folders[:3]}"
            )
        records = read.records.persist(StorageLevel.MEMORY_AND_DISK)
        partitions = window_partitions(starts)
        host_uri = delta_host_slices_uri(spec.output.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.output.s3_prefix)
        quarantine = quarantine_uri(spec.dq.quarantine_s3_prefix, spec.output.s3_prefix)
        try:
            with read.named_read_errors():
                dq = apply_dq(read.traffic, spec.dq)
                clean = with_arrival_window(dq.clean)
                counters = {**read.counters(), **dq.counts(), **lateness_counts(clean)}
                host_slices, peer_slices = _delta_frames(clean, spec, port_sets, item)
                host_rows = lake.publish_partitions(
                    with_window_partition_columns(host_slices, "slice_start"), host_uri, partitions
                )
                peer_rows = lake.publish_partitions(
                    with_window_partition_columns(peer_slices, "slice_start"), peer_uri, partitions
                )
                rejects = to_quarantine(read.rejects.unionByName(dq.rejects), arrival_window_col())
                quarantined = lake.publish_partitions(
                    with_window_partition_columns(rejects, "window_start"), quarantine, partitions
                )
            duplicates = checks.duplicate_key_count(host_slices, DELTA_KEYS)
            preview = markdown_preview(
                host_slices, ["host_ip", "role", "slice_start", "sessions_cnt", "bytes_src_sum", "peer_ip_nunique"]
            )
            schema = _published_schema(session, lake, host_uri, partitions, host_rows)
            host_slices.unpersist()
        finally:
            records.unpersist()
        rows_in = counters["rows_read"] - counters["non_traffic_lines"]
        rows_rejected = sum(quarantined.values())
        rows_out = sum(host_rows.values())
        context.log.info(
            f"{project.project_name}: {rows_in} rows read, {rows_rejected} quarantined, {rows_out} host slices, "
            f"{sum(peer_rows.values())} peer slices"
        )
        return dg.MaterializeResult(
            metadata={
                "windows": len(starts),
                "mini_batches": len(listing.batches),
                "rows_in": rows_in,
                "rows_quarantined": rows_rejected,
                "rows_out": rows_out,
                "peer_slice_rows": sum(peer_rows.values()),
                "dq_counters": dg.MetadataValue.json(counters),
                "host_slices_location": dg.MetadataValue.path(host_uri),
                "peer_slices_location": dg.MetadataValue.path(peer_uri),
                "quarantine_location": dg.MetadataValue.path(quarantine),
                "input_location": dg.MetadataValue.path(spec.input.s3_prefix),
                "preview": dg.MetadataValue.md(preview),
            },
            check_results=[
                checks.schema_check(schema, dataset_contract("delta_host_slices"), "delta/host_slices"),
                checks.keys_unique_check(duplicates, DELTA_KEYS, "delta/host_slices"),
                checks.row_count_check(
                    rows_out <= 2 * (rows_in - rows_rejected) and (rows_out > 0 or rows_in == rows_rejected),
                    rows_in=rows_in,
                    rows_rejected=rows_rejected,
                    rows_out=rows_out,
                ),
                checks.dq_rejection_check(rows_in, rows_rejected, spec.dq.max_rejection_rate),
            ],
        )

    return delta


def _build_pair_counts_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, "pair_counts"])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, with_dq=False),
        description=(
            f"Sessions per (src_ip, dst_ip, dst_port) and 15-minute window for project {project.project_name}: "
            "the input of pair rarity baselines."
        ),
    )
    def pair_counts(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        spec = parameter_store.load_typed_spec(
            PairCountsBuilderSpec, project.project_name, "pair_counts_builder", project.feature_spec_version
        )
        starts = _windows(context)
        window = context.partition_time_window
        session = spark.session()
        listing, read = read_window_traffic(session, lake, spec.traffic_input, window.start, window.end)
        records = read.records.persist(StorageLevel.MEMORY_AND_DISK)
        partitions = window_partitions(starts)
        output = spec.pair_counts_output.s3_prefix
        quarantine = quarantine_uri(None, output)
        try:
            with read.named_read_errors():
                # Pair rarity must not learn garbage addresses: malformed IPs and rows without
                # timestamps go to quarantine, as in delta, before the spec's filters apply.
                valid = apply_dq(read.traffic, PAIR_COUNTS_DQ)
                result = build_pair_counts(with_arrival_window(valid.clean), spec.filters)
                pairs = enforce_contract(result.pair_counts, "pair_counts").persist(StorageLevel.MEMORY_AND_DISK)
                rows = lake.publish_partitions(with_partitions_of_window_end(pairs, "event_ts"), output, partitions)
                quarantined = lake.publish_partitions(
                    with_window_partition_columns(
                        to_quarantine(read.rejects.unionByName(valid.rejects), arrival_window_col()), "window_start"
                    ),
                    quarantine,
                    partitions,
                )
                counters = {**read.counters(), **valid.counts(), **result.counters}
            duplicates = checks.duplicate_key_count(pairs, PAIR_COUNT_KEYS)
            sessions_in_pairs = int(pairs.agg(F.sum("sessions_cnt")).first()[0] or 0)
            preview = markdown_preview(pairs, PAIR_COUNTS_SCHEMA.fieldNames())
            schema = _published_schema(session, lake, output, partitions, rows)
            pairs.unpersist()
        finally:
            records.unpersist()
        filtered = sum(v for k, v in result.counters.items() if k.startswith("filtered"))
        sessions_kept = counters["rows_clean"] - filtered
        return dg.MaterializeResult(
            metadata={
                "windows": len(starts),
                "mini_batches": len(listing.batches),
                "rows_in": counters["rows_read"] - counters["non_traffic_lines"],
                "rows_quarantined": sum(quarantined.values()),
                "rows_out": sum(rows.values()),
                "counters": dg.MetadataValue.json(counters),
                "location": dg.MetadataValue.path(output),
                "preview": dg.MetadataValue.md(preview),
            },
            check_results=[
                checks.schema_check(schema, dataset_contract("pair_counts"), "pair_counts"),
                checks.keys_unique_check(duplicates, PAIR_COUNT_KEYS, "pair_counts"),
                checks.row_count_check(
                    sessions_in_pairs == sessions_kept, sessions_in_pairs=sessions_in_pairs, sessions_kept=sessions_kept
                ),
            ],
        )

    return pair_counts


def _build_fg_a_asset(
    *, project: ProjectConfig, partitions_def, key_prefix: list[str], delta_key: dg.AssetKey
) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, "fg_a"])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, with_dq=False),
        deps=[dg.AssetDep(delta_key, partition_mapping=trailing_24h_mapping())],
        description=(
            f"FG-A for project {project.project_name}: per active host and window, 48 metrics over "
            "15m/30m/1h/8h/24h windows in both directions, time band and time flags (485 features)."
        ),
    )
    def fg_a(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        spec = parameter_store.load_typed_spec(
            FgABuilderSpec, project.project_name, "fg_a_builder", project.feature_spec_version
        )
        starts = _windows(context)
        session = spark.session()
        project_start = floor_to_window_start(project.start)
        trailing_start = max(project_start, starts[0] - timedelta(minutes=1440 - SLICE_MINUTES))
        trailing = window_partitions(window_starts(trailing_start, starts[-1] + timedelta(minutes=SLICE_MINUTES)))
        host_uri = delta_host_slices_uri(spec.delta_input.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.delta_input.s3_prefix)
        host_slices = read_required_windows(session, lake, host_uri, trailing, DELTA_HOST_SLICE_SCHEMA,
                                            needed_by=f"{project.project_name}: fg_a", dataset="delta")
        peer_slices, _ = lake.read_partitions(session, peer_uri, trailing, DELTA_PEER_SLICE_SCHEMA)
        lookback_start = max(project_start, starts[0] - timedelta(days=spec.lookback30d.days))
        lookback_parts = window_partitions(window_starts(lookback_start, starts[0]))
        lookback, lookback_missing = lake.read_partitions(session, peer_uri, lookback_parts, DELTA_PEER_SLICE_SCHEMA)
        features = enforce_contract(build_fg_a(host_slices, peer_slices, lookback, starts, spec), "fg_a").persist(
            StorageLevel.MEMORY_AND_DISK
        )
        output = spec.fg_a_output.s3_prefix
        rows = lake.publish_partitions(
            with_partitions_of_window_end(features, "window_end_ts"), output, window_partitions(starts)
        )
        duplicates = checks.duplicate_key_count(features, FG_A_KEYS)
        active = host_slices.where(host_slices["slice_start"] >= starts[0]).select("host_ip", "slice_start").distinct().count()
        preview = markdown_preview(
            features, ["host_ip", "window_label", "window_end_ts", "sessions_cnt_w_15m", "sessions_cnt_w_24h",
                       "peer_ip_nunique_w_1h", "new_peer_cnt_lookback30d_w_15m"]
        )
        schema = _published_schema(session, lake, output, window_partitions(starts), rows)
        features.unpersist()
        rows_out = sum(rows.values())
        return dg.MaterializeResult(
            metadata={
                "windows": len(starts),
                "rows_out": rows_out,
                "active_host_windows": active,
                "columns": len(fg_a_schema().fields),
                "lookback_windows_available": len(lookback_parts) - len(lookback_missing),
                "location": dg.MetadataValue.path(output),
                "preview": dg.MetadataValue.md(preview),
            },
            check_results=[
                checks.schema_check(schema, dataset_contract("fg_a"), "fg_a"),
                checks.keys_unique_check(duplicates, FG_A_KEYS, "fg_a"),
                checks.row_count_check(rows_out == active, rows_out=rows_out, active_host_windows=active),
            ],
        )

    return fg_a


def build_traffic_assets(*, project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The 15-minute traffic assets of one project, on the project's own partitions."""
    partitions_def = fifteen_minute_partitions(project.start)
    key_prefix = [project.project_name]
    delta = _build_delta_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix)
    return [
        delta,
        _build_pair_counts_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix),
        _build_fg_a_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix, delta_key=delta.key),
    ]

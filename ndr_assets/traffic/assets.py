"""The 15-minute traffic assets of one tenant project: ``delta``, ``pair_counts`` and ``fg_a``.

Built by one keyword-only factory per project (asset key prefix = project name). Each asset reads its
job spec from the parameter store at run time, computes with the pure transforms of
``ndr_assets.transforms``, publishes its window partitions atomically through
:func:`ndr_assets.publishing.publish_dataset`, and reports counts, locations and a preview as
metadata, with its checks. ``delta`` and ``pair_counts`` read the raw mini-batches and account for
every record: published, quarantined (with its reason) or skipped by a rule, per window.
"""

from datetime import datetime, timedelta
from functools import reduce

import dagster as dg
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets import checks
from ndr_assets.datasets import (
    delta_host_slices_uri,
    delta_peer_slices_uri,
    quarantine_uri,
    read_required_windows,
    window_partitions,
    with_partitions_of_window_end,
    with_window_partition_columns,
)
from ndr_assets.naming import DELTA, FG_A, PAIR_COUNTS, group_name_for
from ndr_assets.partitions import fifteen_minute_partitions, trailing_24h_mapping
from ndr_assets.publishing import PublishedDataset, publish_dataset
from ndr_assets.traffic.accounting import (
    QUARANTINE_REASONS,
    READ_SKIP_REASONS,
    RecordAccounts,
    account_records,
    record_outcomes,
    window_label,
)
from ndr_assets.traffic.raw_input import (
    WindowTraffic,
    arrival_window_col,
    lateness_counts,
    read_window_traffic,
    with_arrival_window,
)
from ndr_assets.transforms.delta import build_delta
from ndr_assets.transforms.dq import DqResult, apply_dq, to_quarantine
from ndr_assets.transforms.fg_a import build_fg_a
from ndr_assets.transforms.pair_counts import filter_rules, pair_counts_frame
from ndr_assets.transforms.port_sets import PortSets
from ndr_assets.transforms.schemas import DELTA_HOST_SLICE_SCHEMA, DELTA_PEER_SLICE_SCHEMA, fg_a_schema
from ndr_assets.transforms.segments import in_segment_mapping
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start, mini_batch_landing_time, window_starts
from ndr_resources.errors import SpecError
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import DeltaBuilderSpec, DeltaDQ, FgABuilderSpec, PairCountsBuilderSpec, SegmentMapping

DELTA_KEYS = ["host_ip", "role", "slice_start"]
DELTA_PEER_KEYS = ["host_ip", "role", "slice_start", "peer_ip", "peer_port", "peer_segment"]
FG_A_KEYS = ["host_ip", "window_label", "window_end_ts"]
PAIR_COUNT_KEYS = ["src_ip", "dst_ip", "dst_port", "event_ts"]
PAIR_COUNTS_DQ = DeltaDQ(drop_malformed_ip=True, duration_non_negative=False, bytes_non_negative=False,
                         filter_null_bytes_ports=False)
# Sessions with no address in the segment mapping have no host to count them for.
NO_MONITORED_HOST = "no_monitored_host"
ROLE_ROWS = "role_rows"


def _windows(context: dg.AssetExecutionContext) -> list:
    window = context.partition_time_window
    return window_starts(window.start, window.end)


def _load_port_sets(lake: Lake, spec: DeltaBuilderSpec, item: str) -> PortSets:
    location = spec.enrichment.port_sets_location
    if location is None:
        return PortSets.empty()
    try:
        return PortSets.from_json(lake.read_json(location))
    except ValueError as exc:
        raise SpecError(spec.project_name, item, "enrichment.port_sets_location", f"{location}: {exc}") from None


def _window_asset_settings(key: dg.AssetKey, project: ProjectConfig, partitions_def, check_specs) -> dict:
    """What every 15-minute asset of a project shares: group, partitions, single-run backfills, checks."""
    return {
        "key": key,
        "group_name": group_name_for(project.project_name),
        "partitions_def": partitions_def,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "check_specs": check_specs,
        "kinds": {"spark", "parquet"},
    }


def _segments_text(mapping: SegmentMapping | None) -> str:
    if mapping is None:
        return "no segment mapping: every address is a host"
    return ", ".join(f"{rule.segment_id}={rule.cidr}" for rule in mapping.segments) or "none"


# ---------------------------------------------------------------- raw input: read, account, quarantine


def _log_listing(context: dg.AssetExecutionContext, project: ProjectConfig, raw: WindowTraffic, starts) -> None:
    listing = raw.listing
    context.log.info(
        f"{project.project_name}: {len(listing.batches)} mini-batches, {len(listing.files)} files "
        f"for {len(starts)} window(s) from {starts[0]:%Y-%m-%d %H:%M}"
    )
    for skipped in [*listing.unrecognised_folders, *listing.skipped]:
        context.log.warning(f"{project.project_name}: not read: {skipped.uri}: {skipped.reason}")
    for bad in raw.unreadable:
        context.log.error(f"{project.project_name}: unreadable file quarantined whole: {bad.uri}: {bad.cause}")


def _incomplete_windows(raw: WindowTraffic) -> list[str]:
    """Windows that lost objects: a file skipped inside one of their mini-batches, or unreadable."""
    batches = [f.mini_batch_id for f in raw.unreadable]
    batches += [s.uri.rstrip("/").rsplit("/", 2)[-2] for s in raw.listing.skipped]
    landed = [mini_batch_landing_time(batch) for batch in batches]
    return sorted({window_label(floor_to_window_start(ts)) for ts in landed if ts is not None})


def _unreadable_per_window(raw: WindowTraffic) -> dict[str, int]:
    per_window: dict[str, int] = {}
    for bad in raw.unreadable:
        label = window_label(floor_to_window_start(mini_batch_landing_time(bad.mini_batch_id)))
        per_window[label] = per_window.get(label, 0) + 1
    return per_window


def _publish_quarantine(session, lake: Lake, raw: WindowTraffic, dq: DqResult, location: str, partitions):
    rejects = raw.read.rejects.unionByName(dq.rejects).unionByName(raw.unreadable_rejects(session))
    return lake.publish_partitions(
        with_window_partition_columns(to_quarantine(rejects, arrival_window_col()), "window_start"),
        location,
        partitions,
    )


def _quarantine_mismatches(accounts: RecordAccounts, raw: WindowTraffic, written: dict[str, int]) -> list[str]:
    """Windows whose quarantine partition does not hold exactly the records counted as quarantined."""
    unreadable = _unreadable_per_window(raw)
    mismatches = []
    for label, rows in written.items():
        expected = accounts.window(label)["records_quarantined"] + unreadable.get(label, 0)
        if rows != expected:
            mismatches.append(f"{label}: {rows} quarantine rows for {expected} quarantined records")
    return mismatches


def _accounting_metadata(accounts: RecordAccounts, raw: WindowTraffic, extra: dict) -> dict:
    totals = accounts.totals()
    return {
        "windows": len(accounts.per_window),
        "mini_batches": len(raw.listing.batches),
        "files_read": len(raw.listing.files) - len(raw.unreadable),
        "files_unreadable": len(raw.unreadable),
        "objects_skipped": len(raw.listing.skipped) + len(raw.listing.unrecognised_folders),
        "incomplete_windows": ", ".join(_incomplete_windows(raw)) or "none",
        "records_in": totals["records_in"],
        "records_published": totals["records_published"],
        "records_quarantined": totals["records_quarantined"],
        "records_skipped": totals["records_skipped"],
        "quarantined_by_reason": dg.MetadataValue.json(accounts.by_reason(QUARANTINE_REASONS)),
        "skipped_by_reason": dg.MetadataValue.json(accounts.by_reason(accounts.skip_reasons)),
        "windows_with_losses": dg.MetadataValue.md(accounts.notable_windows_markdown()),
        **extra,
    }


def _rejection_check(accounts: RecordAccounts, threshold: float, key: str) -> dg.AssetCheckResult:
    totals = accounts.totals()
    skipped_by_reader = sum(accounts.by_reason(READ_SKIP_REASONS).values())
    return checks.dq_rejection_check(
        totals["records_in"] - skipped_by_reader, totals["records_quarantined"], threshold, key=key
    )


def _any(columns: list[Column]) -> Column:
    return reduce(lambda a, b: a | b, columns)


# ---------------------------------------------------------------- delta


def _build_delta_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, DELTA])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, checks.raw_input_check_specs(key, monitored_hosts=True)),
        description=(
            f"Per host, direction and 15-minute slice: the base traffic metrics of project "
            f"{project.project_name}, from the raw PAN-OS mini-batches that landed in each window."
        ),
    )
    def delta(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        item = versioned_job_key("delta_builder", project.feature_spec_version)
        spec = parameter_store.load_typed_spec(
            DeltaBuilderSpec, project.project_name, "delta_builder", project.feature_spec_version
        )
        port_sets = _load_port_sets(lake, spec, item)
        starts = _windows(context)
        window = context.partition_time_window
        session = spark.session()
        partitions = window_partitions(starts)
        host_uri = delta_host_slices_uri(spec.output.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.output.s3_prefix)
        quarantine = quarantine_uri(spec.dq.quarantine_s3_prefix, spec.output.s3_prefix)
        mapping = spec.enrichment.segment_mapping
        raw = read_window_traffic(session, lake, spec.input, window.start, window.end)
        _log_listing(context, project, raw, starts)
        try:
            with raw.read.named_read_errors():
                dq = apply_dq(raw.read.traffic, spec.dq)
                kept = with_arrival_window(dq.clean)
                monitored = [in_segment_mapping(F.col(role.host_ip), mapping) for role in spec.roles]
                outcomes = record_outcomes(
                    raw.records, dq, kept, F.when(~_any(monitored), F.lit(NO_MONITORED_HOST)),
                    {ROLE_ROWS: reduce(lambda a, b: a + b, [m.cast("long") for m in monitored])},
                )
                accounts = account_records(outcomes, starts, (*READ_SKIP_REASONS, NO_MONITORED_HOST))
                lateness = lateness_counts(kept)
                try:
                    frames = build_delta(kept, spec, port_sets)
                except ValueError as exc:  # an operator the builder does not know
                    raise SpecError(spec.project_name, item, "operators", str(exc)) from None
                host = publish_dataset(
                    frames.host_slices, dataset="delta_host_slices", lake=lake, location=host_uri,
                    partitions=partitions, keys=DELTA_KEYS,
                    with_partition_columns=lambda df: with_window_partition_columns(df, "slice_start"),
                    preview_columns=["host_ip", "role", "slice_start", "sessions_cnt", "bytes_src_sum",
                                     "peer_ip_nunique"],
                    measure=_sessions_counted,
                )
                peer = publish_dataset(
                    frames.peer_slices, dataset="delta_peer_slices", lake=lake, location=peer_uri,
                    partitions=partitions, keys=DELTA_PEER_KEYS,
                    with_partition_columns=lambda df: with_window_partition_columns(df, "slice_start"),
                    preview_columns=["host_ip", "role", "slice_start", "peer_ip", "peer_port", "sessions_cnt"],
                )
                quarantined = _publish_quarantine(session, lake, raw, dq, quarantine, partitions)
        finally:
            raw.unpersist()
        totals = accounts.totals()
        context.log.info(
            f"{project.project_name}: {totals['records_in']} records read, {totals['records_published']} sessions "
            f"counted, {totals['records_quarantined']} quarantined, {totals['records_skipped']} skipped by rule; "
            f"{host.rows_out} host slices, {peer.rows_out} peer slices"
        )
        return dg.MaterializeResult(
            metadata=_accounting_metadata(accounts, raw, {
                "rows_out": host.rows_out,
                "peer_slice_rows": peer.rows_out,
                "late_sessions": lateness["late_sessions"],
                "early_sessions": lateness["early_sessions"],
                "host_slices_location": dg.MetadataValue.path(host_uri),
                "peer_slices_location": dg.MetadataValue.path(peer_uri),
                "quarantine_location": dg.MetadataValue.path(quarantine),
                "input_location": dg.MetadataValue.path(spec.input.s3_prefix),
                "preview": dg.MetadataValue.md(host.preview),
            }),
            check_results=[
                *host.check_results(),
                _delta_row_count_check(accounts, raw, host, quarantined),
                _rejection_check(accounts, spec.dq.max_rejection_rate, f"{item} dq.max_rejection_rate"),
                checks.input_complete_check(raw.listing.skipped, raw.unreadable, raw.listing.unrecognised_folders),
                checks.monitored_hosts_check(
                    totals["records_published"] + accounts.by_reason([NO_MONITORED_HOST]).get(NO_MONITORED_HOST, 0),
                    accounts.by_reason([NO_MONITORED_HOST]).get(NO_MONITORED_HOST, 0),
                    _segments_text(mapping),
                ),
            ],
        )

    return delta


def _sessions_counted(df: DataFrame) -> int:
    return int(df.agg(F.sum("sessions_cnt")).first()[0] or 0)


def _delta_row_count_check(
    accounts: RecordAccounts, raw: WindowTraffic, host: PublishedDataset, quarantined: dict[str, int]
) -> dg.AssetCheckResult:
    """Every counted session is in the host slices once per monitored role; quarantine holds every reject."""
    role_rows = accounts.totals().get(ROLE_ROWS, 0)
    problems = _quarantine_mismatches(accounts, raw, quarantined)
    if host.measured != role_rows:
        problems.insert(0, f"host slices count {host.measured} role sessions, the published sessions make {role_rows}")
    return checks.row_count_check(
        not problems,
        "; ".join(problems) or None,
        records_in=accounts.totals()["records_in"],
        role_sessions_expected=role_rows,
        role_sessions_in_host_slices=host.measured,
        quarantine_rows=sum(quarantined.values()),
    )


# ---------------------------------------------------------------- pair counts


def _first_failing_filter(rules: list[tuple[str, Column]]) -> Column:
    reason = F.lit(None).cast("string")
    for name, drops in reversed(rules):
        reason = F.when(drops, F.lit(name)).otherwise(reason)
    return reason


def _build_pair_counts_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, PAIR_COUNTS])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, checks.raw_input_check_specs(key, monitored_hosts=False)),
        description=(
            f"Sessions per (src_ip, dst_ip, dst_port) and 15-minute window for project {project.project_name}: "
            "the input of pair rarity baselines."
        ),
    )
    def pair_counts(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        item = versioned_job_key("pair_counts_builder", project.feature_spec_version)
        spec = parameter_store.load_typed_spec(
            PairCountsBuilderSpec, project.project_name, "pair_counts_builder", project.feature_spec_version
        )
        starts = _windows(context)
        window = context.partition_time_window
        session = spark.session()
        partitions = window_partitions(starts)
        output = spec.pair_counts_output.s3_prefix
        quarantine = quarantine_uri(None, output)
        rules = filter_rules(spec.filters)
        raw = read_window_traffic(session, lake, spec.traffic_input, window.start, window.end)
        _log_listing(context, project, raw, starts)
        try:
            with raw.read.named_read_errors():
                # Pair rarity must not learn garbage addresses: malformed IPs and rows without
                # timestamps go to quarantine, as in delta, before the spec's filters apply.
                dq = apply_dq(raw.read.traffic, PAIR_COUNTS_DQ)
                kept = with_arrival_window(dq.clean)
                outcomes = record_outcomes(raw.records, dq, kept, _first_failing_filter(rules))
                accounts = account_records(outcomes, starts, (*READ_SKIP_REASONS, *[name for name, _ in rules]))
                pairs = publish_dataset(
                    pair_counts_frame(kept, spec.filters), dataset="pair_counts", lake=lake, location=output,
                    partitions=partitions, keys=PAIR_COUNT_KEYS,
                    with_partition_columns=lambda df: with_partitions_of_window_end(df, "event_ts"),
                    preview_columns=["src_ip", "dst_ip", "dst_port", "event_ts", "sessions_cnt"],
                    measure=_sessions_counted,
                )
                quarantined = _publish_quarantine(session, lake, raw, dq, quarantine, partitions)
        finally:
            raw.unpersist()
        totals = accounts.totals()
        problems = _quarantine_mismatches(accounts, raw, quarantined)
        if pairs.measured != totals["records_published"]:
            problems.insert(0, f"pair counts hold {pairs.measured} sessions, {totals['records_published']} were counted")
        return dg.MaterializeResult(
            metadata=_accounting_metadata(accounts, raw, {
                "rows_out": pairs.rows_out,
                "location": dg.MetadataValue.path(output),
                "quarantine_location": dg.MetadataValue.path(quarantine),
                "preview": dg.MetadataValue.md(pairs.preview),
            }),
            check_results=[
                *pairs.check_results(),
                checks.row_count_check(
                    not problems, "; ".join(problems) or None,
                    sessions_in_pairs=pairs.measured, sessions_counted=totals["records_published"],
                    quarantine_rows=sum(quarantined.values()),
                ),
                _rejection_check(accounts, spec.dq.max_rejection_rate, f"{item} dq.max_rejection_rate"),
                checks.input_complete_check(raw.listing.skipped, raw.unreadable, raw.listing.unrecognised_folders),
            ],
        )

    return pair_counts


# ---------------------------------------------------------------- FG-A


def _trailing_partitions(project: ProjectConfig, starts: list[datetime]):
    project_start = floor_to_window_start(project.start)
    trailing_start = max(project_start, starts[0] - timedelta(minutes=1440 - SLICE_MINUTES))
    return window_partitions(window_starts(trailing_start, starts[-1] + timedelta(minutes=SLICE_MINUTES)))


def _build_fg_a_asset(
    *, project: ProjectConfig, partitions_def, key_prefix: list[str], delta_key: dg.AssetKey
) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, FG_A])

    @dg.asset(
        **_window_asset_settings(key, project, partitions_def, checks.check_specs(key)),
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
        host_uri = delta_host_slices_uri(spec.delta_input.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.delta_input.s3_prefix)
        trailing = _trailing_partitions(project, starts)
        host_slices = read_required_windows(session, lake, host_uri, trailing, DELTA_HOST_SLICE_SCHEMA,
                                            needed_by=f"{project.project_name}: fg_a", dataset="delta")
        peer_slices, _ = lake.read_partitions(session, peer_uri, trailing, DELTA_PEER_SLICE_SCHEMA)
        project_start = floor_to_window_start(project.start)
        lookback_start = max(project_start, starts[0] - timedelta(days=spec.lookback30d.days))
        lookback_parts = window_partitions(window_starts(lookback_start, starts[0]))
        lookback, lookback_missing = lake.read_partitions(session, peer_uri, lookback_parts, DELTA_PEER_SLICE_SCHEMA)
        output = spec.fg_a_output.s3_prefix
        features = publish_dataset(
            build_fg_a(host_slices, peer_slices, lookback, starts, spec), dataset="fg_a", lake=lake,
            location=output, partitions=window_partitions(starts), keys=FG_A_KEYS,
            with_partition_columns=lambda df: with_partitions_of_window_end(df, "window_end_ts"),
            preview_columns=["host_ip", "window_label", "window_end_ts", "sessions_cnt_w_15m", "sessions_cnt_w_24h",
                             "peer_ip_nunique_w_1h", "new_peer_cnt_lookback30d_w_15m"],
        )
        active = host_slices.where(host_slices["slice_start"] >= starts[0]).select("host_ip", "slice_start").distinct().count()
        return dg.MaterializeResult(
            metadata={
                "windows": len(starts),
                "rows_out": features.rows_out,
                "active_host_windows": active,
                "columns": len(fg_a_schema().fields),
                "lookback_windows_available": len(lookback_parts) - len(lookback_missing),
                "location": dg.MetadataValue.path(output),
                "preview": dg.MetadataValue.md(features.preview),
            },
            check_results=[
                *features.check_results(),
                checks.row_count_check(features.rows_out == active, rows_out=features.rows_out,
                                       active_host_windows=active),
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

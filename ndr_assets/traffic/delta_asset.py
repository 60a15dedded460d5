"""``delta``: per host, direction and 15-minute slice, the base metrics, from the raw mini-batches."""


from functools import reduce

import dagster as dg
from pyspark.sql import Column
from pyspark.sql import functions as F

from ndr_assets import checks
from ndr_assets.datasets import (
    delta_host_slices_uri,
    delta_peer_slices_uri,
    quarantine_uri,
    window_partitions,
    with_window_partition_columns,
)
from ndr_assets.naming import DELTA
from ndr_assets.publishing import PublishedDataset, cached, publish_dataset
from ndr_assets.traffic.accounting import READ_SKIP_REASONS, RecordAccounts, account_records, record_outcomes
from ndr_assets.traffic.common import (
    REDELIVERED,
    accounting_metadata,
    partition_window_starts,
    publish_quarantine,
    publish_session_keys,
    quarantine_mismatches,
    raw_deliveries,
    rejection_check,
    session_keys_uri,
    window_asset_settings,
)
from ndr_assets.traffic.raw_input import WindowTraffic, lateness_flags
from ndr_assets.transforms.delta import build_delta
from ndr_assets.transforms.port_sets import PortSets
from ndr_assets.transforms.segments import in_segment_mapping
from ndr_assets.transforms.sessions import REDELIVERED_COL
from ndr_resources.errors import SpecError
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import DeltaBuilderSpec, SegmentMapping

DELTA_KEYS = ["host_ip", "role", "slice_start"]
DELTA_PEER_KEYS = ["host_ip", "role", "slice_start", "peer_ip", "peer_port", "peer_segment"]
# Sessions with no address in the segment mapping have no host to count them for.
NO_MONITORED_HOST = "no_monitored_host"
ROLE_ROWS = "role_rows"


def _load_port_sets(lake: Lake, spec: DeltaBuilderSpec, item: str) -> PortSets:
    location = spec.enrichment.port_sets_location
    if location is None:
        return PortSets.empty()
    try:
        return PortSets.from_json(lake.read_json(location))
    except ValueError as exc:
        raise SpecError(spec.project_name, item, "enrichment.port_sets_location", f"{location}: {exc}") from None


def _segments_text(mapping: SegmentMapping | None) -> str:
    if mapping is None:
        return "no segment mapping: every address is a host"
    return ", ".join(f"{rule.segment_id}={rule.cidr}" for rule in mapping.segments) or "none"


def _row_count_check(
    accounts: RecordAccounts, raw: WindowTraffic, host: PublishedDataset, quarantined: dict[str, int]
) -> dg.AssetCheckResult:
    """Every counted session is in the host slices once per monitored role; quarantine holds every reject."""
    role_rows = accounts.totals().get(ROLE_ROWS, 0)
    problems = quarantine_mismatches(accounts, raw, quarantined)
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


def _monitored_hosts_check(accounts: RecordAccounts, mapping: SegmentMapping | None) -> dg.AssetCheckResult:
    without_host = accounts.by_reason([NO_MONITORED_HOST]).get(NO_MONITORED_HOST, 0)
    sessions = accounts.totals()["records_published"] + without_host
    return checks.monitored_hosts_check(sessions, without_host, _segments_text(mapping))


def build_delta_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, DELTA])

    @dg.asset(
        **window_asset_settings(key, project, partitions_def, checks.raw_input_check_specs(key, monitored_hosts=True)),
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
        starts = partition_window_starts(context)
        session = spark.session()
        partitions = window_partitions(starts)
        host_uri = delta_host_slices_uri(spec.output.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.output.s3_prefix)
        keys_uri = session_keys_uri(spec.output.s3_prefix)
        quarantine = quarantine_uri(spec.dq.quarantine_s3_prefix, spec.output.s3_prefix)
        mapping = spec.enrichment.segment_mapping
        with raw_deliveries(context, session, lake, project=project, spec_input=spec.input, dq_rules=spec.dq,
                            keys_uri=keys_uri, starts=starts) as deliveries:
            raw, kept = deliveries.raw, deliveries.kept
            monitored = [in_segment_mapping(F.col(role.host_ip), mapping) for role in spec.roles]
            rule = deliveries.outcome_rule(F.when(~reduce(Column.__or__, monitored), F.lit(NO_MONITORED_HOST)))
            role_rows = F.when(~F.col(REDELIVERED_COL), reduce(Column.__add__, [m.cast("long") for m in monitored]))
            # Lateness of the kept sessions rides on the accounting's aggregation (no pass of its own).
            late = {name: F.when(~F.col(REDELIVERED_COL), flag).otherwise(0) for name, flag in lateness_flags().items()}
            outcomes = record_outcomes(raw.records, deliveries.dq, deliveries.flagged, rule,
                                       {ROLE_ROWS: F.coalesce(role_rows, F.lit(0)), **late})
            accounts = account_records(outcomes, starts, (*READ_SKIP_REASONS, REDELIVERED, NO_MONITORED_HOST))
            lateness = {name: accounts.totals().get(name, 0) for name in late}
            try:
                frames = build_delta(kept, spec, port_sets)
            except ValueError as exc:  # an operator the builder does not know
                raise SpecError(spec.project_name, item, "operators", str(exc)) from None
            slice_partitions = lambda df: with_window_partition_columns(df, "slice_start")  # noqa: E731
            # Both slice datasets are built on the finest aggregate: compute it once for the two writes.
            with cached(frames.finest):
                host = publish_dataset(
                    frames.host_slices, dataset="delta_host_slices", lake=lake, location=host_uri,
                    partitions=partitions, keys=DELTA_KEYS, with_partition_columns=slice_partitions,
                    preview_columns=["host_ip", "role", "slice_start", "sessions_cnt", "bytes_src_sum",
                                     "peer_ip_nunique"],
                    measure="sessions_cnt",
                )
                peer = publish_dataset(
                    frames.peer_slices, dataset="delta_peer_slices", lake=lake, location=peer_uri,
                    partitions=partitions, keys=DELTA_PEER_KEYS, with_partition_columns=slice_partitions,
                    preview_columns=["host_ip", "role", "slice_start", "peer_ip", "peer_port", "sessions_cnt"],
                )
            publish_session_keys(lake, deliveries.clean, keys_uri, partitions)
            quarantined = publish_quarantine(session, lake, raw, deliveries.dq, quarantine, partitions)
            metadata = accounting_metadata(accounts, raw, {
                "rows_out": host.rows_out,
                "peer_slice_rows": peer.rows_out,
                "late_sessions": lateness["late_sessions"],
                "early_sessions": lateness["early_sessions"],
                "host_slices_location": dg.MetadataValue.path(host_uri),
                "peer_slices_location": dg.MetadataValue.path(peer_uri),
                "quarantine_location": dg.MetadataValue.path(quarantine),
                "input_location": dg.MetadataValue.path(spec.input.s3_prefix),
                "preview": dg.MetadataValue.md(host.preview),
            })
        totals = accounts.totals()
        context.log.info(
            f"{project.project_name}: {totals['records_in']} records read, {totals['records_published']} sessions "
            f"counted, {totals['records_quarantined']} quarantined, {totals['records_skipped']} skipped by rule; "
            f"{host.rows_out} host slices, {peer.rows_out} peer slices"
        )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                *host.check_results(),
                _row_count_check(accounts, raw, host, quarantined),
                rejection_check(accounts, spec.dq.max_rejection_rate, f"{item} dq.max_rejection_rate"),
                checks.input_complete_check(raw.listing.skipped, raw.unreadable, raw.listing.unrecognised_folders),
                _monitored_hosts_check(accounts, mapping),
            ],
        )

    return delta

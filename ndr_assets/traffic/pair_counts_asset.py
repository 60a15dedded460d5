"""``pair_counts``: sessions per (src_ip, dst_ip, dst_port) and window, the input of pair rarity."""


import dagster as dg
from pyspark.sql import Column
from pyspark.sql import functions as F

from ndr_assets import checks
from ndr_assets.datasets import quarantine_uri, window_partitions, with_partitions_of_window_end
from ndr_assets.naming import PAIR_COUNTS
from ndr_assets.publishing import publish_dataset
from ndr_assets.traffic.accounting import READ_SKIP_REASONS, account_records, record_outcomes
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
from ndr_assets.transforms.pair_counts import filter_rules, pair_counts_frame
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import DeltaDQ, PairCountsBuilderSpec

PAIR_COUNT_KEYS = ["src_ip", "dst_ip", "dst_port", "event_ts"]
# Pair rarity must not learn garbage addresses: malformed IPs and rows without timestamps go to
# quarantine, as in delta, before the spec's filters apply.
PAIR_COUNTS_DQ = DeltaDQ(drop_malformed_ip=True, duration_non_negative=False, bytes_non_negative=False,
                         filter_null_bytes_ports=False)


def _first_failing_filter(rules: list[tuple[str, Column]]) -> Column:
    reason = F.lit(None).cast("string")
    for name, drops in reversed(rules):
        reason = F.when(drops, F.lit(name)).otherwise(reason)
    return reason


def build_pair_counts_asset(*, project: ProjectConfig, partitions_def, key_prefix: list[str]) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, PAIR_COUNTS])

    @dg.asset(
        **window_asset_settings(key, project, partitions_def, checks.raw_input_check_specs(key, monitored_hosts=False)),
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
        starts = partition_window_starts(context)
        session = spark.session()
        partitions = window_partitions(starts)
        output = spec.pair_counts_output.s3_prefix
        quarantine = quarantine_uri(None, output)
        keys_uri = session_keys_uri(output)
        rules = filter_rules(spec.filters)
        with raw_deliveries(context, session, lake, project=project, spec_input=spec.traffic_input,
                            dq_rules=PAIR_COUNTS_DQ, keys_uri=keys_uri, starts=starts) as deliveries:
            raw, kept = deliveries.raw, deliveries.kept
            rule = deliveries.outcome_rule(_first_failing_filter(rules))
            outcomes = record_outcomes(raw.records, deliveries.dq, deliveries.flagged, rule)
            accounts = account_records(
                outcomes, starts, (*READ_SKIP_REASONS, REDELIVERED, *[name for name, _ in rules])
            )
            pairs = publish_dataset(
                pair_counts_frame(kept, spec.filters), dataset="pair_counts", lake=lake, location=output,
                partitions=partitions, keys=PAIR_COUNT_KEYS,
                with_partition_columns=lambda df: with_partitions_of_window_end(df, "event_ts"),
                preview_columns=["src_ip", "dst_ip", "dst_port", "event_ts", "sessions_cnt"],
                measure="sessions_cnt",
            )
            publish_session_keys(lake, deliveries.clean, keys_uri, partitions)
            quarantined = publish_quarantine(session, lake, raw, deliveries.dq, quarantine, partitions)
            metadata = accounting_metadata(accounts, raw, {
                "rows_out": pairs.rows_out,
                "location": dg.MetadataValue.path(output),
                "quarantine_location": dg.MetadataValue.path(quarantine),
                "preview": dg.MetadataValue.md(pairs.preview),
            })
        totals = accounts.totals()
        problems = quarantine_mismatches(accounts, raw, quarantined)
        if pairs.measured != totals["records_published"]:
            problems.insert(0, f"pair counts hold {pairs.measured} sessions, {totals['records_published']} were counted")
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                *pairs.check_results(),
                checks.row_count_check(
                    not problems, "; ".join(problems) or None,
                    sessions_in_pairs=pairs.measured, sessions_counted=totals["records_published"],
                    quarantine_rows=sum(quarantined.values()),
                ),
                rejection_check(accounts, spec.dq.max_rejection_rate, f"{item} dq.max_rejection_rate"),
                checks.input_complete_check(raw.listing.skipped, raw.unreadable, raw.listing.unrecognised_folders),
            ],
        )

    return pair_counts

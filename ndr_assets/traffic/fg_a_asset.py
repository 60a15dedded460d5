"""``fg_a``: per active host and window, 48 metrics over five windows in both directions and the
trailing day's beacon cadence (493 features)."""


from datetime import datetime, timedelta

import dagster as dg

from ndr_assets import checks
from ndr_assets.datasets import (
    delta_host_slices_uri,
    delta_peer_slices_uri,
    read_required_windows,
    window_partitions,
    with_partitions_of_window_end,
)
from ndr_assets.naming import FG_A
from ndr_assets.partitions import trailing_24h_mapping, trailing_day_before
from ndr_assets.publishing import cached, publish_dataset
from ndr_assets.traffic.common import partition_window_starts, window_asset_settings
from ndr_assets.transforms.fg_a import build_fg_a
from ndr_assets.transforms.schemas import DELTA_HOST_SLICE_SCHEMA, DELTA_PEER_SLICE_SCHEMA, fg_a_schema
from ndr_assets.transforms.windows import floor_to_window_start, window_starts
from ndr_resources.lake import Lake
from ndr_resources.parameter_store.base import ParameterStore
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgABuilderSpec

FG_A_KEYS = ["host_ip", "window_label", "window_end_ts"]


def _trailing_partitions(project: ProjectConfig, starts: list[datetime]):
    """The delta windows FG-A reads: the trailing day before the range, and the range."""
    return window_partitions([*trailing_day_before(starts[0], project.start), *starts])


def build_fg_a_asset(
    *, project: ProjectConfig, partitions_def, key_prefix: list[str], delta_key: dg.AssetKey
) -> dg.AssetsDefinition:
    key = dg.AssetKey([*key_prefix, FG_A])

    @dg.asset(
        **window_asset_settings(key, project, partitions_def, checks.check_specs(key)),
        deps=[dg.AssetDep(delta_key, partition_mapping=trailing_24h_mapping())],
        description=(
            f"FG-A for project {project.project_name}: per active host and window, 48 metrics over "
            "15m/30m/1h/8h/24h windows in both directions, time band and time flags, and the beacon cadence of "
            "the host's most regular outbound pair over 24 h (493 features)."
        ),
    )
    def fg_a(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        spec = parameter_store.load_typed_spec(
            FgABuilderSpec, project.project_name, "fg_a_builder", project.feature_spec_version
        )
        starts = partition_window_starts(context)
        session = spark.session()
        host_uri = delta_host_slices_uri(spec.delta_input.s3_prefix)
        peer_uri = delta_peer_slices_uri(spec.delta_input.s3_prefix)
        trailing = _trailing_partitions(project, starts)
        host_slices = read_required_windows(session, lake, host_uri, trailing, DELTA_HOST_SLICE_SCHEMA,
                                            needed_by=f"{project.project_name}: fg_a", dataset="delta")
        peer_slices, peer_missing = lake.read_partitions(session, peer_uri, trailing, DELTA_PEER_SLICE_SCHEMA)
        project_start = floor_to_window_start(project.start)
        lookback_start = max(project_start, starts[0] - timedelta(days=spec.lookback30d.days))
        lookback_parts = window_partitions(window_starts(lookback_start, starts[0]))
        # The lookback's last day is the trailing day, already read above (and the transform takes those
        # slices from the trailing read): read only the windows before it.
        trailing_labels = {p.label() for p in trailing}
        older_parts = [p for p in lookback_parts if p.label() not in trailing_labels]
        lookback, older_missing = lake.read_partitions(session, peer_uri, older_parts, DELTA_PEER_SLICE_SCHEMA)
        lookback_labels = {p.label() for p in lookback_parts}
        lookback_missing = [*older_missing, *[p for p in peer_missing if p.label() in lookback_labels]]
        # Every FG-A family reads the peer slices (window sums, novelty keys and history, cadence), and the
        # host slices serve the additive family and the active-host count: read each once.
        output = spec.fg_a_output.s3_prefix
        with cached(host_slices, peer_slices):
            features = publish_dataset(
                build_fg_a(host_slices, peer_slices, lookback, starts, spec), dataset="fg_a", lake=lake,
                location=output, partitions=window_partitions(starts), keys=FG_A_KEYS,
                with_partition_columns=lambda df: with_partitions_of_window_end(df, "window_end_ts"),
                preview_columns=["host_ip", "window_label", "window_end_ts", "sessions_cnt_w_15m", "sessions_cnt_w_24h",
                                 "peer_ip_nunique_w_1h", "new_peer_cnt_lookback30d_w_15m", "beacon_cadence_score_w_24h"],
            )
            own = host_slices.where(host_slices["slice_start"] >= starts[0])
            active = own.select("host_ip", "slice_start").distinct().count()
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


"""Locations and partitions of the monthly datasets (FG-B tables, pair rarity), derived from job specs.

FG-B tables live under the spec's ``fg_b_output`` prefix, one sub-path per table, partitioned by
``feature_spec_version``, ``baseline_horizon`` and ``baseline_month`` (the month the baseline serves).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.datasets import window_partitions
from ndr_assets.naming import FG_B_TABLES
from ndr_assets.partitions import next_month_start
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start, window_starts
from ndr_resources.lake import PartitionSpec, join_uri

BASELINE_PARTITION_COLUMNS = ("feature_spec_version", "baseline_horizon", "baseline_month")


def month_label(month_start: datetime) -> str:
    return month_start.strftime("%Y-%m")


def month_start_of(ts: datetime) -> datetime:
    """First instant of the month containing ``ts``: the FG-B partition a window reads."""
    return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def fg_b_table_uri(fg_b_prefix: str, table: str) -> str:
    return join_uri(fg_b_prefix, FG_B_TABLES[table].path) + "/"


def baseline_partition(feature_spec_version: str, horizon: str, month_start: datetime) -> PartitionSpec:
    return PartitionSpec(
        (
            ("feature_spec_version", feature_spec_version),
            ("baseline_horizon", horizon),
            ("baseline_month", month_label(month_start)),
        )
    )


def with_baseline_partition_columns(df: DataFrame, partition: PartitionSpec) -> DataFrame:
    # One projection: each withColumn re-analyses the plan, which for the host table has thousands of columns.
    return df.withColumns({column: F.lit(value) for column, value in partition.values})


def horizon_window_partitions(baseline_end: datetime, days: int, project_start: datetime) -> list[PartitionSpec]:
    """The window partitions a horizon of ``days`` before ``baseline_end`` reads, from the project's start."""
    first = max(floor_to_window_start(project_start), floor_to_window_start(baseline_end - timedelta(days=days)))
    if first < baseline_end - timedelta(days=days):
        first += timedelta(minutes=SLICE_MINUTES)
    return window_partitions(window_starts(first, baseline_end))


def months_in(start: datetime, end: datetime) -> list[datetime]:
    """First instants of the months in ``[start, end)`` (a monthly partition range)."""
    months, current = [], start
    while current < end:
        months.append(current)
        current = next_month_start(current)
    return months

"""Dataset locations and partition helpers of the 15-minute traffic graph, derived from job specs.

Nothing here hard-codes a bucket or a prefix: every URI starts from a job spec's ``s3_prefix``.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.windows import SLICE_MINUTES, dt_col, partition_values, window_col
from ndr_resources.lake import Lake, PartitionSpec, join_uri


def delta_host_slices_uri(delta_prefix: str) -> str:
    return join_uri(delta_prefix, "host_slices") + "/"


def delta_peer_slices_uri(delta_prefix: str) -> str:
    return join_uri(delta_prefix, "peer_slices") + "/"


def quarantine_uri(configured: str | None, output_prefix: str) -> str:
    """Where rejected rows go: the spec's quarantine prefix, else ``_quarantine/`` beside the output."""
    return configured if configured else join_uri(output_prefix, "_quarantine") + "/"


def read_required_windows(
    session, lake: Lake, dataset_uri: str, partitions: list[PartitionSpec], schema, *, needed_by: str, dataset: str
) -> DataFrame:
    """The published windows of ``dataset``; any unpublished one fails the run, naming a few of them.

    ``needed_by`` says who reads (e.g. ``"ndr-acme-finance: FG-C"``), ``dataset`` which asset to
    materialize first. A silent hole would bias every feature computed over it.
    """
    frame, missing = lake.read_partitions(session, dataset_uri, partitions, schema)
    if missing:
        raise dg.Failure(
            description=(
                f"{needed_by} needs {dataset} for {len(missing)} window(s) that are not published, "
                f"e.g. {[m.label() for m in missing[:5]]}; materialize {dataset} for them first."
            ),
            metadata={f"missing_{dataset}_windows": len(missing)},
        )
    return frame


def window_partitions(window_starts: list[datetime]) -> list[PartitionSpec]:
    return [PartitionSpec(partition_values(start)) for start in window_starts]


def with_window_partition_columns(df: DataFrame, window_start_column: str) -> DataFrame:
    """Adds the physical partition columns ``dt`` and ``window`` from a window-start timestamp."""
    column = F.col(window_start_column)
    return df.withColumn("dt", dt_col(column)).withColumn("window", window_col(column))


def with_partitions_of_window_end(df: DataFrame, window_end_column: str) -> DataFrame:
    """``dt``/``window`` of the window that ENDS at ``window_end_column`` (FG-A, FG-C, pair counts rows)."""
    start = F.col(window_end_column) - F.expr(f"INTERVAL {SLICE_MINUTES} MINUTES")
    return df.withColumn("dt", dt_col(start)).withColumn("window", window_col(start))


def markdown_preview(df: DataFrame, columns: list[str], rows: int = 5) -> str:
    """A few rows as a Markdown table for the Dagster UI (a bounded ``take``, never a full collect)."""
    sample = df.select(*columns).take(rows)
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(str(value) for value in row) + " |\n" for row in sample)
    return header + (body or "| " + " | ".join("" for _ in columns) + " |\n")

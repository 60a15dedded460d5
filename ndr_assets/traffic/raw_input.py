"""Finding and reading the raw mini-batches of a range of 15-minute windows.

Shared by `delta` and `pair_counts`, which both read the raw traffic of their windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.readers import read_traffic
from ndr_assets.transforms.windows import (
    MINI_BATCH_TIME_FORMAT,
    floor_to_window_start,
    mini_batch_landing_time,
    slice_start_col,
    window_end_col,
)
from ndr_resources.lake import Lake, join_uri
from ndr_resources.specs import DeltaInput


@dataclass
class MiniBatchListing:
    """The mini-batches whose landing time falls in a window range, and what was passed over."""

    batches: list[str]
    files: list[str]
    # Folders under the ingestion prefix whose name carries no landing time: never silently dropped.
    unrecognised_folders: list[str] = field(default_factory=list)


def list_mini_batches(lake: Lake, ingestion_prefix: str, start: datetime, end: datetime) -> MiniBatchListing:
    """Mini-batch folders under ``ingestion_prefix`` that landed in ``[start, end)``, with their files."""
    batches, unrecognised = [], []
    for name in lake.list_children(ingestion_prefix):
        landed = mini_batch_landing_time(name)
        if landed is None:
            unrecognised.append(name)
        elif start <= floor_to_window_start(landed) < end:
            batches.append(name)
    files = []
    for name in batches:
        files += [
            lake.spark_uri(uri)
            for uri in lake.list_objects(join_uri(ingestion_prefix, name) + "/")
            if not uri.rsplit("/", 1)[-1].startswith(("_", "."))
        ]
    return MiniBatchListing(batches=batches, files=files, unrecognised_folders=unrecognised)


def arrival_window_col() -> Column:
    """The window of the mini-batch that delivered a row (from its ``mini_batch_id``).

    Windowing is by arrival (processing time): a session that arrives late is counted in the window
    whose mini-batch delivered it, and its lateness is reported, so no window is ever rewritten after
    the fact and no row is lost.
    """
    landed = F.to_timestamp(F.substring("mini_batch_id", 1, 16), _spark_format(MINI_BATCH_TIME_FORMAT))
    return slice_start_col(landed)


def with_arrival_window(df: DataFrame) -> DataFrame:
    """Adds ``window_start`` (:func:`arrival_window_col`)."""
    return df.withColumn("window_start", arrival_window_col())


def _spark_format(python_format: str) -> str:
    return python_format.replace("%Y", "yyyy").replace("%m", "MM").replace("%d", "dd").replace(
        "%H", "HH"
    ).replace("%M", "mm").replace("%S", "ss").replace("T", "'T'").replace("Z", "'Z'")


def lateness_counts(traffic: DataFrame) -> dict[str, int]:
    """How many sessions ended before their arrival window (late) or after it (clock skew)."""
    window_end = window_end_col(F.col("window_start"))
    row = traffic.agg(
        F.sum(F.when(F.col("event_end") < F.col("window_start"), 1).otherwise(0)).alias("late_sessions"),
        F.sum(F.when(F.col("event_end") >= window_end, 1).otherwise(0)).alias("early_sessions"),
    ).first()
    return {key: int(row[key] or 0) for key in ("late_sessions", "early_sessions")}


def read_window_traffic(spark, lake: Lake, spec_input: DeltaInput, start: datetime, end: datetime):
    """Reads every mini-batch of ``[start, end)``; returns the listing and the reader's result."""
    listing = list_mini_batches(lake, spec_input.s3_prefix, start, end)
    result = read_traffic(spark, listing.files, spec_input)
    return listing, result


"""Pair rarity baselines: how often and how recently a (source, dst_ip, dst_port) pair was seen in a horizon.

Input: pair counts (``PAIR_COUNTS_SCHEMA``: one row per src_ip, dst_ip, dst_port and 15-minute window,
``event_ts`` = window END). A horizon takes the same windows as the FG-B baselines
(``baselines.in_horizon``: window start >= baseline_end - D days, window end <= baseline_end - G days).

Two tables with the same seven fields: per host (``host_ip`` = src_ip) and per segment (the segment
of src_ip by ``segment_mapping``; a window counts once for the segment however many of its hosts
saw the pair). Rows with a null src_ip, dst_ip, dst_port or event_ts (possible when the pair-counts
filters are switched off) cannot be matched by FG-C and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.baselines import horizon_bounds, in_horizon, require_columns
from ndr_assets.transforms.schemas import (
    PAIR_RARITY_HOST_SCHEMA,
    PAIR_RARITY_SEGMENT_SCHEMA,
    enforce_schema,
)
from ndr_assets.transforms.segments import assign_segment
from ndr_assets.transforms.windows import SLICE_SECONDS
from ndr_resources.specs import PairRarityThresholds, SegmentMapping

PAIR_DESTINATION = ("dst_ip", "dst_port")
_DAY_SECONDS = 86_400

# Formula of every pair rarity field, read by the feature catalog (D = horizon days, G = safety gap
# days, baseline_end = first instant of the month of use; "windows" = pair-count windows in the horizon).
FORMULAS: dict[str, str] = {
    "pair_seen_count": "number of distinct 15-minute windows of the horizon in which the pair was seen "
    "(segment: by any host of the segment)",
    "pair_last_seen_ts": "max(event_ts) over the pair's windows (end of the last window with the pair)",
    "active_days": "number of distinct UTC dates of the pair's window starts (event_ts - 15 min)",
    "pair_daily_avg": "pair_seen_count / active_days",
    "pair_rarity_score": "clip(1 - active_days / D, 0, 1)",
    "is_new_pair_flag": "1 if the pair's first window start (min(event_ts) - 15 min) >= baseline_end - G days - "
    "new_pair_days days, else 0",
    "is_rare_pair_flag": "1 if active_days <= rare_max_active_days, else 0",
}


@dataclass(frozen=True)
class PairRarityFrames:
    host: DataFrame  # PAIR_RARITY_HOST_SCHEMA
    segment: DataFrame  # PAIR_RARITY_SEGMENT_SCHEMA


def pair_rarity(
    pairs: DataFrame,
    keys: list[str],
    *,
    days: int,
    new_since: datetime,
    thresholds: PairRarityThresholds,
) -> DataFrame:
    """The seven rarity fields per ``keys`` from ``(keys, event_ts)`` rows of one horizon.

    ``new_since``: a pair whose first window starts at or after it is new.
    """
    windows = pairs.select(*keys, "event_ts").distinct()
    # UTC date of the window start, as a day number: independent of the session time zone.
    start_day = F.floor((F.unix_timestamp("event_ts") - SLICE_SECONDS) / _DAY_SECONDS)
    daily = windows.groupBy(*keys, start_day.alias("__day")).agg(
        F.count(F.lit(1)).alias("__windows"),
        F.min("event_ts").alias("__first_end"),
        F.max("event_ts").alias("__last_end"),
    )
    per_pair = daily.groupBy(*keys).agg(
        F.sum("__windows").cast("long").alias("pair_seen_count"),
        F.max("__last_end").alias("pair_last_seen_ts"),
        F.count(F.lit(1)).cast("int").alias("active_days"),
        F.min("__first_end").alias("__first_end"),
    )
    first_start = F.col("__first_end") - F.expr(f"INTERVAL {SLICE_SECONDS} SECONDS")
    rarity = F.lit(1.0) - F.col("active_days").cast("double") / F.lit(float(days))
    return per_pair.select(
        *keys,
        "pair_seen_count",
        "pair_last_seen_ts",
        "active_days",
        (F.col("pair_seen_count").cast("double") / F.col("active_days")).alias("pair_daily_avg"),
        F.least(F.greatest(rarity, F.lit(0.0)), F.lit(1.0)).alias("pair_rarity_score"),
        (first_start >= F.lit(new_since)).cast("int").alias("is_new_pair_flag"),
        (F.col("active_days") <= F.lit(thresholds.rare_max_active_days)).cast("int").alias("is_rare_pair_flag"),
    )


def build_pair_rarity(
    pair_counts: DataFrame,
    *,
    segment_mapping: SegmentMapping | None,
    baseline_end: datetime,
    days: int,
    gap_days: int,
    thresholds: PairRarityThresholds,
) -> PairRarityFrames:
    """Host and segment pair rarity of one horizon (``days``, ``gap_days``) for the month starting at ``baseline_end``.

    Raises InputDataError when ``pair_counts`` lacks a column of PAIR_COUNTS_SCHEMA.
    """
    require_columns(pair_counts, ["src_ip", *PAIR_DESTINATION, "event_ts"], "pair counts input")
    bounds = horizon_bounds(baseline_end, days, gap_days)
    new_since = bounds.max_window_end - timedelta(days=thresholds.new_pair_days)
    keys = ["src_ip", *PAIR_DESTINATION, "event_ts"]
    pairs = pair_counts.where(in_horizon(F.col("event_ts"), bounds)).select(*keys).dropna(subset=keys)
    host = pair_rarity(
        pairs.withColumnRenamed("src_ip", "host_ip"),
        ["host_ip", *PAIR_DESTINATION],
        days=days,
        new_since=new_since,
        thresholds=thresholds,
    )
    # Segments of the distinct sources only (far fewer than pair rows), joined back.
    sources = assign_segment(pairs.select("src_ip").distinct(), "src_ip", segment_mapping, "segment_id")
    segment = pair_rarity(
        pairs.join(sources, "src_ip"),
        ["segment_id", *PAIR_DESTINATION],
        days=days,
        new_since=new_since,
        thresholds=thresholds,
    )
    return PairRarityFrames(
        enforce_schema(host, PAIR_RARITY_HOST_SCHEMA, "pair_rarity_host"),
        enforce_schema(segment, PAIR_RARITY_SEGMENT_SCHEMA, "pair_rarity_segment"),
    )

"""Pair counts: sessions per (src_ip, dst_ip, dst_port) and 15-minute window (``pair_counts_builder``).

Input: canonical traffic (``TRAFFIC_SCHEMA``) with ``window_start``, the window of the mini-batch each
row arrived in (processing-time windowing, as for the delta). ``event_ts`` is the window END
(``window_start + 15 min``), the timestamp FG-B's pair rarity horizons are measured against.

The spec's ``filters`` drop rows before counting. Nothing is lost silently: each dropped row is
counted once, under the first filter it fails (``filtered_null_ip`` before
``filtered_null_destination_port``), so ``sum(sessions_cnt) + filtered rows = input rows``. A blank
IP string counts as missing. With a filter switched off its rows are kept as they are (null keys);
the asset's checks report them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.schemas import PAIR_COUNTS_SCHEMA, enforce_schema
from ndr_assets.transforms.windows import window_end_col
from ndr_resources.specs import PairCountsFilters

PAIR_KEYS = ("src_ip", "dst_ip", "dst_port")


@dataclass(frozen=True)
class PairCountsResult:
    # PAIR_COUNTS_SCHEMA columns in order, then ``window_start`` (for the dt/window partition
    # columns only: the asset derives them and drops it before publishing).
    pair_counts: DataFrame
    # Rows each filter dropped: filtered_null_ip, filtered_null_destination_port.
    counters: dict[str, int]


def _missing_ip(column: str) -> Column:
    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def filter_rules(filters: PairCountsFilters) -> list[tuple[str, Column]]:
    """(counter name, condition that DROPS a row) for every enabled filter, in precedence order."""
    rules = []
    if filters.require_nonnull_ips:
        rules.append(("filtered_null_ip", _missing_ip("source_ip") | _missing_ip("destination_ip")))
    if filters.require_destination_port:
        rules.append(("filtered_null_destination_port", F.col("destination_port").isNull()))
    return rules


def filtered_row_counts(traffic: DataFrame, filters: PairCountsFilters) -> dict[str, int]:
    """Rows each filter drops (each row under its first failing filter), in one aggregate pass."""
    counters = {"filtered_null_ip": 0, "filtered_null_destination_port": 0}
    rules = filter_rules(filters)
    if not rules:
        return counters
    first_failing = F.lit(None).cast("string")
    for name, drops in reversed(rules):
        first_failing = F.when(drops, F.lit(name)).otherwise(first_failing)
    sums = [F.sum(F.when(first_failing == name, 1).otherwise(0)).alias(name) for name, _ in rules]
    row = traffic.agg(*sums).first()
    counters.update({name: int(row[name] or 0) for name, _ in rules})
    return counters


def pair_counts_frame(traffic: DataFrame, filters: PairCountsFilters) -> DataFrame:
    """Sessions per pair and window after the filters (``PairCountsResult.pair_counts``), lazily."""
    kept = traffic
    for _, drops in filter_rules(filters):
        kept = kept.filter(~drops)
    counts = kept.groupBy(
        "window_start",
        F.col("source_ip").alias("src_ip"),
        F.col("destination_ip").alias("dst_ip"),
        F.col("destination_port").cast("int").alias("dst_port"),
    ).agg(F.count(F.lit(1)).alias("sessions_cnt"))
    counts = counts.withColumn("event_ts", window_end_col(F.col("window_start")))
    contract = enforce_schema(counts, PAIR_COUNTS_SCHEMA, "pair_counts")
    return counts.select(*contract.columns, "window_start")


def build_pair_counts(traffic: DataFrame, filters: PairCountsFilters) -> PairCountsResult:
    """The pair-count frame plus the filter counters (one small aggregate job when filters are on)."""
    if "window_start" not in traffic.columns:
        raise ValueError("traffic lacks column 'window_start' (the window of each row's mini-batch)")
    return PairCountsResult(pair_counts_frame(traffic, filters), filtered_row_counts(traffic, filters))

"""FG-A beacon cadence: how regularly a host contacts its most regular outbound pair over the trailing 24 h.

In the spirit of RITA's beacon analysis (activecm/rita): a beacon connects to one (dst_ip, dst_port)
on a timer, with small jitter and payloads of similar size, around the clock. The busiest-peer share
of FG-C's ``beacon_suspicion_score`` misses a slow beacon (a few sessions an hour); these features
measure the regularity itself.

Input: the delta peer slices' ``session_timeline`` (outbound role: one ``(event_start_s, bytes_sent)``
per session) of the trailing 24 h; the window of end ``E`` is the slices starting in
``[E - 24 h, E - 15 min]``, the same slices as FG-A's ``w_24h`` (sessions belong to the window that
delivered them; their start times give the intervals).

Per pair (host_ip, peer_ip, peer_port) and window end, with ``t`` = the sorted DISTINCT session start
seconds (several sessions in one second are one connection), ``k = size(t)``:

- ``conn_cnt`` = sessions of the pair in the window; the pair qualifies when ``k >= MIN_CONNECTIONS``;
- intervals ``d_i = t_{i+1} - t_i`` (``k - 1`` of them); ``q1, q2, q3`` = their quartiles, exact,
  linear interpolation between order statistics (numpy's default, as FG-B's ``percentile``);
- ``interval_median_s = q2``;
- ``interval_bowley_skew = (q1 + q3 - 2 q2) / (q3 - q1)``, 0 when ``q3 = q1``; in [-1, 1], 0 = symmetric;
- ``interval_mad_ratio = MAD(d) / q2``, ``MAD = median(|d_i - q2|)`` (``q2 >= 1`` s: distinct seconds);
- bytes ``b`` = bytes sent per session: ``bytes_skew`` = Bowley skew of ``b``, ``bytes_mad = MAD(b)``
  in bytes, ``bytes_mad_ratio = bytes_mad / max(median(b), 1)``;
- ``hourly_coverage`` = distinct hours ``floor((slice_start - (E - 24 h)) / 3600)`` with a session,
  over 24 (the share of the window's 24 hours in which the pair was contacted).

Scores (each in [0, 1], 1 = beacon-like), RITA's components with relative dispersion so one formula
fits a 60 s and a 1 h beacon:

- ``mad_score = max(0, 1 - interval_mad_ratio)``, ``skew_score = 1 - |interval_bowley_skew|``,
  ``regularity = (skew_score + mad_score) / 2``;
- ``persistence = (count_score + hourly_coverage) / 2`` with ``count_score = min(1, k * q2 / 86400)``: the
  connections relative to what a timer of period ``q2`` would make in the window;
- ``data_score = (1 - |bytes_skew| + max(0, 1 - bytes_mad_ratio)) / 2``;
- ``cadence_score = mad_score * (2 * regularity + data_score + persistence) / 4``.

The interval dispersion gates the score: without a regular interval there is no cadence. A plain mean
of the components (RITA's) ranked busy servers first on the benchmark day: Poisson-like traffic
around the clock (MAD/median ~0.7) with uniform sizes scored 0.8 on coverage and sizes alone, above
a 60 s beacon that ran for four hours.

The host's features are those of its pair with the highest ``cadence_score`` (ties: more connections,
then the larger peer_ip, peer_port, so the choice is deterministic). A host without a qualifying pair
in the window gets 0 in every feature (``cadence_score = 0``, ``conn_cnt = 0`` mark the absence).

Cost: the timelines are gathered once per pair over everything read (one shuffle); each pair is
then paired with the requested window ends its slices can reach (1 in steady state, up to 96 in a
day's backfill) and every statistic is computed with array functions in the JVM (``filter``,
``array_sort``, ``element_at``; no UDF, no collect). Pairs with fewer than ``MIN_CONNECTIONS`` distinct
starts over the whole read are dropped before that, which removes most browsing pairs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_a_window_ends import SECONDS_PER_DAY
from ndr_assets.transforms.schemas import BEACON_CADENCE_FEATURES
from ndr_assets.transforms.windows import SLICE_SECONDS

# RITA needs a handful of connections before a pair is scored; 6 starts = 5 intervals, enough for quartiles.
MIN_CONNECTIONS = 6
HOURS_PER_WINDOW = SECONDS_PER_DAY // 3600
_PAIR = ["host_ip", "peer_ip", "peer_port"]
# Feature column -> the per-pair statistic it takes.
FEATURE_SOURCES = {
    "beacon_cadence_score_w_24h": "cadence_score",
    "beacon_pair_conn_cnt_w_24h": "conn_cnt",
    "beacon_interval_median_s_w_24h": "interval_median_s",
    "beacon_interval_mad_ratio_w_24h": "interval_mad_ratio",
    "beacon_interval_bowley_skew_w_24h": "interval_bowley_skew",
    "beacon_bytes_skew_w_24h": "bytes_skew",
    "beacon_bytes_mad_w_24h": "bytes_mad",
    "beacon_hourly_coverage_w_24h": "hourly_coverage",
}
assert list(FEATURE_SOURCES) == list(BEACON_CADENCE_FEATURES)


def quantile_sql(sorted_array: str, p: float) -> str:
    """SQL: the ``p`` quantile of a non-empty ascending array, linear interpolation (numpy's default)."""
    position = f"({p} * (size({sorted_array}) - 1))"
    low = f"element_at({sorted_array}, CAST(floor({position}) AS INT) + 1)"
    high = f"element_at({sorted_array}, CAST(ceil({position}) AS INT) + 1)"
    return f"({low} + ({position} - floor({position})) * ({high} - {low}))"


def bowley_skew_sql(q1: str, q2: str, q3: str) -> str:
    """SQL: Bowley (quartile) skewness, 0 when the quartiles coincide."""
    return f"CASE WHEN {q3} > {q1} THEN ({q1} + {q3} - 2 * {q2}) / ({q3} - {q1}) ELSE 0D END"


def mad_sql(sorted_array: str, median: str) -> str:
    """SQL: median absolute deviation from ``median`` of a non-empty array."""
    return quantile_sql(f"array_sort(transform({sorted_array}, x -> abs(x - {median})))", 0.5)


def outbound_pair_timelines(peer_slices: DataFrame) -> DataFrame:
    """Per outbound pair: every session ``(event_start_s, bytes_sent, slice_s)`` of the slices read, sorted.

    Pairs whose distinct starts over everything read are fewer than ``MIN_CONNECTIONS`` cannot
    qualify in any window and are dropped here, before the per-window work.
    """
    entries = peer_slices.where((F.col("role") == "outbound") & (F.size("session_timeline") > 0)).selectExpr(
        *_PAIR,
        "transform(session_timeline, s -> named_struct('event_start_s', s.event_start_s, "
        "'bytes_sent', s.bytes_sent, 'slice_s', unix_seconds(slice_start))) AS entries",
    )
    pairs = entries.groupBy(*_PAIR).agg(F.array_sort(F.flatten(F.collect_list("entries"))).alias("timeline"))
    return pairs.where(F.size(F.array_distinct(F.expr("timeline.event_start_s"))) >= MIN_CONNECTIONS)


def pair_window_statistics(timelines: DataFrame, end_epochs: list[int]) -> DataFrame:
    """Per qualifying (pair, end_epoch): the statistics and scores of the module docstring."""
    ends = ", ".join(f"{e}L" for e in end_epochs)
    # Window ends a pair's slices can reach: E with some slice in [E - 24 h, E - 15 min].
    reachable = (
        f"filter(array({ends}), e -> e > array_min(timeline.slice_s) "
        f"AND e <= array_max(timeline.slice_s) + {SECONDS_PER_DAY})"
    )
    in_window = (
        f"filter(timeline, s -> s.slice_s >= end_epoch - {SECONDS_PER_DAY} "
        f"AND s.slice_s <= end_epoch - {SLICE_SECONDS})"
    )
    windows = (
        timelines.selectExpr(*_PAIR, "timeline", f"explode({reachable}) AS end_epoch")
        .selectExpr(*_PAIR, "end_epoch", f"{in_window} AS sessions")
        # Sorted by start, so distinct keeps the ascending order.
        .selectExpr(*_PAIR, "end_epoch", "sessions", "array_distinct(sessions.event_start_s) AS starts")
        .where(f"size(starts) >= {MIN_CONNECTIONS}")
    )
    arrays = windows.selectExpr(
        *_PAIR,
        "end_epoch",
        "CAST(size(sessions) AS BIGINT) AS conn_cnt",
        "size(starts) AS starts_cnt",
        "array_sort(transform(slice(starts, 2, size(starts) - 1), (t, i) -> "
        "CAST(t - element_at(starts, i + 1) AS DOUBLE))) AS intervals",
        "array_sort(transform(sessions, s -> CAST(s.bytes_sent AS DOUBLE))) AS sizes",
        "size(array_distinct(transform(sessions, s -> "
        f"floor((s.slice_s - (end_epoch - {SECONDS_PER_DAY})) / 3600)))) / {HOURS_PER_WINDOW}D AS hourly_coverage",
    )
    quartiles = arrays.selectExpr(
        *_PAIR, "end_epoch", "conn_cnt", "starts_cnt", "intervals", "sizes", "hourly_coverage",
        f"{quantile_sql('intervals', 0.25)} AS i_q1",
        f"{quantile_sql('intervals', 0.5)} AS interval_median_s",
        f"{quantile_sql('intervals', 0.75)} AS i_q3",
        f"{quantile_sql('sizes', 0.25)} AS b_q1",
        f"{quantile_sql('sizes', 0.5)} AS b_median",
        f"{quantile_sql('sizes', 0.75)} AS b_q3",
    )
    statistics = quartiles.selectExpr(
        *_PAIR, "end_epoch", "conn_cnt", "starts_cnt", "interval_median_s", "hourly_coverage",
        f"{bowley_skew_sql('i_q1', 'interval_median_s', 'i_q3')} AS interval_bowley_skew",
        f"{mad_sql('intervals', 'interval_median_s')} / interval_median_s AS interval_mad_ratio",
        f"{bowley_skew_sql('b_q1', 'b_median', 'b_q3')} AS bytes_skew",
        f"{mad_sql('sizes', 'b_median')} AS bytes_mad",
        "b_median",
    )
    mad_score = "greatest(0D, 1 - interval_mad_ratio)"
    regularity = f"((1 - abs(interval_bowley_skew)) + {mad_score}) / 2"
    persistence = f"(least(1D, starts_cnt * interval_median_s / {SECONDS_PER_DAY}D) + hourly_coverage) / 2"
    data_score = "(1 - abs(bytes_skew) + greatest(0D, 1 - bytes_mad / greatest(b_median, 1D))) / 2"
    return statistics.selectExpr(
        "*", f"{mad_score} * (2 * ({regularity}) + ({data_score}) + ({persistence})) / 4 AS cadence_score"
    ).drop("starts_cnt", "b_median")


def host_cadence_features(pair_statistics: DataFrame) -> DataFrame:
    """Per (host_ip, end_epoch) with a qualifying pair: the ``BEACON_CADENCE_FEATURES`` of its most regular pair."""
    # max of a struct compares field by field: score, then connections, then the pair (deterministic ties).
    ranked = ["cadence_score", "conn_cnt", "peer_ip", "peer_port"]
    rest = [s for s in FEATURE_SOURCES.values() if s not in ranked]
    best = pair_statistics.groupBy("host_ip", "end_epoch").agg(F.max(F.struct(*ranked, *rest)).alias("best"))
    return best.select(
        "host_ip", "end_epoch", *[F.col(f"best.{source}").alias(name) for name, source in FEATURE_SOURCES.items()]
    )


def beacon_cadence_features(peer_slices: DataFrame, end_epochs: list[int]) -> DataFrame:
    """``host_ip, end_epoch`` and the beacon cadence features, for hosts with a qualifying pair at that end."""
    return host_cadence_features(pair_window_statistics(outbound_pair_timelines(peer_slices), end_epochs))

"""FG-A: per active host and 15-minute window, 48 metrics over five window lengths in both directions.

Input: the delta builder's slices (``DELTA_HOST_SLICE_SCHEMA``, ``DELTA_PEER_SLICE_SCHEMA``) of the
trailing 24 h before the first requested window through the last one, and the peer slices of the
lookback days before the first window. Output: exactly ``schemas.fg_a_schema()``, one row per
``(host_ip, window_end_ts)`` for every host with a delta row (either role) in that window's own slice.

Row key and time band
    ``window_label`` in the row key ``(host_ip, window_label, window_end_ts)`` is the *time band* of the
    window end in ``spec.time_zone``; the earlier contract's ``w_15m`` .. ``w_24h`` labels are column
    suffixes (every row carries all five window lengths). FG-B baselines are therefore per host and
    time band. Bands, first match wins: ``weekend`` (Saturday or Sunday), ``night`` (hour 22:00-05:59),
    ``work_hours`` (``spec.working_hours`` ``[start, end)``, default 08-18), else ``after_hours``.
    ``hour_of_day`` is the local hour of the window end; the four flags ``is_working_hours``,
    ``is_after_hours``, ``is_night``, ``is_weekend`` are one-hot of the band (a Saturday night is
    ``weekend`` only).

Windows
    A window of length ``L`` ending at ``E`` covers the slices starting in ``[E - L, E - 15 min]``;
    column ``<prefix><metric>_<w>`` with prefix ``""`` for role ``outbound`` and ``in_`` for ``inbound``.
    A direction or window without slices has 0 in every metric (never null).

Metric families
    - additive (21): sums of the slices' values; ``max_sessions_per_minute``: maximum over the slices.
    - distribution (9), exact, from the peer slices: distinct peer IPs, ports, segments; Shannon
      entropy (natural log) of the window's sessions over peer IPs / ports (0 for one peer or none);
      top-1 shares = the largest peer's (port's) window sessions or bytes over the window total
      (0 when the total is 0). For ``w_15m`` these equal the delta builder's per-slice values.
    - derived (7): ``duration_mean = duration_sum / sessions_cnt``, ``deny_ratio``, the three
      ``transport_*_ratio`` = count / ``sessions_cnt`` (0 without sessions);
      ``bytes_asymmetry_ratio = (bytes_src_sum - bytes_dst_sum) / (bytes_src_sum + bytes_dst_sum)``
      in ``[-1, 1]`` (+1 = the host only sends, 0 when no bytes either way);
      ``has_high_risk_port_activity = 1`` if ``high_risk_port_sessions_cnt > 0``.
    - novelty (7), per host and role: a key (peer IP, port, ``(peer_ip, peer_port)`` pair, or
      ``(peer_segment, peer_port)`` service = a service in a segment) occurring in the ``w_L`` window
      ending at ``E`` is *new* when it never occurred in the slices starting in
      ``[W - lookback days, E - L)`` with ``W = E - 15 min`` the 15-minute window's start: the
      lookback days before the window, up to the first slice of the ``w_L`` window (earlier slices of
      the same 24 h window are part of the window, not history). *Rare* (peers: ``peer_days``,
      ports: ``port_days`` of ``rare_thresholds``) = seen on at least 1 but fewer than the threshold
      distinct UTC calendar days of that period. ``new_peer_ratio = new_peer_cnt / peer_ip_nunique``.
      Missing history (a project younger than the lookback, or unpublished windows) makes every key
      new: nothing distinguishes "never seen" from "not recorded". History = the lookback read plus
      the trailing slices; where both cover the same slices (the 24 h before the first window) the
      trailing peer slices are used (they are the same delta data).
    - high-risk segment (3): sessions with peers whose ``peer_segment`` is in
      ``spec.high_risk_segments``, their distinct peer IPs, and a 0/1 flag (all 0 without the list).
    - beacon cadence (8 columns, outbound, ``w_24h`` only, after the metric columns): regularity of the
      host's most regular (peer_ip, peer_port) pair from the peer slices' session timelines, RITA-style
      (interval median, MAD/median and Bowley skew, bytes skew and MAD, hourly coverage, a 0..1
      score); all 0 without a pair of at least 6 connections. Formulas in ``fg_a_cadence``.

Computation (see ARCHITECTURE.md, performance rules)
    Every family is one pass over all requested window ends at once, with no per-window query: window
    sums are differences of running sums over a dense 15-minute grid per host and role, or per peer key
    (``fg_a_window_ends``); distinct counts, entropies and top-1 shares aggregate those per-key rows
    (``fg_a_peers``); novelty uses per-day bitmaps of each key's history and, for pairs and services,
    +1/-1 events with a running sum (``fg_a_novelty``). Roles, window lengths and key types become
    columns through one conditional ``groupBy`` per family. No UDF, no collect. ``duration_sum``
    (a double) is summed per window frame rather than as a difference of running sums, so it stays
    exact; entropy uses ``ln T - sum(s ln s) / T`` (equal to ``-sum(p ln p)`` up to rounding).
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_a_cadence import beacon_cadence_features
from ndr_assets.transforms.fg_a_peers import peer_window_metrics
from ndr_assets.transforms.fg_a_window_ends import SECONDS_PER_DAY, sliding_window_sums, window_end_epochs
from ndr_assets.transforms.schemas import (
    ADDITIVE_METRICS,
    DELTA_HOST_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SUM_COLUMNS,
    DIRECTION_PREFIXES,
    MAX_METRICS,
    enforce_schema,
    fg_a_schema,
)
from ndr_assets.transforms.windows import WINDOW_LABELS
from ndr_resources.errors import InputDataError
from ndr_resources.specs import FgABuilderSpec

TIME_BANDS = ("weekend", "night", "work_hours", "after_hours")  # in order of precedence
NIGHT_START_HOUR, NIGHT_END_HOUR = 22, 6  # night = [22:00, 06:00)
# Keys, time band and time flags precede the 480 metric columns and the 8 cadence features in fg_a_schema().
_LEADING_COLUMNS = (
    "host_ip",
    "window_label",
    "window_end_ts",
    "hour_of_day",
    "is_working_hours",
    "is_after_hours",
    "is_night",
    "is_weekend",
)
_CADENCE_INPUT_COLUMNS = ("host_ip", "role", "slice_start", "peer_ip", "peer_port", "session_timeline")
_DOUBLE_HOST_METRICS = {f.name for f in DELTA_HOST_SLICE_SCHEMA.fields if f.dataType.typeName() == "double"}
def _require_columns(df: DataFrame, expected: list[str], what: str) -> None:
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise InputDataError(what, f"missing column(s) {missing}; FG-A needs {expected}")


def time_band_columns(window_end_ts: Column, time_zone: str, working_hours: tuple[int, int]) -> list[Column]:
    """``window_label``, ``hour_of_day`` and the four one-hot flags of a window end (see module doc)."""
    # from_utc_timestamp shifts the instant by the zone's offset; reading the shifted epoch seconds
    # (not hour()/dayofweek(), which use the session time zone) gives the local wall clock.
    local_seconds = F.unix_timestamp(F.from_utc_timestamp(window_end_ts, time_zone))
    hour = F.floor(F.pmod(local_seconds, F.lit(SECONDS_PER_DAY)) / 3600).cast("int")
    weekday = F.pmod(F.floor(local_seconds / SECONDS_PER_DAY) + 4, F.lit(7))  # 1970-01-01 was a Thursday; 0 = Sunday
    is_weekend = weekday.isin(0, 6)
    is_night = (hour >= NIGHT_START_HOUR) | (hour < NIGHT_END_HOUR)
    is_work = (hour >= working_hours[0]) & (hour < working_hours[1])
    label = (
        F.when(is_weekend, "weekend").when(is_night, "night").when(is_work, "work_hours").otherwise("after_hours")
    )

    def flag(band: str) -> Column:
        return F.when(label == band, 1).otherwise(0).cast("int")

    return [
        label.alias("window_label"),
        hour.alias("hour_of_day"),
        flag("work_hours").alias("is_working_hours"),
        flag("after_hours").alias("is_after_hours"),
        flag("night").alias("is_night"),
        flag("weekend").alias("is_weekend"),
    ]


def additive_window_metrics(host_slices: DataFrame, end_epochs: list[int]) -> DataFrame:
    """Additive sums and ``max_sessions_per_minute`` per ``(host_ip, end_epoch)`` for hosts active at the end.

    Active = the host has a slice row (either role) starting at the window start. Window sums come from
    running sums per host and role (:func:`sliding_window_sums`); one ``groupBy`` pivots the roles.
    """
    sums = sliding_window_sums(host_slices, ["host_ip", "role"], list(ADDITIVE_METRICS), list(MAX_METRICS), end_epochs)
    aggregates = ["max(own_slice) AS _active"]
    for role, prefix in DIRECTION_PREFIXES.items():
        for label in WINDOW_LABELS:
            for metric in ADDITIVE_METRICS + MAX_METRICS:
                column = f"{metric}_{label}"
                zero = "0D" if metric in _DOUBLE_HOST_METRICS else "CAST(0 AS BIGINT)"
                aggregates.append(f"coalesce(max(CASE WHEN role = '{role}' THEN {column} END), {zero}) AS {prefix}{column}")
    per_end = sums.groupBy("host_ip", "end_epoch").agg(*[F.expr(a) for a in aggregates])
    return per_end.where("_active = 1").drop("_active")


def derived_columns(prefix: str, label: str) -> dict[str, str]:
    """SQL of the 7 derived metrics of one direction and window, from its additive columns."""

    def c(metric: str) -> str:
        return f"{prefix}{metric}_{label}"

    sessions, src, dst = c("sessions_cnt"), c("bytes_src_sum"), c("bytes_dst_sum")

    def per_session(metric: str) -> str:
        return f"CASE WHEN {sessions} > 0 THEN {c(metric)} / {sessions} ELSE 0D END"

    values = {
        "duration_mean": per_session("duration_sum"),
        "deny_ratio": per_session("deny_cnt"),
        "bytes_asymmetry_ratio": f"CASE WHEN {src} + {dst} > 0 THEN ({src} - {dst}) / ({src} + {dst}) ELSE 0D END",
        "transport_tcp_ratio": per_session("tcp_cnt"),
        "transport_udp_ratio": per_session("udp_cnt"),
        "transport_icmp_ratio": per_session("icmp_cnt"),
        "has_high_risk_port_activity": f"CAST(CASE WHEN {c('high_risk_port_sessions_cnt')} > 0 THEN 1 ELSE 0 END AS BIGINT)",
    }
    return {c(metric): sql for metric, sql in values.items()}


def build_fg_a(
    host_slices: DataFrame,
    peer_slices: DataFrame,
    lookback_peer_slices: DataFrame,
    window_starts: list[datetime],
    spec: FgABuilderSpec,
) -> DataFrame:
    """FG-A rows of the windows starting at ``window_starts`` (on the 08/23/38/53 grid), in ``fg_a_schema()``.

    ``host_slices``/``peer_slices``: delta slices from 24 h before the first window through the last;
    ``lookback_peer_slices``: peer slices of the ``spec.lookback30d.days`` days before the first window
    (ranges may overlap the trailing slices). See the module docstring for every definition.
    """
    _require_columns(host_slices, ["host_ip", "role", "slice_start", *ADDITIVE_METRICS, *MAX_METRICS], "delta host slices")
    peer_columns = list(DELTA_PEER_SLICE_SUM_COLUMNS)
    _require_columns(peer_slices, [f.name for f in DELTA_PEER_SLICE_SCHEMA.fields], "delta peer slices")
    # The 30-day history only needs the keys (novelty): its timelines are never read.
    _require_columns(lookback_peer_slices, peer_columns, "lookback peer slices")
    contract = fg_a_schema()
    end_epochs = window_end_epochs(window_starts)
    if not end_epochs:
        return host_slices.sparkSession.createDataFrame([], contract)

    additive = additive_window_metrics(host_slices, end_epochs)
    peers = peer_window_metrics(
        peer_slices.select(*peer_columns), lookback_peer_slices.select(*peer_columns), end_epochs, spec
    )
    cadence = beacon_cadence_features(peer_slices.select(*_CADENCE_INPUT_COLUMNS), end_epochs)
    joined = additive.join(peers, ["host_ip", "end_epoch"], "left").join(cadence, ["host_ip", "end_epoch"], "left")

    expressions: dict[str, str] = {}
    for prefix in DIRECTION_PREFIXES.values():
        for label in WINDOW_LABELS:
            expressions.update(derived_columns(prefix, label))
    additive_names = set(additive.columns)
    metric_fields = contract.fields[len(_LEADING_COLUMNS) :]
    metrics = []
    for field in metric_fields:
        if field.name in expressions:
            sql = expressions[field.name]
        elif field.name in additive_names:
            sql = field.name
        else:  # peer and cadence families: absent when the host had no (qualifying) peer rows in the window
            sql = f"coalesce({field.name}, CAST(0 AS {field.dataType.simpleString()}))"
        metrics.append(f"{sql} AS {field.name}")

    window_end_ts = F.timestamp_seconds(F.col("end_epoch"))
    band = time_band_columns(window_end_ts, spec.time_zone, tuple(spec.working_hours))
    out = joined.selectExpr("host_ip", "end_epoch", *metrics).select(
        "host_ip", window_end_ts.alias("window_end_ts"), *band, *[f.name for f in metric_fields]
    )
    return enforce_schema(out, contract, "fg_a")

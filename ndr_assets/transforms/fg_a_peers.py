"""FG-A metrics that need the peer detail of a window (from ``DELTA_PEER_SLICE_SCHEMA`` rows).

Distinct counts, entropies and top-1 shares of a window cannot be summed from slices, so they are
computed exactly with a two-level aggregation over *keys* (a peer IP, a port, a segment, a pair, ...):

1. ``(host, role, key_type, key, window end)``: the key's sessions and bytes in each window length and
   whether it occurs in it (slices exploded to the window ends they belong to, see ``fg_a_window_ends``);
2. ``(host, window end)``: per role and window length, the number of present keys, the total, the
   largest key total and ``sum(s * ln s)``, from which entropy and top-1 shares follow.

The same level-1 rows carry the 30-day novelty of each key (how many distinct UTC days of its
lookback period the key was seen on, see :func:`seen_days`) and the high-risk-segment keys.

Entropy uses ``H = ln(T) - (1/T) * sum(s_i * ln s_i)`` with ``T = sum(s_i)``, which equals
``-sum(p_i * ln p_i)`` (natural log, ``p_i = s_i / T``); it is 0 for a single peer and for no traffic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_a_window_ends import (
    LABEL_SLICES,
    SECONDS_PER_DAY,
    explode_to_window_ends,
    in_window,
    slice_epoch,
)
from ndr_assets.transforms.schemas import DIRECTION_PREFIXES
from ndr_assets.transforms.windows import GRID_OFFSET_SECONDS, SLICE_SECONDS, WINDOW_LABELS
from ndr_resources.specs import FgABuilderSpec

KEY_COLUMNS = ["host_ip", "role", "key_type", "key"]

# Key types: what "distinct" is counted over.
IP = "ip"
PORT = "port"
SEGMENT = "segment"
PAIR = "pair"  # (peer_ip, peer_port)
SERVICE = "service"  # (peer_segment, peer_port): a service in a segment
HIGH_RISK_IP = "high_risk_ip"  # peer_ip whose segment is one of spec.high_risk_segments
# Key types whose 30-day history decides novelty.
HISTORY_KEY_TYPES = (IP, PORT, PAIR, SERVICE)

SLOTS_PER_DAY = SECONDS_PER_DAY // SLICE_SECONDS  # 96
_WORD_BITS = SLOTS_PER_DAY // 2  # a day's slots are kept in two 48-bit words (exact in a double power of 2)


def _key_value(key_type: str, high_risk_segments: list[str]) -> Column:
    ip, port, segment = F.col("peer_ip"), F.col("peer_port").cast("string"), F.col("peer_segment")
    values = {
        IP: ip,
        PORT: port,
        SEGMENT: segment,
        PAIR: F.concat_ws("|", ip, port),
        SERVICE: F.concat_ws("|", segment, port),
        HIGH_RISK_IP: F.when(segment.isin(list(high_risk_segments)), ip),
    }
    return values[key_type]


def peer_keys(peer_slices: DataFrame, key_types: Iterable[str], high_risk_segments: list[str] | None = None) -> DataFrame:
    """One row per peer-slice row and key type: ``host_ip, role, key_type, key, slice_start, sessions_cnt, bytes_sum``."""
    keys = F.array(
        *[
            F.struct(F.lit(kt).alias("key_type"), _key_value(kt, high_risk_segments or []).alias("key"))
            for kt in key_types
        ]
    )
    return (
        peer_slices.select("host_ip", "role", "slice_start", "sessions_cnt", "bytes_sum", F.explode(keys).alias("_k"))
        .select(
            "host_ip",
            "role",
            F.col("_k.key_type").alias("key_type"),
            F.col("_k.key").alias("key"),
            "slice_start",
            "sessions_cnt",
            "bytes_sum",
        )
        .where(F.col("key").isNotNull())
    )


def window_key_rows(keys: DataFrame, end_epochs: list[int]) -> DataFrame:
    """Level 1: per key and window end, ``sessions_<w>``, ``bytes_<w>`` and ``present_<w>`` (0/1) for every window length."""
    # Partitioning by key once lets the per-slice and per-end aggregations (and the history join) reuse it.
    per_slice = (
        keys.repartition(*KEY_COLUMNS)
        .groupBy(*KEY_COLUMNS, "slice_start")
        .agg(F.sum("sessions_cnt").alias("sessions_cnt"), F.sum("bytes_sum").alias("bytes_sum"))
    )
    exploded = explode_to_window_ends(per_slice, end_epochs)
    aggregates = []
    for label in WINDOW_LABELS:
        inside = in_window(label)
        aggregates += [
            f"sum(CASE WHEN {inside} THEN sessions_cnt ELSE 0 END) AS sessions_{label}",
            f"sum(CASE WHEN {inside} THEN bytes_sum ELSE 0 END) AS bytes_{label}",
            f"max(CASE WHEN {inside} THEN 1 ELSE 0 END) AS present_{label}",
        ]
    return exploded.groupBy(*KEY_COLUMNS, "end_epoch").agg(*[F.expr(a) for a in aggregates])


# ---------------------------------------------------------------- 30-day history of each key


@dataclass(frozen=True)
class HistoryGrid:
    """The UTC days the history covers: day ``i`` starts at ``base_epoch + i * 86400``."""

    base_epoch: int
    days: int

    @classmethod
    def for_windows(cls, end_epochs: list[int], lookback_days: int) -> HistoryGrid:
        first_start = end_epochs[0] - SLICE_SECONDS
        last_start = end_epochs[-1] - SLICE_SECONDS
        base_day = (first_start - lookback_days * SECONDS_PER_DAY) // SECONDS_PER_DAY
        last_day = last_start // SECONDS_PER_DAY
        return cls(base_day * SECONDS_PER_DAY, last_day - base_day + 1)

    def slot(self, epoch_sql: str) -> str:
        """SQL: index of the slice starting at ``epoch_sql``, counted from the first history day (96 per day)."""
        return f"CAST(floor(({epoch_sql} - {self.base_epoch + GRID_OFFSET_SECONDS}) / {SLICE_SECONDS}) AS BIGINT)"


def key_history(history_slices: DataFrame, grid: HistoryGrid, lower_epoch: int, upper_epoch: int) -> DataFrame:
    """Per key, the slices it occurred in within ``[lower_epoch, upper_epoch)`` as per-day bitmaps.

    Output: ``host_ip, role, key_type, key, slot_words`` (two 48-bit words per history day: bit ``p``
    of day ``d`` = the key occurred in the day's slice ``p``) and ``day_flags`` (one ``'0'``/``'1'``
    character per history day: any occurrence that day). Duplicated input rows (overlapping reads)
    are harmless: occurrences are OR-ed.
    """
    occurrences = (
        peer_keys(history_slices, HISTORY_KEY_TYPES)
        .withColumn("_start", slice_epoch())
        .where(f"_start >= {lower_epoch} AND _start < {upper_epoch}")
        .where(f"pmod(_start - {GRID_OFFSET_SECONDS}, {SLICE_SECONDS}) = 0")
        .withColumn("_slot", F.expr(grid.slot("_start")))
        .selectExpr(
            *KEY_COLUMNS,
            f"CAST(floor(_slot / {SLOTS_PER_DAY}) AS INT) AS _day",
            f"CAST(pmod(_slot, {SLOTS_PER_DAY}) AS INT) AS _pos",
        )
    )
    # Powers of two up to 2^47 are exact doubles.
    low_bit = f"CAST(CASE WHEN _pos < {_WORD_BITS} THEN pow(2, _pos) ELSE 0 END AS BIGINT)"
    high_bit = f"CAST(CASE WHEN _pos >= {_WORD_BITS} THEN pow(2, _pos - {_WORD_BITS}) ELSE 0 END AS BIGINT)"
    per_day = (
        occurrences.repartition(*KEY_COLUMNS)
        .groupBy(*KEY_COLUMNS, "_day")
        .agg(F.expr(f"bit_or({low_bit}) AS _w0"), F.expr(f"bit_or({high_bit}) AS _w1"))
    )
    # Pivot the (at most grid.days) day rows of a key into fixed positions so that a window's boundary
    # days are found by index, not by a search.
    pivot = [f"max(CASE WHEN _day = {day} THEN {word} END) AS {word}_{day}" for day in range(grid.days) for word in ("_w0", "_w1")]
    pivoted = per_day.groupBy(*KEY_COLUMNS).agg(*[F.expr(p) for p in pivot])
    words = ", ".join(f"coalesce({word}_{day}, CAST(0 AS BIGINT))" for day in range(grid.days) for word in ("_w0", "_w1"))
    flags = ", ".join(f"CASE WHEN _w0_{day} IS NULL THEN '0' ELSE '1' END" for day in range(grid.days))
    return pivoted.selectExpr(*KEY_COLUMNS, f"array({words}) AS slot_words", f"concat({flags}) AS day_flags")


def _mask(lo: str, hi: str) -> str:
    """SQL: bits ``lo .. hi-1`` set (0 when empty); ``hi <= 48``, so the powers of two are exact."""
    return f"CASE WHEN {hi} > {lo} THEN CAST(pow(2, {hi}) - pow(2, {lo}) AS BIGINT) ELSE CAST(0 AS BIGINT) END"


def _any_slot(day: str, pos_lo: str, pos_hi: str) -> str:
    """SQL: 1 if the key occurred on history day ``day`` in a slot of ``[pos_lo, pos_hi)``, else 0."""
    word0 = f"try_element_at(slot_words, {day} * 2 + 1)"
    word1 = f"try_element_at(slot_words, {day} * 2 + 2)"
    mask0 = _mask(f"least({pos_lo}, {_WORD_BITS})", f"least({pos_hi}, {_WORD_BITS})")
    mask1 = _mask(f"greatest({pos_lo}, {_WORD_BITS}) - {_WORD_BITS}", f"greatest({pos_hi}, {_WORD_BITS}) - {_WORD_BITS}")
    return f"CAST((({word0}) & ({mask0})) != 0 OR (({word1}) & ({mask1})) != 0 AS INT)"


def seen_days(grid: HistoryGrid, lower_epoch: str, upper_epoch: str) -> str:
    """SQL: distinct UTC days on which the key occurred in a slice starting in ``[lower_epoch, upper_epoch)``.

    Exact for any range on the slice grid inside ``grid``: the first and last day of the range are
    tested slot by slot, the days between by their day flag. Needs ``slot_words``/``day_flags`` from
    :func:`key_history` on the row (null = no history = 0 days).
    """
    first, end = grid.slot(lower_epoch), grid.slot(upper_epoch)  # end is exclusive
    last = f"({end} - 1)"
    first_day, first_pos = f"CAST(floor({first} / {SLOTS_PER_DAY}) AS INT)", f"CAST(pmod({first}, {SLOTS_PER_DAY}) AS INT)"
    last_day, last_pos_end = f"CAST(floor({last} / {SLOTS_PER_DAY}) AS INT)", f"CAST(pmod({last}, {SLOTS_PER_DAY}) + 1 AS INT)"
    days_between = f"length(replace(substring(day_flags, {first_day} + 2, {last_day} - {first_day} - 1), '0', ''))"
    return (
        f"CASE WHEN slot_words IS NULL OR {end} <= {first} THEN 0 "
        f"WHEN {first_day} = {last_day} THEN {_any_slot(first_day, first_pos, last_pos_end)} "
        f"ELSE {_any_slot(first_day, first_pos, str(SLOTS_PER_DAY))} + {days_between} + {_any_slot(last_day, '0', last_pos_end)} END"
    )


# ---------------------------------------------------------------- level 2: per host and window end


def _stat(role: str, label: str, key_type: str, stat: str) -> str:
    return f"_{role}_{label}_{key_type}_{stat}"


def _level2_aggregates(key_types: list[str], peer_days: int, port_days: int) -> list[str]:
    """Per role, window length and key type: the key statistics the final metrics are made of (SQL)."""
    aggregates: list[str] = []
    for role in DIRECTION_PREFIXES:
        for label in WINDOW_LABELS:
            present = f"role = '{role}' AND present_{label} = 1"
            sessions, bytes_, seen = f"sessions_{label}", f"bytes_{label}", f"seen_{label}"
            for key_type in key_types:
                of_key = f"{present} AND key_type = '{key_type}'"
                stats = {"n": f"sum(CASE WHEN {of_key} THEN 1 ELSE 0 END)"}
                if key_type in (IP, PORT, HIGH_RISK_IP):
                    stats["total"] = f"sum(CASE WHEN {of_key} THEN {sessions} ELSE 0 END)"
                if key_type in (IP, PORT):
                    stats["slns"] = f"sum(CASE WHEN {of_key} AND {sessions} > 0 THEN {sessions} * ln({sessions}) ELSE 0D END)"
                    stats["max"] = f"max(CASE WHEN {of_key} THEN {sessions} END)"
                    stats["bytes"] = f"sum(CASE WHEN {of_key} THEN {bytes_} ELSE 0 END)"
                    stats["max_bytes"] = f"max(CASE WHEN {of_key} THEN {bytes_} END)"
                    threshold = peer_days if key_type == IP else port_days
                    stats["rare"] = f"sum(CASE WHEN {of_key} AND {seen} >= 1 AND {seen} < {int(threshold)} THEN 1 ELSE 0 END)"
                if key_type in HISTORY_KEY_TYPES:
                    stats["new"] = f"sum(CASE WHEN {of_key} AND {seen} = 0 THEN 1 ELSE 0 END)"
                aggregates += [f"{sql} AS {_stat(role, label, key_type, stat)}" for stat, sql in stats.items()]
    return aggregates


def _share(part: str, total: str) -> str:
    return f"CASE WHEN {total} > 0 THEN coalesce({part}, 0) / {total} ELSE 0D END"


def _entropy(total: str, slns: str, distinct: str) -> str:
    return f"CASE WHEN {total} > 0 AND {distinct} > 1 THEN greatest(0D, ln({total}) - {slns} / {total}) ELSE 0D END"


def _metric_columns(role: str, label: str, with_high_risk: bool) -> list[str]:
    """SQL select items of the 19 peer-family metrics of one role and window."""
    prefix = DIRECTION_PREFIXES[role]

    def s(key_type: str, stat: str) -> str:
        return _stat(role, label, key_type, stat)

    zero = "CAST(0 AS BIGINT)"
    high_risk_sessions = s(HIGH_RISK_IP, "total") if with_high_risk else zero
    high_risk_peers = s(HIGH_RISK_IP, "n") if with_high_risk else zero
    metrics = {
        "peer_ip_nunique": s(IP, "n"),
        "peer_port_nunique": s(PORT, "n"),
        "peer_segment_nunique": s(SEGMENT, "n"),
        "peer_ip_entropy": _entropy(s(IP, "total"), s(IP, "slns"), s(IP, "n")),
        "peer_port_entropy": _entropy(s(PORT, "total"), s(PORT, "slns"), s(PORT, "n")),
        "peer_ip_top1_sessions_share": _share(s(IP, "max"), s(IP, "total")),
        "peer_port_top1_sessions_share": _share(s(PORT, "max"), s(PORT, "total")),
        "peer_ip_top1_bytes_share": _share(s(IP, "max_bytes"), s(IP, "bytes")),
        "peer_port_top1_bytes_share": _share(s(PORT, "max_bytes"), s(PORT, "bytes")),
        "new_peer_cnt_lookback30d": s(IP, "new"),
        "rare_peer_cnt_lookback30d": s(IP, "rare"),
        "new_peer_ratio_lookback30d": _share(s(IP, "new"), s(IP, "n")),
        "new_dst_port_cnt_lookback30d": s(PORT, "new"),
        "rare_dst_port_cnt_lookback30d": s(PORT, "rare"),
        "new_pair_cnt_lookback30d": s(PAIR, "new"),
        "new_src_dst_port_cnt_lookback30d": s(SERVICE, "new"),
        "high_risk_segment_sessions_cnt": high_risk_sessions,
        "high_risk_segment_unique_dsts": high_risk_peers,
        "has_high_risk_segment_interaction": f"CAST(CASE WHEN {high_risk_peers} > 0 THEN 1 ELSE 0 END AS BIGINT)",
    }
    return [f"{sql} AS {prefix}{metric}_{label}" for metric, sql in metrics.items()]


def peer_window_metrics(
    peer_slices: DataFrame, history_slices: DataFrame, end_epochs: list[int], spec: FgABuilderSpec
) -> DataFrame:
    """Distribution, novelty and high-risk-segment metrics per ``(host_ip, end_epoch)``, both roles, all windows.

    ``history_slices``: peer slices that may hold a key's earlier occurrences (the lookback read and
    the trailing slices; overlaps are fine). A window ending at ``E`` (start ``W = E - 15 min``) of
    length ``L`` looks a key up in ``[W - lookback days, E - L)``: the lookback days before the
    15-minute window, up to the first slice of the ``L`` window.
    """
    high_risk = list(spec.high_risk_segments)
    key_types = [IP, PORT, SEGMENT, PAIR, SERVICE] + ([HIGH_RISK_IP] if high_risk else [])
    lookback_seconds = spec.lookback30d.days * SECONDS_PER_DAY
    grid = HistoryGrid.for_windows(end_epochs, spec.lookback30d.days)
    lower = end_epochs[0] - SLICE_SECONDS - lookback_seconds
    upper = end_epochs[-1] - SLICE_SECONDS
    history = key_history(history_slices, grid, lower, upper)

    rows = window_key_rows(peer_keys(peer_slices, key_types, high_risk), end_epochs).join(history, KEY_COLUMNS, "left")
    lookback_start = f"(end_epoch - {SLICE_SECONDS + lookback_seconds})"
    history_key = "key_type IN (" + ", ".join(f"'{kt}'" for kt in HISTORY_KEY_TYPES) + ")"
    seen = [
        f"CASE WHEN {history_key} THEN {seen_days(grid, lookback_start, f'(end_epoch - {slices * SLICE_SECONDS})')} "
        f"ELSE 0 END AS seen_{label}"
        for label, slices in LABEL_SLICES.items()
    ]
    rows = rows.selectExpr(
        "host_ip",
        "role",
        "key_type",
        "end_epoch",
        *[f"{stat}_{label}" for label in WINDOW_LABELS for stat in ("sessions", "bytes", "present")],
        *seen,
    )
    thresholds = spec.lookback30d.rare_thresholds
    aggregates = _level2_aggregates(key_types, thresholds.get("peer_days", 3), thresholds.get("port_days", 3))
    level2 = rows.groupBy("host_ip", "end_epoch").agg(*[F.expr(a) for a in aggregates])
    metrics = [
        item for role in DIRECTION_PREFIXES for label in WINDOW_LABELS for item in _metric_columns(role, label, bool(high_risk))
    ]
    return level2.selectExpr("host_ip", "end_epoch", *metrics)

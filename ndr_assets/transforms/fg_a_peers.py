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
            F.sum(F.when(inside, F.col("sessions_cnt")).otherwise(0)).alias(f"sessions_{label}"),
            F.sum(F.when(inside, F.col("bytes_sum")).otherwise(0)).alias(f"bytes_{label}"),
            F.max(F.when(inside, 1).otherwise(0)).alias(f"present_{label}"),
        ]
    return exploded.groupBy(*KEY_COLUMNS, "end_epoch").agg(*aggregates)


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

    def slot(self, epoch: Column) -> Column:
        """Index of the slice starting at ``epoch`` counted from the first history day (96 per day)."""
        return F.floor((epoch - F.lit(self.base_epoch + GRID_OFFSET_SECONDS)) / SLICE_SECONDS)


def key_history(history_slices: DataFrame, grid: HistoryGrid, lower_epoch: int, upper_epoch: int) -> DataFrame:
    """Per key, the slices it occurred in within ``[lower_epoch, upper_epoch)`` as per-day bitmaps.

    Output: ``host_ip, role, key_type, key, slot_words`` (two 48-bit words per history day: bit ``p``
    of day ``d`` = the key occurred in the day's slice ``p``) and ``day_flags`` (one ``'0'``/``'1'``
    character per history day: any occurrence that day). Duplicated input rows (overlapping reads)
    are harmless: occurrences are OR-ed.
    """
    start = slice_epoch()
    occurrences = (
        peer_keys(history_slices, HISTORY_KEY_TYPES)
        .withColumn("_start", start)
        .where((F.col("_start") >= lower_epoch) & (F.col("_start") < upper_epoch))
        .where(F.pmod(F.col("_start") - GRID_OFFSET_SECONDS, F.lit(SLICE_SECONDS)) == 0)
        .withColumn("_slot", grid.slot(F.col("_start")))
        .withColumn("_day", F.floor(F.col("_slot") / SLOTS_PER_DAY).cast("int"))
        .withColumn("_pos", F.pmod(F.col("_slot"), F.lit(SLOTS_PER_DAY)).cast("int"))
    )
    low_bit = F.when(F.col("_pos") < _WORD_BITS, F.pow(F.lit(2.0), F.col("_pos"))).otherwise(0.0).cast("long")
    high_bit = F.when(F.col("_pos") >= _WORD_BITS, F.pow(F.lit(2.0), F.col("_pos") - _WORD_BITS)).otherwise(0.0).cast("long")
    per_day = (
        occurrences.repartition(*KEY_COLUMNS)
        .groupBy(*KEY_COLUMNS, "_day")
        .agg(F.bit_or(low_bit).alias("_w0"), F.bit_or(high_bit).alias("_w1"))
    )
    # Pivot the (at most grid.days) day rows of a key into fixed positions so that a window's boundary
    # days are found by index, not by a search.
    words = []
    for day in range(grid.days):
        for word in ("_w0", "_w1"):
            words.append(F.max(F.when(F.col("_day") == day, F.col(word))).alias(f"{word}_{day}"))
    pivoted = per_day.groupBy(*KEY_COLUMNS).agg(*words)
    zero = F.lit(0).cast("long")
    slot_words = F.array(
        *[F.coalesce(F.col(f"{word}_{day}"), zero) for day in range(grid.days) for word in ("_w0", "_w1")]
    )
    day_flags = F.concat(
        *[
            F.when(F.col(f"_w0_{day}").isNotNull(), F.lit("1")).otherwise(F.lit("0"))
            for day in range(grid.days)
        ]
    )
    return pivoted.select(*KEY_COLUMNS, slot_words.alias("slot_words"), day_flags.alias("day_flags"))


def _mask(lo: Column, hi: Column) -> Column:
    """Bits ``lo .. hi-1`` set (0 when empty); ``hi <= 48`` so powers of two are exact doubles."""
    return F.when(hi > lo, (F.pow(F.lit(2.0), hi) - F.pow(F.lit(2.0), lo)).cast("long")).otherwise(F.lit(0).cast("long"))


def _any_slot(day: Column, pos_lo: Column, pos_hi: Column) -> Column:
    """1 if the key occurred in day ``day`` in a slot of ``[pos_lo, pos_hi)``, else 0."""
    word0 = F.element_at(F.col("slot_words"), day * 2 + 1)
    word1 = F.element_at(F.col("slot_words"), day * 2 + 2)
    bits = F.lit(_WORD_BITS)
    mask0 = _mask(F.least(pos_lo, bits), F.least(pos_hi, bits))
    mask1 = _mask(F.greatest(pos_lo, bits) - bits, F.greatest(pos_hi, bits) - bits)
    hit = (word0.bitwiseAND(mask0) != 0) | (word1.bitwiseAND(mask1) != 0)
    return hit.cast("int")


def seen_days(grid: HistoryGrid, lower_epoch: Column, upper_epoch: Column) -> Column:
    """Distinct UTC days on which the key occurred in a slice starting in ``[lower_epoch, upper_epoch)``.

    Exact for any range on the slice grid inside ``grid``: the first and last day of the range are
    tested slot by slot, the days between by their day flag. Needs ``slot_words``/``day_flags`` from
    :func:`key_history` on the row (null = no history = 0 days).
    """
    first = grid.slot(lower_epoch)
    end = grid.slot(upper_epoch)  # exclusive
    last = end - 1
    first_day, first_pos = F.floor(first / SLOTS_PER_DAY).cast("int"), F.pmod(first, F.lit(SLOTS_PER_DAY)).cast("int")
    last_day, last_pos_end = F.floor(last / SLOTS_PER_DAY).cast("int"), (F.pmod(last, F.lit(SLOTS_PER_DAY)) + 1).cast("int")
    full_day = F.lit(SLOTS_PER_DAY)
    days_between = F.length(
        F.regexp_replace(F.col("day_flags").substr(first_day + 2, last_day - first_day - 1), "0", "")
    )
    counted = (
        F.when(end <= first, F.lit(0))
        .when(first_day == last_day, _any_slot(first_day, first_pos, last_pos_end))
        .otherwise(_any_slot(first_day, first_pos, full_day) + days_between + _any_slot(last_day, F.lit(0), last_pos_end))
    )
    return F.when(F.col("slot_words").isNull(), F.lit(0)).otherwise(counted)


# ---------------------------------------------------------------- level 2: per host and window end


def _stat(role: str, label: str, key_type: str, stat: str) -> str:
    return f"_{role}_{label}_{key_type}_{stat}"


def _level2_aggregates(key_types: list[str], peer_days: int, port_days: int) -> list[Column]:
    """Per role, window length and key type: the key statistics the final metrics are made of."""
    aggregates: list[Column] = []
    for role in DIRECTION_PREFIXES:
        for label in WINDOW_LABELS:
            present = (F.col("role") == role) & (F.col(f"present_{label}") == 1)
            sessions, bytes_, seen = F.col(f"sessions_{label}"), F.col(f"bytes_{label}"), F.col(f"seen_{label}")
            for key_type in key_types:
                of_key = present & (F.col("key_type") == key_type)
                stats = {"n": F.sum(F.when(of_key, 1).otherwise(0))}
                if key_type in (IP, PORT, HIGH_RISK_IP):
                    stats["total"] = F.sum(F.when(of_key, sessions).otherwise(0))
                if key_type in (IP, PORT):
                    stats["slns"] = F.sum(F.when(of_key & (sessions > 0), sessions * F.log(sessions)).otherwise(0.0))
                    stats["max"] = F.max(F.when(of_key, sessions))
                    stats["bytes"] = F.sum(F.when(of_key, bytes_).otherwise(0))
                    stats["max_bytes"] = F.max(F.when(of_key, bytes_))
                    threshold = peer_days if key_type == IP else port_days
                    stats["rare"] = F.sum(F.when(of_key & (seen >= 1) & (seen < threshold), 1).otherwise(0))
                if key_type in HISTORY_KEY_TYPES:
                    stats["new"] = F.sum(F.when(of_key & (seen == 0), 1).otherwise(0))
                aggregates += [column.alias(_stat(role, label, key_type, stat)) for stat, column in stats.items()]
    return aggregates


def _share(part: Column, total: Column) -> Column:
    return F.when(total > 0, F.coalesce(part, F.lit(0)) / total).otherwise(F.lit(0.0))


def _entropy(total: Column, slns: Column, distinct: Column) -> Column:
    entropy = F.greatest(F.lit(0.0), F.log(total) - slns / total)
    return F.when((total > 0) & (distinct > 1), entropy).otherwise(F.lit(0.0))


def _metric_columns(role: str, label: str, with_high_risk: bool) -> list[Column]:
    prefix = DIRECTION_PREFIXES[role]

    def s(key_type: str, stat: str) -> Column:
        return F.col(_stat(role, label, key_type, stat))

    def name(metric: str) -> str:
        return f"{prefix}{metric}_{label}"

    zero = F.lit(0).cast("long")
    high_risk_sessions = s(HIGH_RISK_IP, "total") if with_high_risk else zero
    high_risk_peers = s(HIGH_RISK_IP, "n") if with_high_risk else zero
    return [
        s(IP, "n").alias(name("peer_ip_nunique")),
        s(PORT, "n").alias(name("peer_port_nunique")),
        s(SEGMENT, "n").alias(name("peer_segment_nunique")),
        _entropy(s(IP, "total"), s(IP, "slns"), s(IP, "n")).alias(name("peer_ip_entropy")),
        _entropy(s(PORT, "total"), s(PORT, "slns"), s(PORT, "n")).alias(name("peer_port_entropy")),
        _share(s(IP, "max"), s(IP, "total")).alias(name("peer_ip_top1_sessions_share")),
        _share(s(PORT, "max"), s(PORT, "total")).alias(name("peer_port_top1_sessions_share")),
        _share(s(IP, "max_bytes"), s(IP, "bytes")).alias(name("peer_ip_top1_bytes_share")),
        _share(s(PORT, "max_bytes"), s(PORT, "bytes")).alias(name("peer_port_top1_bytes_share")),
        s(IP, "new").alias(name("new_peer_cnt_lookback30d")),
        s(IP, "rare").alias(name("rare_peer_cnt_lookback30d")),
        _share(s(IP, "new"), s(IP, "n")).alias(name("new_peer_ratio_lookback30d")),
        s(PORT, "new").alias(name("new_dst_port_cnt_lookback30d")),
        s(PORT, "rare").alias(name("rare_dst_port_cnt_lookback30d")),
        s(PAIR, "new").alias(name("new_pair_cnt_lookback30d")),
        s(SERVICE, "new").alias(name("new_src_dst_port_cnt_lookback30d")),
        high_risk_sessions.alias(name("high_risk_segment_sessions_cnt")),
        high_risk_peers.alias(name("high_risk_segment_unique_dsts")),
        F.when(high_risk_peers > 0, 1).otherwise(0).cast("long").alias(name("has_high_risk_segment_interaction")),
    ]


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
    lookback_start = F.col("end_epoch") - SLICE_SECONDS - lookback_seconds
    is_history_key = F.col("key_type").isin(list(HISTORY_KEY_TYPES))
    seen = [
        F.when(is_history_key, seen_days(grid, lookback_start, F.col("end_epoch") - slices * SLICE_SECONDS))
        .otherwise(F.lit(0))
        .alias(f"seen_{label}")
        for label, slices in LABEL_SLICES.items()
    ]
    rows = rows.select(
        "host_ip",
        "role",
        "key_type",
        "end_epoch",
        *[F.col(f"{stat}_{label}") for label in WINDOW_LABELS for stat in ("sessions", "bytes", "present")],
        *seen,
    )
    thresholds = spec.lookback30d.rare_thresholds
    level2 = rows.groupBy("host_ip", "end_epoch").agg(
        *_level2_aggregates(key_types, thresholds.get("peer_days", 3), thresholds.get("port_days", 3))
    )
    metrics = [
        column
        for role in DIRECTION_PREFIXES
        for label in WINDOW_LABELS
        for column in _metric_columns(role, label, bool(high_risk))
    ]
    return level2.select("host_ip", "end_epoch", *metrics)

"""FG-A metrics that need the peer detail of a window (from ``DELTA_PEER_SLICE_SCHEMA`` rows).

Distinct counts, entropies and top-1 shares of a window cannot be summed from slices; they are
computed exactly over *keys* (a peer IP, a port, a segment, a pair, ...), all window ends at once:

1. per key and window end, the key's sessions and bytes in each window length
   (:func:`~ndr_assets.transforms.fg_a_window_ends.sliding_window_sums`), for the key types a host
   has few of (peer IPs, ports, segments, high-risk peer IPs); the 30-day history of IPs and ports
   gives each row its new/rare status (``fg_a_novelty``);
2. per host, role, key type and window end: the number of present keys, the total, the largest key
   total and ``sum(s * ln s)``, from which entropy and top-1 shares follow;
3. pairs and services (many per host, only their novelty is needed) are counted with +1/-1 events
   without per-key rows (:func:`~ndr_assets.transforms.fg_a_novelty.new_key_counts`);
4. one ``groupBy`` per host and window end pivots roles, key types and window lengths into columns.

Entropy uses ``H = ln(T) - (1/T) * sum(s_i * ln s_i)`` with ``T = sum(s_i)``, which equals
``-sum(p_i * ln p_i)`` (natural log, ``p_i = s_i / T``); it is 0 for a single peer and for no traffic.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_a_novelty import HistoryGrid, key_history, key_occurrences, new_key_counts, with_seen_days
from ndr_assets.transforms.fg_a_window_ends import SECONDS_PER_DAY, slice_range, sliding_window_sums
from ndr_assets.transforms.schemas import DIRECTION_PREFIXES
from ndr_assets.transforms.windows import SLICE_SECONDS, WINDOW_LABELS
from ndr_resources.specs import FgABuilderSpec

SERIES = ["host_ip", "role", "key_type"]
KEY_COLUMNS = [*SERIES, "key"]

# Key types: what "distinct" is counted over.
IP = "ip"
PORT = "port"
SEGMENT = "segment"
PAIR = "pair"  # (peer_ip, peer_port)
SERVICE = "service"  # (peer_segment, peer_port): a service in a segment
HIGH_RISK_IP = "high_risk_ip"  # peer_ip whose segment is one of spec.high_risk_segments
# Key types with per-key window rows (few keys per host) and those counted by events (novelty only).
WINDOWED_KEY_TYPES = (IP, PORT, SEGMENT, HIGH_RISK_IP)
EVENT_KEY_TYPES = (PAIR, SERVICE)
HISTORY_KEY_TYPES = (IP, PORT, PAIR, SERVICE)
# Statistics of step 2 each key type needs.
_STATS = {
    IP: ("n", "total", "slns", "max", "bytes", "max_bytes", "new", "rare"),
    PORT: ("n", "total", "slns", "max", "bytes", "max_bytes", "new", "rare"),
    SEGMENT: ("n",),
    HIGH_RISK_IP: ("n", "total"),
    PAIR: ("new",),
    SERVICE: ("new",),
}


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


def _key_statistics(rows: DataFrame, peer_days: int, port_days: int) -> DataFrame:
    """Step 2: per host, role, key type and window end, the key statistics of every window length."""
    threshold = f"CASE key_type WHEN '{IP}' THEN {int(peer_days)} ELSE {int(port_days)} END"
    aggregates = []
    for label in WINDOW_LABELS:
        present, sessions, bytes_, seen = f"slices_{label} > 0", f"sessions_cnt_{label}", f"bytes_sum_{label}", f"seen_{label}"
        aggregates += [
            f"sum(CASE WHEN {present} THEN 1 ELSE 0 END) AS n_{label}",
            f"sum({sessions}) AS total_{label}",
            f"sum(CASE WHEN {sessions} > 0 THEN {sessions} * ln({sessions}) ELSE 0D END) AS slns_{label}",
            f"max({sessions}) AS max_{label}",
            f"sum({bytes_}) AS bytes_{label}",
            f"max({bytes_}) AS max_bytes_{label}",
            f"sum(CASE WHEN {present} AND {seen} = 0 THEN 1 ELSE 0 END) AS new_{label}",
            f"sum(CASE WHEN {present} AND {seen} >= 1 AND {seen} < {threshold} THEN 1 ELSE 0 END) AS rare_{label}",
        ]
    return rows.groupBy(*SERIES, "end_epoch").agg(*[F.expr(a) for a in aggregates])


def _stat(role: str, label: str, key_type: str, stat: str) -> str:
    return f"_{role}_{label}_{key_type}_{stat}"


def _pivot(statistics: DataFrame, key_types: list[str]) -> DataFrame:
    """Step 4: one row per host and window end, a column per role, window length, key type and statistic."""
    aggregates = [
        f"max(CASE WHEN role = '{role}' AND key_type = '{kt}' THEN {stat}_{label} END) AS {_stat(role, label, kt, stat)}"
        for role in DIRECTION_PREFIXES
        for label in WINDOW_LABELS
        for kt in key_types
        for stat in _STATS[kt]
    ]
    return statistics.groupBy("host_ip", "end_epoch").agg(*[F.expr(a) for a in aggregates])


def _share(part: str, total: str) -> str:
    return f"CASE WHEN {total} > 0 THEN coalesce({part}, 0) / {total} ELSE 0D END"


def _entropy(total: str, slns: str, distinct: str) -> str:
    return f"CASE WHEN {total} > 0 AND {distinct} > 1 THEN greatest(0D, ln({total}) - {slns} / {total}) ELSE 0D END"


def _metric_columns(role: str, label: str, with_high_risk: bool) -> list[str]:
    """SQL select items of the 19 peer-family metrics of one role and window."""
    prefix = DIRECTION_PREFIXES[role]

    def s(key_type: str, stat: str) -> str:
        return f"coalesce({_stat(role, label, key_type, stat)}, 0)"

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
    peer_slices: DataFrame, lookback_peer_slices: DataFrame, end_epochs: list[int], spec: FgABuilderSpec
) -> DataFrame:
    """Distribution, novelty and high-risk-segment metrics per ``(host_ip, end_epoch)``, both roles, all windows.

    A window ending at ``E`` (start ``W = E - 15 min``) of length ``L`` looks a key up in
    ``[W - lookback days, E - L)``: the lookback days before the 15-minute window, up to the first
    slice of the ``L`` window. Where the lookback read overlaps ``peer_slices`` (the 24 h before the
    first window), ``peer_slices`` is authoritative: both are the same delta data.
    """
    high_risk = list(spec.high_risk_segments)
    days = spec.lookback30d.days
    windowed = [kt for kt in WINDOWED_KEY_TYPES if kt != HIGH_RISK_IP or high_risk]
    grid = HistoryGrid.for_windows(end_epochs, days)
    lower = end_epochs[0] - SLICE_SECONDS - days * SECONDS_PER_DAY
    upper = end_epochs[-1] - SLICE_SECONDS
    earliest_trailing, _ = slice_range(end_epochs)
    history_slices = lookback_peer_slices.where(F.unix_timestamp("slice_start") < earliest_trailing).unionByName(peer_slices)
    # One read and one shuffle of the (large) lookback serve both novelty methods.
    occurrences = key_occurrences(peer_keys(history_slices, HISTORY_KEY_TYPES), KEY_COLUMNS, lower, upper)
    history = key_history(occurrences.where(F.col("key_type").isin(IP, PORT)), KEY_COLUMNS, grid)

    key_rows = sliding_window_sums(
        peer_keys(peer_slices, windowed, high_risk), KEY_COLUMNS, ["sessions_cnt", "bytes_sum"], [], end_epochs
    )
    thresholds = spec.lookback30d.rare_thresholds
    statistics = _key_statistics(
        with_seen_days(key_rows, history, KEY_COLUMNS, grid, days),
        thresholds.get("peer_days", 3),
        thresholds.get("port_days", 3),
    )
    new_pairs_and_services = new_key_counts(
        peer_keys(peer_slices, EVENT_KEY_TYPES),
        occurrences.where(F.col("key_type").isin(*EVENT_KEY_TYPES)),
        SERIES,
        end_epochs,
        days,
    )
    pivoted = _pivot(statistics.unionByName(new_pairs_and_services, allowMissingColumns=True), [*windowed, *EVENT_KEY_TYPES])
    metrics = [
        item for role in DIRECTION_PREFIXES for label in WINDOW_LABELS for item in _metric_columns(role, label, bool(high_risk))
    ]
    return pivoted.selectExpr("host_ip", "end_epoch", *metrics)

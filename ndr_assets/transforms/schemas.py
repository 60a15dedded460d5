"""Explicit schemas of every dataset the 15-minute graph reads and writes.

One place for column names and types: readers project onto ``TRAFFIC_SCHEMA``; the delta builder
writes ``DELTA_HOST_SLICE_SCHEMA`` and ``DELTA_PEER_SLICE_SCHEMA``; FG-A writes ``fg_a_schema()``;
pair counts write ``PAIR_COUNTS_SCHEMA``. Names follow spec 003 item 7 and ``fg_a_metrics.md``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ndr_assets.transforms.windows import WINDOW_LABELS
from ndr_resources.errors import SchemaContractError

# ---------------------------------------------------------------- canonical traffic (reader output)

TRAFFIC_SCHEMA = T.StructType(
    [
        T.StructField("source_ip", T.StringType()),
        T.StructField("destination_ip", T.StringType()),
        T.StructField("source_port", T.IntegerType()),
        T.StructField("destination_port", T.IntegerType()),
        T.StructField("protocol", T.StringType()),  # lower case: tcp, udp, icmp, ...
        T.StructField("action", T.StringType()),  # lower case PAN-OS action: allow, deny, drop, reset-both, ...
        T.StructField("source_bytes", T.LongType()),  # bytes sent by the session's source
        T.StructField("destination_bytes", T.LongType()),  # bytes sent by the session's destination
        T.StructField("packets", T.LongType()),
        T.StructField("event_start", T.TimestampType()),
        T.StructField("event_end", T.TimestampType()),
        T.StructField("duration_s", T.DoubleType()),
        T.StructField("application", T.StringType()),
        T.StructField("rule", T.StringType()),
        T.StructField("source_zone", T.StringType()),
        T.StructField("destination_zone", T.StringType()),
        T.StructField("session_end_reason", T.StringType()),
        T.StructField("log_type", T.StringType()),  # TRAFFIC
        T.StructField("log_subtype", T.StringType()),  # end, drop, deny (start logs are skipped by the reader)
        T.StructField("device_serial", T.StringType()),  # the firewall's serial number (null: one firewall)
        T.StructField("session_id", T.LongType()),  # the firewall's session id (reused after a while)
        T.StructField("mini_batch_id", T.StringType()),
        T.StructField("source_file", T.StringType()),
    ]
)

# Rows rejected by a DQ rule or a parser: the original record, why, and where it came from.
# ``raw_record`` is binary: a rejected line's bytes as delivered (they need not be UTF-8, and a string
# column holding invalid UTF-8 makes the Parquet file unreadable for pyarrow/pandas); DQ rejects and
# Parquet rows hold their values as JSON text in UTF-8.
QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("reject_reason", T.StringType(), False),
        T.StructField("raw_record", T.BinaryType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("mini_batch_id", T.StringType()),
        T.StructField("window_start", T.TimestampType(), False),
    ]
)

# ---------------------------------------------------------------- delta (per host, role, slice)

DELTA_KEY_FIELDS = [
    T.StructField("host_ip", T.StringType(), False),
    T.StructField("role", T.StringType(), False),  # outbound | inbound
    T.StructField("slice_start", T.TimestampType(), False),
    T.StructField("slice_end", T.TimestampType(), False),
]

# Additive per-slice counts and sums: a window's value is the sum of its slices.
ADDITIVE_METRICS = (
    "sessions_cnt",
    "allow_cnt",
    "deny_cnt",
    "alert_cnt",
    "rst_cnt",
    "aged_out_cnt",
    "zero_reply_cnt",
    "short_session_cnt",
    "bytes_src_sum",
    "bytes_dst_sum",
    "duration_sum",
    "tcp_cnt",
    "udp_cnt",
    "icmp_cnt",
    "threat_cnt",
    "traffic_cnt",
    "high_risk_port_sessions_cnt",
    "admin_port_sessions_cnt",
    "fileshare_port_sessions_cnt",
    "directory_port_sessions_cnt",
    "db_port_sessions_cnt",
)
# Need the peer/port detail of the whole window (computed from DELTA_PEER_SLICE rows for windows > 15m).
DISTRIBUTION_METRICS = (
    "peer_ip_nunique",
    "peer_port_nunique",
    "peer_segment_nunique",
    "peer_ip_entropy",
    "peer_port_entropy",
    "peer_ip_top1_sessions_share",
    "peer_port_top1_sessions_share",
    "peer_ip_top1_bytes_share",
    "peer_port_top1_bytes_share",
)
# A window's value is the maximum of its slices.
MAX_METRICS = ("max_sessions_per_minute",)
BASE_METRICS = ADDITIVE_METRICS + DISTRIBUTION_METRICS + MAX_METRICS  # the 31 base metrics

_DOUBLE_METRICS = {
    "duration_sum",
    "peer_ip_entropy",
    "peer_port_entropy",
    "peer_ip_top1_sessions_share",
    "peer_port_top1_sessions_share",
    "peer_ip_top1_bytes_share",
    "peer_port_top1_bytes_share",
}


def _metric_type(name: str) -> T.DataType:
    return T.DoubleType() if name in _DOUBLE_METRICS else T.LongType()


DELTA_HOST_SLICE_SCHEMA = T.StructType(
    DELTA_KEY_FIELDS
    + [T.StructField(m, _metric_type(m), False) for m in BASE_METRICS]
    + [
        # Extra delta-only columns (not FG-A model inputs).
        T.StructField("packets_sum", T.LongType()),  # null when the source has no packet counts
        T.StructField("duration_max", T.DoubleType(), False),
    ]
)

# One element per session of an outbound peer endpoint in a slice: when it started (epoch seconds)
# and the bytes the host sent. FG-A's beacon cadence needs per-session times (inter-arrival
# intervals) and sizes, which the slice's sums cannot give. Nullable element and fields so that a
# cast from what collect_list produces always succeeds.
SESSION_TIMELINE_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("event_start_s", T.LongType()),
            T.StructField("bytes_sent", T.LongType()),
        ]
    )
)

# Per host, role, slice and peer endpoint: the detail FG-A needs for distinct counts, entropies,
# top-1 shares, high-risk segments, 30-day novelty and beacon cadence over windows longer than one slice.
DELTA_PEER_SLICE_SCHEMA = T.StructType(
    DELTA_KEY_FIELDS
    + [
        T.StructField("peer_ip", T.StringType(), False),
        T.StructField("peer_port", T.IntegerType(), False),
        T.StructField("peer_segment", T.StringType(), False),
        T.StructField("sessions_cnt", T.LongType(), False),
        T.StructField("bytes_sum", T.LongType(), False),  # bytes sent + received with this peer endpoint
        # Sorted by start; outbound rows only (cadence is the initiator's), empty for inbound rows.
        T.StructField("session_timeline", SESSION_TIMELINE_TYPE, False),
    ]
)
# The peer-slice columns of the distinct-count, entropy, share and novelty families (all but the timeline).
DELTA_PEER_SLICE_SUM_COLUMNS = tuple(f.name for f in DELTA_PEER_SLICE_SCHEMA.fields if f.name != "session_timeline")

# ---------------------------------------------------------------- pair counts

PAIR_COUNTS_SCHEMA = T.StructType(
    [
        T.StructField("src_ip", T.StringType(), False),
        T.StructField("dst_ip", T.StringType(), False),
        T.StructField("dst_port", T.IntegerType(), False),
        T.StructField("event_ts", T.TimestampType(), False),  # end of the 15-minute window
        T.StructField("sessions_cnt", T.LongType(), False),
    ]
)

# ---------------------------------------------------------------- FG-A

DERIVED_METRICS = (
    "duration_mean",
    "deny_ratio",
    "bytes_asymmetry_ratio",
    "transport_tcp_ratio",
    "transport_udp_ratio",
    "transport_icmp_ratio",
    "has_high_risk_port_activity",
)
NOVELTY_METRICS = (
    "new_peer_cnt_lookback30d",
    "rare_peer_cnt_lookback30d",
    "new_peer_ratio_lookback30d",
    "new_dst_port_cnt_lookback30d",
    "rare_dst_port_cnt_lookback30d",
    "new_pair_cnt_lookback30d",
    "new_src_dst_port_cnt_lookback30d",
)
HIGH_RISK_SEGMENT_METRICS = (
    "high_risk_segment_sessions_cnt",
    "high_risk_segment_unique_dsts",
    "has_high_risk_segment_interaction",
)
FG_A_METRICS = BASE_METRICS + DERIVED_METRICS + NOVELTY_METRICS + HIGH_RISK_SEGMENT_METRICS  # 48
DIRECTION_PREFIXES = {"outbound": "", "inbound": "in_"}
INBOUND_PREFIX = DIRECTION_PREFIXES["inbound"]


def is_inbound_column(fg_a_column: str) -> bool:
    """An FG-A column of the inbound direction: what other hosts did to this one."""
    return fg_a_column.startswith(INBOUND_PREFIX)


TIME_FEATURES = ("hour_of_day", "is_working_hours", "is_after_hours", "is_night", "is_weekend")
# Beacon cadence of the host's most regular outbound (peer_ip, peer_port) pair over the trailing 24 h
# (``fg_a_cadence``): after the 480 metric columns, not part of the FG-B/FG-C metric lists.
BEACON_CADENCE_FEATURES: dict[str, T.DataType] = {
    "beacon_cadence_score_w_24h": T.DoubleType(),
    "beacon_pair_conn_cnt_w_24h": T.LongType(),
    "beacon_interval_median_s_w_24h": T.DoubleType(),
    "beacon_interval_mad_ratio_w_24h": T.DoubleType(),
    "beacon_interval_bowley_skew_w_24h": T.DoubleType(),
    "beacon_bytes_skew_w_24h": T.DoubleType(),
    "beacon_bytes_mad_w_24h": T.DoubleType(),
    "beacon_hourly_coverage_w_24h": T.DoubleType(),
}
FG_A_KEY_FIELDS = [
    T.StructField("host_ip", T.StringType(), False),
    # Time band of the window end (see docs/features.md): work_hours | after_hours | night | weekend.
    T.StructField("window_label", T.StringType(), False),
    T.StructField("window_end_ts", T.TimestampType(), False),
]

_DOUBLE_FG_A = _DOUBLE_METRICS | {
    "duration_mean",
    "deny_ratio",
    "bytes_asymmetry_ratio",
    "transport_tcp_ratio",
    "transport_udp_ratio",
    "transport_icmp_ratio",
    "new_peer_ratio_lookback30d",
}


def fg_a_metric_columns() -> list[str]:
    """The 480 metric columns: ``<prefix><metric>_<window_label>`` for both directions."""
    return [
        f"{prefix}{metric}_{label}"
        for prefix in DIRECTION_PREFIXES.values()
        for metric in FG_A_METRICS
        for label in WINDOW_LABELS
    ]


def fg_a_schema() -> T.StructType:
    fields = list(FG_A_KEY_FIELDS)
    fields.append(T.StructField("hour_of_day", T.IntegerType(), False))
    fields += [T.StructField(flag, T.IntegerType(), False) for flag in TIME_FEATURES[1:]]
    for prefix in DIRECTION_PREFIXES.values():
        for metric in FG_A_METRICS:
            dtype = T.DoubleType() if metric in _DOUBLE_FG_A else T.LongType()
            for label in WINDOW_LABELS:
                fields.append(T.StructField(f"{prefix}{metric}_{label}", dtype, False))
    fields += [T.StructField(name, dtype, False) for name, dtype in BEACON_CADENCE_FEATURES.items()]
    return T.StructType(fields)


# ---------------------------------------------------------------- contract enforcement


def enforce_schema(df: DataFrame, contract: T.StructType, dataset: str) -> DataFrame:
    """Select exactly the contract's columns in order, failing on a missing column or a wrong type.

    Nullability is checked as data by the asset checks, not here: Spark widens nullability freely.
    """
    actual = {f.name: f.dataType for f in df.schema.fields}
    problems = []
    for field in contract.fields:
        if field.name not in actual:
            problems.append(f"missing column '{field.name}'")
        elif actual[field.name] != field.dataType:
            problems.append(
                f"column '{field.name}' is {actual[field.name].simpleString()}, contract says {field.dataType.simpleString()}"
            )
    if problems:
        raise SchemaContractError(dataset, problems)
    names = [field.name for field in contract.fields]
    # A select of thousands of columns costs one py4j call per column: skip it when nothing changes.
    return df if df.columns == names else df.select(*names)


# ---------------------------------------------------------------- FG-C metric selection (also FG-B's default)

# Transport counts are dropped from the curated list: the transport ratios carry the same signal.
FG_C_EXCLUDED_METRICS = ("tcp_cnt", "udp_cnt", "icmp_cnt", "traffic_cnt")
FG_C_CURATED_METRICS = tuple(m for m in FG_A_METRICS if m not in FG_C_EXCLUDED_METRICS)  # 44


def fg_a_metric_column_types() -> dict[str, T.DataType]:
    """Name -> type of FG-A's 480 metric columns (what baselines and FG-C may name)."""
    return {f.name: f.dataType for f in fg_a_schema().fields if f.name in set(fg_a_metric_columns())}


def curated_fg_c_columns() -> list[str]:
    """The 440 default FG-C inputs: 44 curated metrics x 5 windows x 2 directions."""
    return [
        f"{prefix}{metric}_{label}"
        for prefix in DIRECTION_PREFIXES.values()
        for metric in FG_C_CURATED_METRICS
        for label in WINDOW_LABELS
    ]


# Core metrics of FG-C's suspicion features (item 16 step 3) and of rare-pair weighting.
DEFAULT_SUSPICION_METRICS = (
    "sessions_cnt_w_15m",
    "bytes_src_sum_w_15m",
    "bytes_dst_sum_w_15m",
    "peer_ip_nunique_w_15m",
    "peer_port_nunique_w_15m",
    "deny_cnt_w_15m",
    "high_risk_port_sessions_cnt_w_15m",
    "max_sessions_per_minute_w_15m",
    "in_sessions_cnt_w_15m",
    "in_peer_ip_nunique_w_15m",
)
DEFAULT_RARE_PAIR_METRICS = ("sessions_cnt_w_15m", "bytes_src_sum_w_15m", "peer_ip_nunique_w_15m")

# ---------------------------------------------------------------- FG-B (monthly baselines)

BASELINE_STATS = ("median", "p25", "p75", "p95", "p99", "mad", "iqr", "support_count")
BASELINE_PERIOD_FIELDS = [
    T.StructField("baseline_start_ts", T.TimestampType(), False),  # first window end included
    T.StructField("baseline_end_ts", T.TimestampType(), False),  # last window end included
]


def baseline_stat_fields(metrics: list[str] | tuple[str, ...]) -> list[T.StructField]:
    """``<metric>_<stat>`` for every metric: seven doubles and a long support count."""
    return [
        T.StructField(f"{metric}_{stat}", T.LongType() if stat == "support_count" else T.DoubleType(), False)
        for metric in metrics
        for stat in BASELINE_STATS
    ]


def fg_b_host_schema(metrics: list[str] | tuple[str, ...]) -> T.StructType:
    """Host baselines per (host_ip, window_label)."""
    return T.StructType(
        [
            T.StructField("host_ip", T.StringType(), False),
            T.StructField("window_label", T.StringType(), False),
            T.StructField("segment_id", T.StringType(), False),
        ]
        + baseline_stat_fields(metrics)
        + BASELINE_PERIOD_FIELDS
    )


def fg_b_segment_schema(metrics: list[str] | tuple[str, ...]) -> T.StructType:
    """Segment baselines per (segment_id, window_label): the host table's stats, same names and types."""
    return T.StructType(
        [
            T.StructField("segment_id", T.StringType(), False),
            T.StructField("window_label", T.StringType(), False),
            T.StructField("host_count", T.LongType(), False),  # hosts whose windows fed the segment
        ]
        + baseline_stat_fields(metrics)
        + BASELINE_PERIOD_FIELDS
    )


FG_B_IP_METADATA_SCHEMA = T.StructType(
    [
        T.StructField("host_ip", T.StringType(), False),
        T.StructField("window_label", T.StringType(), False),
        T.StructField("segment_id", T.StringType(), False),
        T.StructField("machine_name", T.StringType(), True),  # null when the inventory does not know the IP
        T.StructField("support_count", T.LongType(), False),  # min support over the required metrics
        T.StructField("is_full_history", T.IntegerType(), False),
        T.StructField("is_non_persistent_machine", T.IntegerType(), False),
        T.StructField("is_cold_start", T.IntegerType(), False),
    ]
)

PAIR_RARITY_FIELDS = [
    T.StructField("pair_seen_count", T.LongType(), False),  # windows in which the pair was seen
    T.StructField("pair_last_seen_ts", T.TimestampType(), False),
    T.StructField("active_days", T.IntegerType(), False),  # distinct UTC days with the pair
    T.StructField("pair_daily_avg", T.DoubleType(), False),  # pair_seen_count / active_days
    T.StructField("pair_rarity_score", T.DoubleType(), False),  # 1 - active_days / horizon days
    T.StructField("is_new_pair_flag", T.IntegerType(), False),
    T.StructField("is_rare_pair_flag", T.IntegerType(), False),
]
PAIR_RARITY_VALUE_COLUMNS = tuple(f.name for f in PAIR_RARITY_FIELDS)
PAIR_RARITY_HOST_SCHEMA = T.StructType(
    [
        T.StructField("host_ip", T.StringType(), False),
        T.StructField("dst_ip", T.StringType(), False),
        T.StructField("dst_port", T.IntegerType(), False),
    ]
    + PAIR_RARITY_FIELDS
)
PAIR_RARITY_SEGMENT_SCHEMA = T.StructType(
    [
        T.StructField("segment_id", T.StringType(), False),
        T.StructField("dst_ip", T.StringType(), False),
        T.StructField("dst_port", T.IntegerType(), False),
    ]
    + PAIR_RARITY_FIELDS
)

# ---------------------------------------------------------------- machine inventory


def machine_inventory_schema(ip_column: str = "ip", name_column: str = "machine_name") -> T.StructType:
    return T.StructType(
        [T.StructField(ip_column, T.StringType(), False), T.StructField(name_column, T.StringType(), True)]
    )


# ---------------------------------------------------------------- FG-C


def fg_c_feature_name(transform: str, column: str, horizon_suffix: str = "") -> str:
    """``<transform>_<fg_a column>[_bl<horizon>]``, e.g. ``z_mad_sessions_cnt_w_15m``."""
    return f"{transform}_{column}{horizon_suffix}"


def horizon_suffix(horizons: list[str], horizon: str) -> str:
    """The first horizon is FG-C's main baseline (no suffix); others add ``_bl<horizon>``."""
    return "" if horizon == horizons[0] else f"_bl{horizon}"


FG_C_LEADING_FIELDS = [
    T.StructField("host_ip", T.StringType(), False),
    T.StructField("window_label", T.StringType(), False),
    T.StructField("window_end_ts", T.TimestampType(), False),
    T.StructField("segment_id", T.StringType(), False),
    T.StructField("baseline_source", T.StringType(), False),  # host | segment
    T.StructField("is_cold_start", T.IntegerType(), False),
]
SUSPICION_PREFIXES = ("excess_over_p95", "excess_ratio_p95", "iqr_dev")
SUSPICION_SCALARS = (
    ("time_band_violation_flag", T.IntegerType()),
    ("anomaly_strength_core", T.DoubleType()),
    ("beacon_suspicion_score", T.DoubleType()),
    ("exfiltration_suspicion_score", T.DoubleType()),
    ("rare_pair_flag", T.IntegerType()),
    ("rare_pair_session_share", T.DoubleType()),
)


def fg_c_schema(
    metric_columns: list[str],
    transforms: list[str],
    horizons: list[str],
    suspicion_metrics: list[str],
    rare_pair_metrics: list[str],
) -> T.StructType:
    """FG-C columns: keys and baseline choice, transforms per horizon, then the suspicion features."""
    fields = list(FG_C_LEADING_FIELDS)
    for horizon in horizons:
        suffix = horizon_suffix(horizons, horizon)
        for column in metric_columns:
            for transform in transforms:
                fields.append(T.StructField(fg_c_feature_name(transform, column, suffix), T.DoubleType(), False))
    for prefix in SUSPICION_PREFIXES:
        fields += [T.StructField(f"{prefix}_{m}", T.DoubleType(), False) for m in suspicion_metrics]
    fields += [T.StructField(name, dtype, False) for name, dtype in SUSPICION_SCALARS]
    fields += [T.StructField(f"rare_pair_weighted_z_{m}", T.DoubleType(), False) for m in rare_pair_metrics]
    return T.StructType(fields)

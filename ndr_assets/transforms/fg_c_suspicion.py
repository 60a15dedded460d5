"""FG-C suspicion features (spec 003 item 16 step 3) and the pair rarity of a window's pairs.

Every feature compares the FG-A value ``x`` of a window with the baseline FG-C chose for the host
(main horizon = first of ``spec.horizons``; host baseline, or the segment's for cold-start and new
hosts). The exact formulas are in ``FORMULAS``; ``z_mad`` is the transform of ``fg_c_sql`` and is
computed here even when it is not among ``spec.transforms``.

Pairs of a window: ``pair_counts`` rows with ``src_ip = host_ip`` and ``event_ts = window_end_ts``
(outbound pairs of the host). Each pair takes its seven rarity fields from one source:

========================  ==========================================================  ==============
route of the host         pair found in                                               rarity_source
========================  ==========================================================  ==============
host baselines            host pair table                                             host
host baselines            segment pair table only (imputed, spec 003 item 15)         segment_imputed
segment baselines         segment pair table                                          segment_cold_start
either                    neither table (never seen in the horizon): seven zeros      zero_filled
========================  ==========================================================  ==============

A pair is *rare* when its chosen row says ``is_rare_pair_flag = 1`` or ``is_new_pair_flag = 1``, or
when no table knows it (never seen).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_c_sql import FgCLayout, MetricSql, double
from ndr_assets.transforms.schemas import PAIR_RARITY_FIELDS, PAIR_RARITY_VALUE_COLUMNS

# FG-A columns the two scores read; their baselines (median, mad, iqr) are required like any metric's.
BEACON_SHARE_COLUMN = "peer_ip_top1_sessions_share_w_8h"
BEACON_Z_COLUMN = "sessions_cnt_w_8h"
EXFIL_ASYMMETRY_COLUMN = "bytes_asymmetry_ratio_w_15m"
EXFIL_Z_COLUMN = "bytes_src_sum_w_15m"

RARITY_SOURCES = ("host", "segment_imputed", "segment_cold_start", "zero_filled")

FORMULAS: dict[str, str] = {
    "excess_over_p95": "max(x - p95, 0)",
    "excess_ratio_p95": "max(x - p95, 0) / (p95 + eps); bytes_asymmetry_ratio uses p95 + 1",
    "iqr_dev": "(x - p75) / (iqr + eps) if x > p75; (x - p25) / (iqr + eps) if x < p25; else 0",
    "time_band_violation_flag": (
        "1 if the host has is_full_history = 1 for some window_label of the baseline month (main horizon's "
        "ip_metadata) but not for this window's label (no row or is_full_history = 0); else 0 "
        "(0 for a host without any ip_metadata row)"
    ),
    "anomaly_strength_core": "mean over the suspicion metrics m of min(|z_mad(m)|, z_max)",
    "beacon_suspicion_score": (
        f"{BEACON_SHARE_COLUMN} * min(max(z_mad({BEACON_Z_COLUMN}), 0), z_max) / z_max "
        "(share of the busiest peer IP over 8 h times the capped positive session spike)"
    ),
    "exfiltration_suspicion_score": (
        f"max({EXFIL_ASYMMETRY_COLUMN}, 0) * min(max(z_mad({EXFIL_Z_COLUMN}), 0), z_max) / z_max "
        "(outbound byte asymmetry times the capped positive spike of bytes sent)"
    ),
    "rare_pair_flag": (
        "1 if any outbound pair (dst_ip, dst_port) of the window is rare: is_rare_pair_flag = 1 or "
        "is_new_pair_flag = 1 in its chosen rarity row, or no rarity row on its route (never seen: the seven "
        "rarity fields are zero-filled, pair_last_seen_ts = 1970-01-01); else 0"
    ),
    "rare_pair_session_share": (
        "sessions_cnt on rare pairs / sessions_cnt on all outbound pairs of the window (0 without pairs)"
    ),
    "rare_pair_weighted_z": "z_mad(m) * rare_pair_session_share, for m in the rare-pair metrics",
}


def suspicion_sql(
    layout: FgCLayout, suspicion_metrics: list[str], rare_pair_metrics: list[str], eps: float, z_max: float
) -> list[str]:
    """``selectExpr`` items of the suspicion features, in ``fg_c_schema`` order.

    Reads the main horizon's arrays (``layout``), ``__any_full_history``/``__full_history0`` (time
    band) and ``__rare_pair_flag``/``__rare_pair_session_share`` (window pairs, 0 when absent).
    """

    def metric(column: str) -> MetricSql:
        return layout.metric(0, column, eps, z_max)

    def positive_capped_z(column: str) -> str:
        return f"(LEAST(GREATEST({metric(column).z_mad}, 0D), {double(z_max)}) / {double(z_max)})"

    items = []
    for family in ("excess_over_p95", "excess_ratio_p95", "iqr_dev"):
        items += [f"{getattr(metric(m), family)()} AS `{family}_{m}`" for m in suspicion_metrics]
    items.append(
        "CAST(CASE WHEN __any_full_history = 1 AND coalesce(__full_history0, 0) = 0 THEN 1 ELSE 0 END AS INT)"
        " AS time_band_violation_flag"
    )
    capped = [f"LEAST(ABS({metric(m).z_mad}), {double(z_max)})" for m in suspicion_metrics]
    core = f"(({' + '.join(capped)}) / {len(capped)}D)" if capped else "0D"
    items.append(f"{core} AS anomaly_strength_core")
    beacon_share = metric(BEACON_SHARE_COLUMN).x
    items.append(f"{beacon_share} * {positive_capped_z(BEACON_Z_COLUMN)} AS beacon_suspicion_score")
    asymmetry = metric(EXFIL_ASYMMETRY_COLUMN).x
    items.append(
        f"GREATEST({asymmetry}, 0D) * {positive_capped_z(EXFIL_Z_COLUMN)} AS exfiltration_suspicion_score"
    )
    items.append("CAST(__rare_pair_flag AS INT) AS rare_pair_flag")
    items.append("CAST(__rare_pair_session_share AS DOUBLE) AS rare_pair_session_share")
    for column in rare_pair_metrics:
        items.append(f"{metric(column).z_mad} * __rare_pair_session_share AS `rare_pair_weighted_z_{column}`")
    return items


def window_pair_rarity(
    window_routes: DataFrame, pair_counts: DataFrame, pair_host: DataFrame, pair_segment: DataFrame
) -> DataFrame:
    """Each outbound pair of each routed window with its chosen rarity (see the module doc).

    ``window_routes``: ``host_ip, window_end_ts, baseline_month, segment_id, baseline_source``
    (``host`` | ``segment``), one row per FG-A row. ``pair_host``/``pair_segment``: pair rarity of
    the main horizon with ``baseline_month``. Returns ``host_ip, window_end_ts, dst_ip, dst_port,
    sessions_cnt, rarity_source``, the seven rarity fields and ``is_rare`` (0/1).
    """
    pairs = pair_counts.select(
        F.col("src_ip").alias("host_ip"),
        F.col("event_ts").alias("window_end_ts"),
        "dst_ip",
        "dst_port",
        "sessions_cnt",
    )
    routed = pairs.join(window_routes, ["host_ip", "window_end_ts"], "inner")

    def lookup(table: DataFrame, key: str, tag: str) -> DataFrame:
        values = [F.col(c).alias(f"__{tag}_{c}") for c in PAIR_RARITY_VALUE_COLUMNS]
        return table.select(key, "dst_ip", "dst_port", "baseline_month", F.lit(1).alias(f"__{tag}_found"), *values)

    joined = routed.join(
        lookup(pair_host, "host_ip", "h"), ["host_ip", "dst_ip", "dst_port", "baseline_month"], "left"
    ).join(lookup(pair_segment, "segment_id", "s"), ["segment_id", "dst_ip", "dst_port", "baseline_month"], "left")
    source = (
        F.when((F.col("baseline_source") == "host") & F.col("__h_found").isNotNull(), "host")
        .when((F.col("baseline_source") == "host") & F.col("__s_found").isNotNull(), "segment_imputed")
        .when((F.col("baseline_source") == "segment") & F.col("__s_found").isNotNull(), "segment_cold_start")
        .otherwise("zero_filled")
    )
    with_source = joined.withColumn("rarity_source", source)

    def chosen(field_name: str, data_type) -> F.Column:
        # pair_last_seen_ts has no meaningful zero; the epoch (1970-01-01) is its zero value.
        zero = F.lit(0).cast("timestamp") if field_name == "pair_last_seen_ts" else F.lit(0).cast(data_type)
        return (
            F.when(F.col("rarity_source") == "host", F.col(f"__h_{field_name}"))
            .when(F.col("rarity_source") != "zero_filled", F.col(f"__s_{field_name}"))
            .otherwise(zero)
            .cast(data_type)
            .alias(field_name)
        )

    values = [chosen(f.name, f.dataType) for f in PAIR_RARITY_FIELDS]
    rare = (
        F.when(
            (F.col("rarity_source") == "zero_filled")
            | (F.col("is_rare_pair_flag") == 1)
            | (F.col("is_new_pair_flag") == 1),
            1,
        )
        .otherwise(0)
        .cast("int")
    )
    selected = with_source.select(
        "host_ip", "window_end_ts", "dst_ip", "dst_port", "sessions_cnt", "rarity_source", *values
    )
    return selected.withColumn("is_rare", rare)


def window_rare_pair_features(pairs: DataFrame) -> DataFrame:
    """Per ``(host_ip, window_end_ts)``: ``__rare_pair_flag`` and ``__rare_pair_session_share``."""
    return pairs.groupBy("host_ip", "window_end_ts").agg(
        F.max("is_rare").alias("__rare_pair_flag"),
        F.expr(
            "CASE WHEN sum(sessions_cnt) > 0 THEN sum(is_rare * sessions_cnt) / sum(sessions_cnt) ELSE 0D END"
        ).alias("__rare_pair_session_share"),
    )


def pair_counters(pairs: DataFrame) -> dict[str, int]:
    """One aggregation: how many window pairs took each rarity source."""
    aggregates = [F.count(F.lit(1)).alias("pairs")] + [
        F.sum(F.when(F.col("rarity_source") == source, 1).otherwise(0)).alias(f"pairs_{source}")
        for source in RARITY_SOURCES
    ]
    row = pairs.agg(*aggregates).first()
    return {name: int(row[name] or 0) for name in row.asDict()}

"""Rarity of a window's pairs: host table, segment table (imputed or cold start), or seven zeros."""

from __future__ import annotations

from datetime import datetime

from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.fg_c_suspicion import window_pair_rarity, window_rare_pair_features
from tests.fg_c import factory as fx

H1, H2 = "10.10.0.1", "10.10.0.2"
EPOCH = datetime(1970, 1, 1)
SEEN = datetime(2026, 1, 30, 9, 8)


def test_each_pair_takes_its_rarity_from_one_source(spark):
    routes = spark.createDataFrame(
        [
            (H1, fx.WINDOW_END, fx.MONTH, "workstations", "host"),
            (H2, fx.WINDOW_END, fx.MONTH, "workstations", "segment"),
        ],
        "host_ip string, window_end_ts timestamp, baseline_month string, segment_id string, baseline_source string",
    )
    counts = fx.pair_counts(
        spark,
        [
            (H1, "8.8.8.8", 443, fx.WINDOW_END, 6),
            (H1, "1.2.3.4", 22, fx.WINDOW_END, 2),
            (H1, "5.6.7.8", 4444, fx.WINDOW_END, 2),
            (H2, "8.8.8.8", 443, fx.WINDOW_END, 5),
            (H2, "1.2.3.4", 22, fx.WINDOW_END, 3),
        ],
    )
    host = fx.pair_host(
        spark,
        [
            {"host_ip": H1, "dst_ip": "8.8.8.8", "dst_port": 443, "pair_seen_count": 900, "active_days": 30},
            # February partition only: a January row of the same pair must not match.
            {"host_ip": H1, "dst_ip": "1.2.3.4", "dst_port": 22, "baseline_month": "2026-01"},
            {"host_ip": H2, "dst_ip": "8.8.8.8", "dst_port": 443},  # H2 routes to its segment
        ],
    )
    segment = fx.pair_segment(
        spark,
        [
            {
                "segment_id": "workstations",
                "dst_ip": "1.2.3.4",
                "dst_port": 22,
                "pair_seen_count": 3,
                "pair_last_seen_ts": SEEN,
                "active_days": 1,
                "pair_daily_avg": 3.0,
                "pair_rarity_score": 0.9666667,
                "is_rare_pair_flag": 1,
            },
            {"segment_id": "workstations", "dst_ip": "8.8.8.8", "dst_port": 443, "is_new_pair_flag": 1},
            {"segment_id": "servers", "dst_ip": "5.6.7.8", "dst_port": 4444},  # another segment
        ],
    )
    pairs = window_pair_rarity(routes, counts, host, segment)

    default_ts = datetime(2026, 1, 31, 23, 53)  # factory defaults: 10 windows on 10 days, score 0.5
    expected = spark.createDataFrame(
        [
            (H1, "8.8.8.8", 443, 6, "host", 900, default_ts, 30, 1.0, 0.5, 0, 0, 0),
            (H1, "1.2.3.4", 22, 2, "segment_imputed", 3, SEEN, 1, 3.0, 0.9666667, 0, 1, 1),
            (H1, "5.6.7.8", 4444, 2, "zero_filled", 0, EPOCH, 0, 0.0, 0.0, 0, 0, 1),  # never seen: rare
            (H2, "8.8.8.8", 443, 5, "segment_cold_start", 10, default_ts, 10, 1.0, 0.5, 1, 0, 1),
            (H2, "1.2.3.4", 22, 3, "segment_cold_start", 3, SEEN, 1, 3.0, 0.9666667, 0, 1, 1),
        ],
        "host_ip string, dst_ip string, dst_port int, sessions_cnt long, rarity_source string, "
        "pair_seen_count long, pair_last_seen_ts timestamp, active_days int, pair_daily_avg double, "
        "pair_rarity_score double, is_new_pair_flag int, is_rare_pair_flag int, is_rare int",
    )
    assertDataFrameEqual(pairs.drop("window_end_ts"), expected)

    per_window = spark.createDataFrame(
        [(H1, fx.WINDOW_END, 1, 0.4), (H2, fx.WINDOW_END, 1, 1.0)],  # H1: (2 + 2) / 10; H2: 8 / 8
        "host_ip string, window_end_ts timestamp, __rare_pair_flag int, __rare_pair_session_share double",
    )
    assertDataFrameEqual(window_rare_pair_features(pairs), per_window)

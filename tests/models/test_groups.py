"""Feature groups: every model input of one FG-A metric in one group, whatever its window or comparison."""

from __future__ import annotations

import pytest

from ndr_assets.models.groups import group_columns, metric_group


@pytest.mark.parametrize(
    ("feature", "group"),
    [
        ("sessions_cnt_w_15m", "sessions_cnt"),
        ("sessions_cnt_w_24h", "sessions_cnt"),
        ("z_mad_sessions_cnt_w_15m", "sessions_cnt"),
        ("log_ratio_bytes_src_sum_w_1h_bl30d", "bytes_src_sum"),
        ("ratio_bytes_src_sum_w_8h", "bytes_src_sum"),
        ("excess_over_p95_bytes_src_sum_w_15m", "bytes_src_sum"),
        ("excess_ratio_p95_bytes_src_sum_w_15m", "bytes_src_sum"),
        ("iqr_dev_peer_ip_nunique_w_30m", "peer_ip_nunique"),
        ("z_mad_clipped_deny_cnt_w_1h", "deny_cnt"),  # the longer prefix wins over z_mad_
        ("new_peer_cnt_lookback30d_w_8h", "new_peer_cnt_lookback30d"),
        ("beacon_cadence_score_w_24h", "beacon_cadence_score"),
        ("rare_pair_weighted_z_sessions_cnt_w_15m", "rare_pair_weighted_z_sessions_cnt"),
        # Not derived from a windowed metric: its own group.
        ("hour_of_day_sin", "hour_of_day_sin"),
        ("anomaly_strength_core", "anomaly_strength_core"),
        ("ratio_of_nothing", "ratio_of_nothing"),
    ],
)
def test_metric_group_strips_the_comparison_and_the_window(feature, group):
    assert metric_group(feature) == group


def test_group_columns_keep_first_appearance_order_and_positions():
    features = ["sessions_cnt_w_15m", "bytes_src_sum_w_15m", "z_mad_sessions_cnt_w_1h", "hour_of_day_sin",
                "log_ratio_bytes_src_sum_w_15m"]

    assert group_columns(features, "metric") == [
        ("sessions_cnt", [0, 2]), ("bytes_src_sum", [1, 4]), ("hour_of_day_sin", [3]),
    ]
    assert group_columns(features, "all") == [("all", [0, 1, 2, 3, 4])]


def test_the_beacon_persistence_metrics_form_one_behaviour_group():
    features = ["beacon_cadence_score_w_24h", "beacon_interval_median_s_w_24h", "sessions_cnt_w_15m",
                "beacon_pair_conn_cnt_w_24h", "beacon_hourly_coverage_w_24h", "beacon_bytes_skew_w_24h"]

    assert group_columns(features, "metric") == [
        ("beacon_persistence", [0, 3, 4]), ("beacon_interval_median_s", [1]), ("sessions_cnt", [2]),
        ("beacon_bytes_skew", [5]),
    ]

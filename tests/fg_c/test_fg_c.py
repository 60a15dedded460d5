"""FG-C on one hand-made scenario: route per host, transforms, suspicion features, pair rarity, counters.

Hosts (mapping: 10.10/16 workstations, 10.30/16 servers), windows of baseline month 2026-02:
    H1 10.10.0.1  ip_metadata warm (is_cold_start 0)           -> host baselines
    H2 10.10.0.2  ip_metadata cold start (short history)       -> segment workstations
    H3 10.30.0.3  no ip_metadata row (new host)                -> segment servers (by mapping)
    H4 10.10.0.4  warm for 'night' only, window is work_hours  -> segment workstations, time band violation
    H5 10.10.0.5  non-persistent VDI, ip_metadata segment 'vdi' -> segment vdi (metadata beats mapping)
H1 has a second window ending 2026-03-01 00:08: it starts 2026-02-28 23:53, so February's baseline
serves it (a March host row with median 1000 exists and must not be used).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.fg_c import FORMULAS, build_fg_c, fg_c_columns, resolve_fg_c_lists
from ndr_assets.transforms.schemas import (
    DEFAULT_RARE_PAIR_METRICS,
    DEFAULT_SUSPICION_METRICS,
    curated_fg_c_columns,
    fg_c_schema,
)
from ndr_resources.specs import FG_C_TRANSFORMS
from tests.fg_c import factory as fx

H1, H2, H3, H4, H5 = "10.10.0.1", "10.10.0.2", "10.30.0.3", "10.10.0.4", "10.10.0.5"
H1_MARCH_WINDOW = datetime(2026, 3, 1, 0, 8)
EXTRA_METRIC = "tcp_cnt_w_15m"  # not curated (transport counts are dropped); spec.metrics adds it
METRICS = curated_fg_c_columns() + [EXTRA_METRIC]
SPEC = fx.fg_c_spec(transforms=list(FG_C_TRANSFORMS), metrics=[EXTRA_METRIC])


def h1_february():
    return (F.col("host_ip") == H1) & (F.col("window_end_ts") == fx.WINDOW_END)


def _stats(column: str, **stats: float) -> dict:
    return {f"{column}_{stat}": value for stat, value in stats.items()}


@pytest.fixture(scope="module")
def result(spark):
    fg_a = fx.fg_a(
        spark,
        [
            {
                "host_ip": H1,
                "sessions_cnt_w_15m": 30,
                "bytes_src_sum_w_15m": 500,
                "deny_cnt_w_15m": 2,
                "peer_ip_nunique_w_15m": 0,
                "peer_port_nunique_w_15m": 1,
                "bytes_asymmetry_ratio_w_15m": -0.5,
                "sessions_cnt_w_8h": 200,
                "peer_ip_top1_sessions_share_w_8h": 0.8,
                EXTRA_METRIC: 12,
            },
            {"host_ip": H1, "window_end_ts": H1_MARCH_WINDOW, "sessions_cnt_w_15m": 10},
            {"host_ip": H2, "sessions_cnt_w_15m": 30, "bytes_src_sum_w_15m": 1000, "bytes_asymmetry_ratio_w_15m": 0.6},
            {"host_ip": H3, "sessions_cnt_w_15m": 30},
            {"host_ip": H4, "sessions_cnt_w_15m": 30},
            {"host_ip": H5, "sessions_cnt_w_15m": 30},
        ],
    )
    h1_stats = {
        **_stats("sessions_cnt_w_15m", median=10.0, mad=4.0, iqr=10.0, p25=5.0, p75=15.0, p95=20.0),
        **_stats("bytes_src_sum_w_15m", median=100.0, mad=0.0, iqr=80.0),
        **_stats("deny_cnt_w_15m", median=0.0, mad=0.0, iqr=0.0),
        **_stats("peer_ip_nunique_w_15m", median=20.0, mad=2.0),
        **_stats("peer_port_nunique_w_15m", median=4.0, mad=1.0, iqr=3.0, p25=3.0, p75=6.0),
        **_stats("bytes_asymmetry_ratio_w_15m", median=0.5, mad=0.1),
        **_stats("sessions_cnt_w_8h", median=100.0, mad=20.0),
        **_stats(EXTRA_METRIC, median=4.0, mad=2.0),
    }
    tables = fx.tables(
        spark,
        metrics=METRICS,
        host=[
            {"host_ip": H1, "segment_id": "workstations", **h1_stats},
            {"host_ip": H1, "segment_id": "workstations", "baseline_month": "2026-03", "stats": {"median": 1000.0}},
            {"host_ip": H2, "segment_id": "workstations", "stats": {"median": 1000.0}},  # cold start: ignored
            {"host_ip": H4, "segment_id": "workstations", "window_label": "night", "stats": {"median": 1000.0}},
        ],
        segment=[
            {
                "segment_id": "workstations",
                **_stats("sessions_cnt_w_15m", median=20.0, mad=5.0),
                **_stats("bytes_src_sum_w_15m", median=100.0, mad=50.0),
            },
            {"segment_id": "servers", **_stats("sessions_cnt_w_15m", median=30.0, mad=5.0)},
            {"segment_id": "vdi", **_stats("sessions_cnt_w_15m", median=25.0, mad=10.0)},
        ],
        metadata=[
            {"host_ip": H1, "segment_id": "workstations", "is_cold_start": 0},
            {"host_ip": H2, "segment_id": "workstations", "is_cold_start": 1},
            {"host_ip": H4, "segment_id": "workstations", "window_label": "night", "is_cold_start": 0},
            {
                "host_ip": H5,
                "segment_id": "vdi",
                "machine_name": "VDI-0042",
                "is_non_persistent_machine": 1,
                "is_full_history": 1,
                "is_cold_start": 1,
            },
        ],
        pairs_host=[
            {"host_ip": H1, "dst_ip": "8.8.8.8", "dst_port": 443},
            {"host_ip": H2, "dst_ip": "8.8.8.8", "dst_port": 443},  # H2 is cold: its host rarity is ignored
        ],
        pairs_segment=[
            {"segment_id": "workstations", "dst_ip": "1.2.3.4", "dst_port": 22, "is_rare_pair_flag": 1},
            {"segment_id": "workstations", "dst_ip": "8.8.8.8", "dst_port": 443, "is_new_pair_flag": 1},
        ],
    )
    pairs = fx.pair_counts(
        spark,
        [
            (H1, "8.8.8.8", 443, fx.WINDOW_END, 6),  # host table: not rare
            (H1, "1.2.3.4", 22, fx.WINDOW_END, 2),  # segment only (imputed): rare
            (H1, "5.6.7.8", 4444, fx.WINDOW_END, 2),  # nowhere: zero-filled, never seen = rare
            (H1, "8.8.4.4", 53, datetime(2026, 2, 10, 10, 23), 9),  # another window: not H1's pairs here
            (H2, "8.8.8.8", 443, fx.WINDOW_END, 5),  # segment route: new pair in the segment = rare
            ("9.9.9.9", H1, 445, fx.WINDOW_END, 7),  # inbound to H1: not an outbound pair of a host
        ],
    )
    built = build_fg_c(fg_a, {"30d": tables}, pairs, SPEC)
    built.features.cache()  # every test reads a few of its 3,100 columns: compute the wide plan once
    yield built
    built.features.unpersist()


def _select(result, *columns: str):
    return result.features.select("host_ip", "window_end_ts", *columns)


def test_route_per_host_and_baseline_month(spark, result):
    expected = spark.createDataFrame(
        [
            (H1, fx.WINDOW_END, "workstations", "host", 0, 3.3725),  # 0.6745 * (30 - 10) / 4
            (H1, H1_MARCH_WINDOW, "workstations", "host", 0, 0.0),  # February median 10, not March's 1000
            (H2, fx.WINDOW_END, "workstations", "segment", 1, 1.349),  # 0.6745 * (30 - 20) / 5
            (H3, fx.WINDOW_END, "servers", "segment", 1, 0.0),  # mapping 10.30/16; 0.6745 * (30 - 30) / 5
            (H4, fx.WINDOW_END, "workstations", "segment", 1, 1.349),  # no work_hours row: new in this band
            (H5, fx.WINDOW_END, "vdi", "segment", 1, 0.33725),  # 0.6745 * (30 - 25) / 10
        ],
        "host_ip string, window_end_ts timestamp, segment_id string, baseline_source string, "
        "is_cold_start int, z_mad_sessions_cnt_w_15m double",
    )
    columns = ["segment_id", "baseline_source", "is_cold_start", "z_mad_sessions_cnt_w_15m"]
    assertDataFrameEqual(_select(result, *columns), expected)


def test_route_counters(result):
    assert {k: result.counters[k] for k in ("host_windows", "host_baseline", "segment_cold_start")} == {
        "host_windows": 6,
        "host_baseline": 2,  # H1's two windows
        "segment_cold_start": 2,  # H2 (short history), H5 (non-persistent)
    }
    assert result.counters["segment_no_history"] == 2  # H3 (new host), H4 (new in this time band)
    assert result.counters["time_band_violations"] == 1  # H4


def test_transforms_with_mad_iqr_and_eps_scales(spark, result):
    metrics = ("sessions_cnt_w_15m", "bytes_src_sum_w_15m", "deny_cnt_w_15m")
    h1 = _select(result, *[f"{t}_{c}" for c in metrics for t in FG_C_TRANSFORMS])
    expected = spark.createDataFrame(
        [
            (
                H1,
                fx.WINDOW_END,
                # sessions: x 30, median 10, MAD 4
                3.3725,  # z_mad = 0.6745 * 20 / 4
                2.9999998,  # ratio = (30 + 1e-6) / (10 + 1e-6)
                1.0986122,  # log_ratio = ln(2.9999998)
                20.0,  # diff
                5.0,  # abs_dev_over_mad = 20 / 4
                3.3725,  # clipped to [-6, 6]: unchanged
                38.357993,  # 3.3725 ** 3
                # bytes_src_sum: x 500, median 100, MAD 0 -> scale = IQR 80 / 2 = 40
                6.745,  # z_mad = 0.6745 * 400 / 40
                4.9999999,  # (500 + 1e-6) / (100 + 1e-6)
                1.6094379,  # ln(5)
                400.0,
                10.0,  # abs_dev_over_mad also uses the IQR scale: 400 / 40
                6.0,  # z_max
                216.0,  # 6 ** 3
                # deny_cnt: x 2, median 0, MAD 0 and IQR 0 -> scale = eps 1e-6
                1349000.0,  # 0.6745 * 2 / 1e-6
                2000001.0,  # (2 + 1e-6) / 1e-6
                14.508658,  # ln(2000001)
                2.0,
                2000000.0,  # 2 / 1e-6
                6.0,
                216.0,
            ),
            # March window: sessions 10 = median; deny 0 = median 0 (0 / eps = 0);
            # bytes_src 0 vs median 100, scale 40: z = 0.6745 * -100 / 40 = -1.68625.
            (H1, H1_MARCH_WINDOW, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            + (-1.68625, 1e-8, -18.420681, -100.0, 2.5, -1.68625, -4.7947491)  # 1e-6 / 100.000001; -1.68625 ** 3
            + (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        ],
        h1.schema,
    )
    assertDataFrameEqual(h1.where(F.col("host_ip") == H1), expected)


def test_negative_z_clips_and_signed_metric_ratio_stays_defined(spark, result):
    columns = [
        "z_mad_peer_ip_nunique_w_15m",
        "z_mad_clipped_peer_ip_nunique_w_15m",
        "z_mad_signed_pow3_peer_ip_nunique_w_15m",
        "log_ratio_peer_ip_nunique_w_15m",
        "ratio_bytes_asymmetry_ratio_w_15m",
        "log_ratio_bytes_asymmetry_ratio_w_15m",
    ]
    expected = spark.createDataFrame(
        [
            (
                H1,
                fx.WINDOW_END,
                -6.745,  # 0.6745 * (0 - 20) / 2
                -6.0,  # clipped at -z_max
                -216.0,  # sign kept
                -16.811243,  # ln(1e-6 / 20.000001)
                0.33333378,  # asymmetry -0.5 vs median 0.5, both + 1: (0.5 + 1e-6) / (1.5 + 1e-6)
                -1.0986110,  # ln of that
            )
        ],
        _select(result, *columns).schema,
    )
    assertDataFrameEqual(_select(result, *columns).where(h1_february()), expected)


def test_spec_metrics_augment_the_curated_list(spark, result):
    assert result.metric_columns == METRICS  # curated 440 kept, in order, plus the extra metric
    expected = spark.createDataFrame(
        [(H1, fx.WINDOW_END, 2.698)],  # 0.6745 * (12 - 4) / 2
        "host_ip string, window_end_ts timestamp, z_mad_tcp_cnt_w_15m double",
    )
    actual = _select(result, "z_mad_tcp_cnt_w_15m").where(h1_february())
    assertDataFrameEqual(actual, expected)


def test_per_metric_suspicion_features(spark, result):
    columns = [
        "excess_over_p95_sessions_cnt_w_15m",
        "excess_ratio_p95_sessions_cnt_w_15m",
        "iqr_dev_sessions_cnt_w_15m",
        "iqr_dev_peer_port_nunique_w_15m",
        "excess_over_p95_bytes_src_sum_w_15m",
    ]
    expected = spark.createDataFrame(
        [
            (
                H1,
                fx.WINDOW_END,
                10.0,  # max(30 - p95 20, 0)
                0.49999998,  # 10 / (20 + 1e-6)
                1.4999999,  # above p75: (30 - 15) / (iqr 10 + 1e-6)
                -0.66666644,  # below p25: (1 - 3) / (iqr 3 + 1e-6)
                500.0,  # max(500 - p95 0, 0)
            ),
            (H2, fx.WINDOW_END, 30.0, 30000000.0, 30000000.0, 0.0, 1000.0),  # segment stats: p95 = p75 = iqr = 0
        ],
        _select(result, *columns).schema,
    )
    actual = _select(result, *columns).where(F.col("host_ip").isin(H1, H2) & (F.col("window_end_ts") == fx.WINDOW_END))
    assertDataFrameEqual(actual, expected)


def test_scalar_suspicion_features(spark, result):
    columns = [
        "time_band_violation_flag",
        "anomaly_strength_core",
        "beacon_suspicion_score",
        "exfiltration_suspicion_score",
    ]
    expected = spark.createDataFrame(
        [
            # core: capped |z| of the 10 suspicion metrics: sessions 3.3725, bytes_src 6 (6.745),
            # peer_ip 6 (6.745), peer_port 2.0235 (0.6745 * 3 / 1), deny 6 (1,349,000), others 0 -> 23.396 / 10.
            # beacon: share 0.8 * min(max(z(sessions_w_8h) = 0.6745 * 100 / 20, 0), 6) / 6 = 0.8 * 3.3725 / 6.
            # exfil: asymmetry -0.5 -> max(-0.5, 0) = 0.
            (H1, fx.WINDOW_END, 0, 2.3396, 0.44966667, 0.0),
            # March: bytes_src 1.68625, peer_ip 6 (0.6745 * -20 / 2), peer_port 2.698 (0.6745 * -4) -> / 10.
            (H1, H1_MARCH_WINDOW, 0, 1.038425, 0.0, 0.0),
            # H2 (segment): sessions 1.349, bytes_src 6 (0.6745 * 900 / 50 = 12.141) -> 7.349 / 10;
            # exfil: 0.6 * min(12.141, 6) / 6 = 0.6.
            (H2, fx.WINDOW_END, 0, 0.7349, 0.0, 0.6),
            (H3, fx.WINDOW_END, 0, 0.0, 0.0, 0.0),
            # H4: sessions 1.349, bytes_src 1.349 (0 vs segment median 100, MAD 50) -> 2.698 / 10;
            # violation: full history at night, none in work_hours.
            (H4, fx.WINDOW_END, 1, 0.2698, 0.0, 0.0),
            (H5, fx.WINDOW_END, 0, 0.033725, 0.0, 0.0),  # is_full_history 1 in this band (VDI)
        ],
        _select(result, *columns).schema,
    )
    assertDataFrameEqual(_select(result, *columns), expected)


def test_rare_pair_features_and_pair_counters(spark, result):
    columns = [
        "rare_pair_flag",
        "rare_pair_session_share",
        "rare_pair_weighted_z_sessions_cnt_w_15m",
        "rare_pair_weighted_z_bytes_src_sum_w_15m",
    ]
    expected = spark.createDataFrame(
        [
            # 10 sessions on 3 pairs, rare: 1.2.3.4:22 (segment flag, 2) + 5.6.7.8:4444 (never seen, 2).
            (H1, fx.WINDOW_END, 1, 0.4, 1.349, 2.698),  # 3.3725 * 0.4, 6.745 * 0.4 (z not clipped)
            (H1, H1_MARCH_WINDOW, 0, 0.0, 0.0, 0.0),
            (H2, fx.WINDOW_END, 1, 1.0, 1.349, 12.141),  # its only pair is new in the segment
            (H3, fx.WINDOW_END, 0, 0.0, 0.0, 0.0),
            (H4, fx.WINDOW_END, 0, 0.0, 0.0, 0.0),
            (H5, fx.WINDOW_END, 0, 0.0, 0.0, 0.0),
        ],
        _select(result, *columns).schema,
    )
    assertDataFrameEqual(_select(result, *columns), expected)
    pair_counters = {k: v for k, v in result.counters.items() if k.startswith("pair")}
    assert pair_counters == {
        "pair_counts_missing": 0,
        "pairs": 4,
        "pairs_host": 1,
        "pairs_segment_imputed": 1,
        "pairs_segment_cold_start": 1,
        "pairs_zero_filled": 1,
    }


def test_schema_is_the_contract_and_nothing_is_null(result):
    lists = resolve_fg_c_lists(SPEC)
    suspicion, rare_pair = list(DEFAULT_SUSPICION_METRICS), list(DEFAULT_RARE_PAIR_METRICS)
    contract = fg_c_schema(METRICS, list(FG_C_TRANSFORMS), ["30d"], suspicion, rare_pair)
    assert lists.schema() == contract
    # Names and types; nullability is checked as data (enforce_schema does not tighten it).
    names_and_types = [(f.name, f.dataType) for f in result.features.schema.fields]
    assert names_and_types == [(f.name, f.dataType) for f in contract.fields]
    assert fg_c_columns(SPEC) == contract.fieldNames()
    assert result.features.na.drop().count() == 6


def test_every_feature_family_has_a_formula():
    families = (
        *FG_C_TRANSFORMS,
        "excess_over_p95",
        "excess_ratio_p95",
        "iqr_dev",
        "time_band_violation_flag",
        "anomaly_strength_core",
        "beacon_suspicion_score",
        "exfiltration_suspicion_score",
        "rare_pair_flag",
        "rare_pair_session_share",
        "rare_pair_weighted_z",
    )
    assert all(FORMULAS[name] for name in families)

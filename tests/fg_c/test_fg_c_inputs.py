"""FG-C inputs: spec resolution, a second horizon with its own route, failures that must never become zeros."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.fg_c import build_fg_c, fg_c_output_schema, resolve_fg_c_lists
from ndr_assets.transforms.schemas import (
    DEFAULT_RARE_PAIR_METRICS,
    DEFAULT_SUSPICION_METRICS,
    curated_fg_c_columns,
    fg_c_schema,
)
from ndr_resources.errors import InputDataError
from tests.fg_c import factory as fx

H1, H2 = "10.10.0.1", "10.10.0.2"
SESSIONS = "sessions_cnt_w_15m"


def test_metric_names_that_are_not_fg_a_columns_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"metrics: \['bogus_w_15m'\]"):
        resolve_fg_c_lists(fx.fg_c_spec(metrics=["sessions_cnt_w_15m", "bogus_w_15m"]))
    with pytest.raises(ValueError, match=r"suspicion_metrics: \['tcp_cnt'\]"):
        resolve_fg_c_lists(fx.fg_c_spec(suspicion_metrics=["tcp_cnt"]))
    with pytest.raises(ValueError, match=r"rare_pair_metrics: \['w_15m'\]"):
        resolve_fg_c_lists(fx.fg_c_spec(rare_pair_metrics=["w_15m"]))


def test_default_lists_and_a_curated_metric_in_spec_metrics_is_not_repeated():
    spec = fx.fg_c_spec(metrics=[SESSIONS, "in_udp_cnt_w_1h"], horizons=["30d", "7d"])
    lists = resolve_fg_c_lists(spec)
    assert lists.metric_columns == curated_fg_c_columns() + ["in_udp_cnt_w_1h"]
    assert lists.transforms == ["z_mad", "ratio", "log_ratio"]
    assert lists.suspicion_metrics == list(DEFAULT_SUSPICION_METRICS)
    assert lists.rare_pair_metrics == list(DEFAULT_RARE_PAIR_METRICS)
    contract = fg_c_schema(
        lists.metric_columns,
        ["z_mad", "ratio", "log_ratio"],
        ["30d", "7d"],
        list(DEFAULT_SUSPICION_METRICS),
        list(DEFAULT_RARE_PAIR_METRICS),
    )
    assert fg_c_output_schema(spec) == contract
    # keys and route (6), 441 metrics x 3 transforms per horizon, 3 x 10 suspicion, 6 scalars, 3 rare-pair z
    assert len(contract.fields) == 6 + 2 * 1323 + 3 * 10 + 6 + 3


def test_each_horizon_routes_by_its_own_metadata_and_pairs_default_to_zero(spark):
    """H1 is warm in the 30-day metadata but absent from the 7-day one (no windows in the last week)."""
    spec = fx.fg_c_spec(horizons=["30d", "7d"], transforms=["z_mad"])  # one transform keeps the test fast
    fg_a = fx.fg_a(spark, [{"host_ip": H1, SESSIONS: 30}])
    segment = {"segment_id": "workstations", f"{SESSIONS}_median": 20.0, f"{SESSIONS}_mad": 5.0}
    month_30d = fx.tables(
        spark,
        host=[{"host_ip": H1, "segment_id": "workstations", f"{SESSIONS}_median": 10.0, f"{SESSIONS}_mad": 4.0}],
        segment=[segment],
        metadata=[{"host_ip": H1, "segment_id": "workstations", "is_cold_start": 0}],
    )
    month_7d = fx.tables(spark, segment=[segment])

    result = build_fg_c(fg_a, {"30d": month_30d, "7d": month_7d}, None, spec)

    expected = spark.createDataFrame(
        # 30d host: 0.6745 * (30 - 10) / 4; 7d segment: 0.6745 * (30 - 20) / 5; no pair counts -> 0.
        [(H1, "host", 0, 3.3725, 1.349, 0, 0.0, 0.0)],
        "host_ip string, baseline_source string, is_cold_start int, z_mad_sessions_cnt_w_15m double, "
        "z_mad_sessions_cnt_w_15m_bl7d double, rare_pair_flag int, rare_pair_session_share double, "
        "rare_pair_weighted_z_sessions_cnt_w_15m double",
    )
    assertDataFrameEqual(result.features.select(*expected.columns), expected)
    contract = fg_c_output_schema(spec)
    assert [(f.name, f.dataType) for f in result.features.schema.fields] == [
        (f.name, f.dataType) for f in contract.fields
    ]
    assert result.counters == {
        "host_windows": 1,
        "time_band_violations": 0,
        "host_baseline": 1,
        "segment_cold_start": 0,
        "segment_no_history": 0,
        "host_baseline_bl7d": 0,
        "segment_cold_start_bl7d": 0,
        "segment_no_history_bl7d": 1,
        "pair_counts_missing": 1,
        "pairs": 0,
        "pairs_host": 0,
        "pairs_segment_imputed": 0,
        "pairs_segment_cold_start": 0,
        "pairs_zero_filled": 0,
    }


def test_a_routed_key_without_its_baseline_row_fails_instead_of_zeros(spark):
    h3 = "10.10.0.3"
    tables = fx.tables(
        spark,
        segment=[{"segment_id": "servers"}],  # no 'workstations' row for February work_hours
        metadata=[
            {"host_ip": H2, "segment_id": "workstations", "is_cold_start": 1},  # cold start: segment route
            {"host_ip": h3, "segment_id": "workstations", "is_cold_start": 0},  # full history, no host row
        ],
    )
    fg_a = fx.fg_a(spark, [{"host_ip": H2}, {"host_ip": h3}])
    with pytest.raises(InputDataError) as error:
        build_fg_c(fg_a, {"30d": tables}, None, fx.fg_c_spec())
    message = str(error.value)
    assert "FG-B horizon '30d'" in message and "2 FG-A key(s) have no baseline row" in message
    assert "host 10.10.0.2 segment workstations label work_hours month 2026-02 (segment_cold_start)" in message
    assert "host 10.10.0.3 segment workstations label work_hours month 2026-02 (host)" in message


def test_a_fg_c_metric_missing_from_fg_b_fails_naming_the_metric(spark):
    metrics = [c for c in curated_fg_c_columns() if c != "rst_cnt_w_1h"]
    tables = fx.tables(spark, metrics=metrics)
    fg_a = fx.fg_a(spark, [{"host_ip": H1}])
    with pytest.raises(InputDataError, match=r"host baselines.*FG-C metric 'rst_cnt_w_1h'"):
        build_fg_c(fg_a, {"30d": tables}, None, fx.fg_c_spec())


def test_every_spec_horizon_needs_baseline_tables(spark):
    fg_a = fx.fg_a(spark, [{"host_ip": H1}])
    with pytest.raises(InputDataError, match=r"FG-B horizon '7d'"):
        build_fg_c(fg_a, {"30d": fx.tables(spark)}, None, fx.fg_c_spec(horizons=["30d", "7d"]))

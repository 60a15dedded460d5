"""FG-B host and segment baselines: exact quantiles, MAD, IQR, capping and horizon selection, hand-checked.

Quantiles use numpy's 'linear' rule on the n sorted values x[0..n-1]: pos = p * (n - 1),
q = x[floor(pos)] + frac(pos) * (x[floor(pos) + 1] - x[floor(pos)]).
"""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.baselines import (
    BaselineMetricError,
    anomaly_caps,
    baseline_rows,
    build_fg_b,
    horizon_bounds,
    host_value_arrays,
)
from ndr_assets.transforms.schemas import FG_B_IP_METADATA_SCHEMA, fg_b_host_schema, fg_b_segment_schema
from ndr_resources.errors import InputDataError
from tests.baselines.frames import (
    BASELINE_END,
    DENY,
    SESSIONS,
    fg_a_frame,
    fg_b_spec,
    ts,
    window_ends,
)

H1, H2 = "10.10.0.1", "10.10.0.2"  # both in segment "workstations"
WH, NIGHT = "work_hours", "night"
# 7-day horizon before 2026-02-01, no gap: the first window starting at or after 01-25 00:00 starts at
# 00:08 and ends at 00:23; the last window end at or before 02-01 00:00 is 01-31 23:53.
PERIOD = (ts(25, 0, 23), ts(31, 23, 53))


def stats_rows(spark):
    h1, h2 = window_ends(5), window_ends(4, ts(27, 10, 8))
    return fg_a_frame(
        spark,
        [(H1, WH, end, s, d) for end, s, d in zip(h1, [1, 2, 3, 4, 100], [0.0, 0.5, 0.5, 0.5, 1.0], strict=False)]
        + [(H2, WH, end, s, d) for end, s, d in zip(h2, [5, 5, 5, 9], [0.1, 0.2, 0.3, 0.4], strict=False)]
        + [
            (H1, NIGHT, ts(27, 2, 8), 7, 0.25),
            (H1, WH, ts(24, 10, 8), 1000, 1.0),  # window starts before 01-25 00:00: outside the 7-day horizon
        ],
    )


@pytest.fixture(scope="module")
def stats_build(spark):
    """One build shared by the host, segment and ip_metadata tests (support_min 5, no capping)."""
    inventory = spark.createDataFrame(
        [(H1, "WS-0001", "2026-01")], "ip string, machine_name string, snapshot_month string"
    )
    frames = build_fg_b(stats_rows(spark), inventory, fg_b_spec(), horizon="7d", baseline_end=BASELINE_END)
    yield frames
    frames.unpersist()


def test_host_baselines_are_exact_quantiles_mad_iqr_and_support(spark, stats_build):
    # Per metric: median, p25, p75, p95, p99, mad, iqr, support_count.
    expected = spark.createDataFrame(
        [
            # sessions 1,2,3,4,100 (n=5): p25 x[1]=2, median x[2]=3, p75 x[3]=4,
            #   p95 pos 3.8: 4 + 0.8*96 = 80.8, p99 pos 3.96: 4 + 0.96*96 = 96.16,
            #   |x-3| = 2,1,0,1,97 -> 0,1,1,2,97 -> mad 1; iqr 4-2 = 2.
            # deny 0,.5,.5,.5,1: p95 .5 + .8*.5 = .9, p99 .5 + .96*.5 = .98; |x-.5| = .5,0,0,0,.5 -> mad 0; iqr 0.
            (H1, WH, "workstations", 3.0, 2.0, 4.0, 80.8, 96.16, 1.0, 2.0, 5,
             0.5, 0.5, 0.5, 0.9, 0.98, 0.0, 0.0, 5, *PERIOD),
            # sessions 5,5,5,9 (n=4): p25 pos .75 = 5, median pos 1.5 = 5, p75 pos 2.25: 5 + .25*4 = 6,
            #   p95 pos 2.85: 5 + .85*4 = 8.4, p99 pos 2.97: 5 + .97*4 = 8.88; |x-5| = 0,0,0,4 -> mad 0 (FG-C
            #   falls back to IQR); iqr 6 - 5 = 1.
            # deny .1,.2,.3,.4: p25 .1 + .75*.1 = .175, median .25, p75 .3 + .25*.1 = .325, p95 .385, p99 .397;
            #   |x-.25| = .15,.05,.05,.15 -> .05,.05,.15,.15 -> mad .1; iqr .325 - .175 = .15.
            (H2, WH, "workstations", 5.0, 5.0, 6.0, 8.4, 8.88, 0.0, 1.0, 4,
             0.25, 0.175, 0.325, 0.385, 0.397, 0.1, 0.15, 4, *PERIOD),
            # One value: every quantile is the value, mad and iqr 0.
            (H1, NIGHT, "workstations", 7.0, 7.0, 7.0, 7.0, 7.0, 0.0, 0.0, 1,
             0.25, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 1, *PERIOD),
        ],
        fg_b_host_schema([SESSIONS, DENY]),
    )
    assertDataFrameEqual(stats_build.host, expected)


def test_segment_baselines_pool_host_windows_with_the_host_tables_statistics(spark, stats_build):
    expected = spark.createDataFrame(
        [
            # sessions of H1 and H2 pooled, n=9: 1,2,3,4,5,5,5,9,100: p25 x[2]=3, median x[4]=5, p75 x[6]=5,
            #   p95 pos 7.6: 9 + .6*91 = 63.6, p99 pos 7.92: 9 + .92*91 = 92.72;
            #   |x-5| sorted 0,0,0,1,2,3,4,4,95 -> mad 2; iqr 5 - 3 = 2.
            # deny 0,.1,.2,.3,.4,.5,.5,.5,1: p25 .2, median .4, p75 .5, p95 .5 + .6*.5 = .8, p99 .5 + .92*.5 = .96;
            #   |x-.4| sorted 0,.1,.1,.1,.1,.2,.3,.4,.6 -> mad .1; iqr .3.
            ("workstations", WH, 2, 5.0, 3.0, 5.0, 63.6, 92.72, 2.0, 2.0, 9,
             0.4, 0.2, 0.5, 0.8, 0.96, 0.1, 0.3, 9, *PERIOD),
            ("workstations", NIGHT, 1, 7.0, 7.0, 7.0, 7.0, 7.0, 0.0, 0.0, 1,
             0.25, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 1, *PERIOD),
        ],
        fg_b_segment_schema([SESSIONS, DENY]),
    )
    assertDataFrameEqual(stats_build.segment, expected)
    keys = {"host_ip", "segment_id", "window_label", "host_count"}
    host_stats = [(f.name, f.dataType) for f in stats_build.host.schema.fields if f.name not in keys]
    segment_stats = [(f.name, f.dataType) for f in stats_build.segment.schema.fields if f.name not in keys]
    assert host_stats == segment_stats  # cold-start hosts read the segment table with the host table's names


def test_counters_and_ip_metadata_of_a_build(spark, stats_build):
    # support_min 5: H1 work_hours has 5 windows (full history); H2 has 4 and H1 night 1 (cold start).
    assertDataFrameEqual(
        stats_build.ip_metadata,
        spark.createDataFrame(
            [
                (H1, WH, "workstations", "WS-0001", 5, 1, 0, 0),
                (H2, WH, "workstations", None, 4, 0, 0, 1),  # not in the inventory: no name
                (H1, NIGHT, "workstations", "WS-0001", 1, 0, 0, 1),
            ],
            FG_B_IP_METADATA_SCHEMA,
        ),
    )
    assert stats_build.counters() == {
        "rows_in_horizon": 10,  # 5 + 4 + 1: the row of 01-24 is outside the horizon
        "hosts": 2,
        "host_labels": 3,
        "cold_start_host_labels": 2,
        "short_history_host_labels": 2,
        "non_persistent_host_labels": 0,
    }
    assert stats_build.metrics == [SESSIONS, DENY] and stats_build.required_metrics == [SESSIONS, DENY]


def capping_rows(spark):
    return fg_a_frame(
        spark,
        [(H1, WH, end, v) for end, v in zip(window_ends(4), [1, 2, 3, 4], strict=False)]
        + [(H2, WH, end, v) for end, v in zip(window_ends(4), [5, 6, 7, 100], strict=False)]
        + [(H1, NIGHT, end, v) for end, v in zip(window_ends(2, ts(27, 2, 8)), [10, 20], strict=False)],
        [SESSIONS],
    )


def test_anomaly_caps_are_exact_quantiles_per_time_band_over_all_hosts(spark):
    caps = anomaly_caps(host_value_arrays(capping_rows(spark), [SESSIONS]), 0.75)
    expected = spark.createDataFrame(
        [
            # work_hours, 8 values 1,2,3,4,5,6,7,100: pos .75*7 = 5.25 -> 6 + .25*(7-6) = 6.25 (the tail of
            # ranks >= 5 comes from both hosts' top 3 values).
            (WH, 0, 6.25),
            # night, 10 and 20: pos .75 -> 10 + .75*10 = 17.5.
            (NIGHT, 0, 17.5),
        ],
        "window_label string, metric_idx int, cap double",
    )
    assertDataFrameEqual(caps, expected)


def test_capping_limits_values_before_the_statistics(spark):
    spec = fg_b_spec(baseline_metrics=[SESSIONS], anomaly_capping={"enabled": True, "upper_quantile": 0.75})
    frames = build_fg_b(capping_rows(spark), None, spec, horizon="7d", baseline_end=BASELINE_END)
    columns = [f"{SESSIONS}_{s}" for s in ("median", "p25", "p75", "p99", "mad")]
    try:
        assertDataFrameEqual(
            frames.host.select("host_ip", "window_label", *columns),
            spark.createDataFrame(
                [
                    # 1,2,3,4 are under the cap 6.25: median 2.5, p25 1 + .75 = 1.75, p75 3 + .25 = 3.25,
                    #   p99 3 + .97 = 3.97; |x-2.5| = 1.5,.5,.5,1.5 -> mad 1.
                    (H1, WH, 2.5, 1.75, 3.25, 3.97, 1.0),
                    # 5,6,7,100 -> 5,6,6.25,6.25: median 6 + .5*.25 = 6.125, p25 5 + .75*1 = 5.75, p75 and p99
                    #   6.25 (uncapped p99 would be 7 + .97*93 = 97.21); |x-6.125| -> .125,.125,.125,1.125: mad .125.
                    (H2, WH, 6.125, 5.75, 6.25, 6.25, 0.125),
                    # 10,20 -> 10,17.5 (night cap): median 13.75, p25 10 + .25*7.5 = 11.875,
                    #   p75 10 + .75*7.5 = 15.625, p99 10 + .99*7.5 = 17.425; |x-13.75| = 3.75 twice: mad 3.75.
                    (H1, NIGHT, 13.75, 11.875, 15.625, 17.425, 3.75),
                ],
                "host_ip string, window_label string, " + ", ".join(f"{c} double" for c in columns),
            ),
        )
    finally:
        frames.unpersist()


def test_horizon_and_safety_gap_select_windows_at_their_boundaries(spark):
    # 7 days, gap 1: window start >= 01-25 00:00 and window end <= 01-31 00:00.
    ends = [
        ts(25, 0, 8),  # starts 01-24 23:53: out
        ts(25, 0, 15),  # starts exactly 01-25 00:00: in
        ts(25, 0, 23),  # in
        ts(30, 23, 53),  # in
        ts(31, 0, 0),  # ends exactly at the gap bound: in
        ts(31, 0, 8),  # ends after it: out
    ]
    rows = fg_a_frame(spark, [(H1, WH, end, i, 0.0) for i, end in enumerate(ends)])
    selected = baseline_rows(rows, baseline_end=BASELINE_END, days=7, gap_days=1).select("window_end_ts")
    assertDataFrameEqual(selected, spark.createDataFrame([(e,) for e in ends[1:5]], "window_end_ts timestamp"))
    bounds = horizon_bounds(BASELINE_END, 7, 1)
    # The grid windows the horizon admits: first starts 01-25 00:08 (ends 00:23), last ends 01-30 23:53.
    assert (bounds.first_window_end, bounds.last_window_end) == (ts(25, 0, 23), ts(30, 23, 53))


def test_metric_names_must_be_fg_a_metric_columns(spark):
    rows = stats_rows(spark)
    with pytest.raises(BaselineMetricError, match="bogus_metric") as bad:
        build_fg_b(rows, None, fg_b_spec(baseline_metrics=[SESSIONS, "bogus_metric"]), horizon="7d",
                   baseline_end=BASELINE_END)
    assert bad.value.key == "baseline_metrics" and isinstance(bad.value, ValueError)
    with pytest.raises(BaselineMetricError, match="hour_of_day") as bad:
        build_fg_b(rows, None, fg_b_spec(baseline_metrics=None, baseline_required_metrics=["hour_of_day"]),
                   horizon="7d", baseline_end=BASELINE_END)
    assert bad.value.key == "baseline_required_metrics"
    # tcp_cnt is an FG-A metric but not in the default (curated) baseline list: it has no support column.
    with pytest.raises(BaselineMetricError, match="not among the baseline metrics") as bad:
        build_fg_b(rows, None, fg_b_spec(baseline_metrics=None, baseline_required_metrics=["tcp_cnt_w_15m"]),
                   horizon="7d", baseline_end=BASELINE_END)
    assert bad.value.key == "baseline_required_metrics"


def test_a_missing_fg_a_column_is_an_input_error_naming_it(spark):
    rows = stats_rows(spark).drop(DENY)
    with pytest.raises(InputDataError, match=DENY):
        build_fg_b(rows, None, fg_b_spec(), horizon="7d", baseline_end=BASELINE_END)


def test_capping_can_be_switched_off_and_a_quantile_of_one_is_the_maximum(spark):
    rows = capping_rows(spark)
    off = build_fg_b(rows, None, fg_b_spec(baseline_metrics=[SESSIONS]), horizon="7d", baseline_end=BASELINE_END)
    at_max = build_fg_b(
        rows, None, fg_b_spec(baseline_metrics=[SESSIONS], anomaly_capping={"upper_quantile": 1.0}),
        horizon="7d", baseline_end=BASELINE_END,
    )
    try:
        # Uncapped H2 5,6,7,100: p99 pos 2.97 -> 7 + .97*93 = 97.21 with either setting.
        for frames in (off, at_max):
            p99 = frames.host.where(f"host_ip = '{H2}'").select(f"{SESSIONS}_p99")
            assertDataFrameEqual(p99, spark.createDataFrame([(97.21,)], f"{SESSIONS}_p99 double"))
    finally:
        off.unpersist()
        at_max.unpersist()


def test_statistics_equal_numpy_on_random_values_with_ties_and_capping(spark):
    """Cross-check against numpy's default (linear) percentile: hosts of different sizes, ties, capping."""
    rng = np.random.default_rng(3)
    sizes = {"10.10.0.1": 37, "10.10.0.2": 5, "10.10.0.3": 1, "10.20.0.4": 64}
    values = {host: rng.integers(0, 12, size=n).astype(float) ** 2 for host, n in sizes.items()}
    ends = window_ends(64)
    rows = fg_a_frame(
        spark, [(h, WH, ends[i], int(v)) for h, vs in values.items() for i, v in enumerate(vs)], [SESSIONS]
    )
    spec = fg_b_spec(baseline_metrics=[SESSIONS], anomaly_capping={"enabled": True, "upper_quantile": 0.9})
    frames = build_fg_b(rows, None, spec, horizon="7d", baseline_end=BASELINE_END)
    cap = np.percentile(np.concatenate(list(values.values())), 90)
    expected = []
    for host, vs in values.items():
        x = np.minimum(vs, cap)
        median = np.percentile(x, 50)
        p25, p75, p95, p99 = np.percentile(x, [25, 75, 95, 99])
        expected.append((host, float(median), float(p25), float(p75), float(p95), float(p99),
                         float(np.median(np.abs(x - median))), float(p75 - p25), len(x)))
    stats = [f"{SESSIONS}_{s}" for s in ("median", "p25", "p75", "p95", "p99", "mad", "iqr", "support_count")]
    try:
        assertDataFrameEqual(
            frames.host.select("host_ip", *stats),
            spark.createDataFrame(expected, frames.host.select("host_ip", *stats).schema),
        )
    finally:
        frames.unpersist()

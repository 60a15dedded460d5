"""The one aggregation publish_dataset runs over the persisted frame, and FG-C's NaN/infinity count."""

from ndr_assets.correlation.assets import _bad_values_sql
from ndr_assets.publishing import _tally


def test_one_aggregation_counts_rows_per_partition_duplicate_keys_and_the_measure(spark):
    frame = spark.createDataFrame(
        [("2026-04-01", "0000", "a", 1, 5), ("2026-04-01", "0000", "a", 1, 2), ("2026-04-01", "0000", "b", 1, 1),
         ("2026-04-01", "0015", "a", 2, 3), ("2026-04-02", "0000", "c", 3, 4), ("2026-04-02", "0000", "c", 3, 6)],
        "dt string, window string, host_ip string, slice int, sessions_cnt long",
    )
    tally = _tally(frame, ["dt", "window"], ["host_ip", "slice"], "sessions_cnt")
    # Keys (a, 1) and (c, 3) occur twice; 5 + 2 + 1 + 3 + 4 + 6 = 21 sessions.
    assert tally.rows == {"2026-04-01/0000": 3, "2026-04-01/0015": 1, "2026-04-02/0000": 2}
    assert (tally.duplicate_keys, tally.measured) == (2, 21)
    assert _tally(frame.limit(0), ["dt", "window"], ["host_ip", "slice"], None).rows == {}


def test_bad_values_count_nan_and_both_infinities_only(spark):
    frame = spark.createDataFrame(
        [(1.0, float("nan"), float("inf")), (0.0, -float("inf"), 2.5), (3.0, 4.0, 5.0)], "x double, y double, z double"
    )
    per_row = [r[0] for r in frame.selectExpr(_bad_values_sql(["x", "y", "z"])).collect()]
    assert per_row == [2, 1, 0]
    assert frame.selectExpr(_bad_values_sql([])).first()[0] == 0

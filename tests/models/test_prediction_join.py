"""The prediction-feature join on hand-built frames, and the missing-window ranges of the fill job."""

from datetime import datetime

import pytest
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.prediction_join import join_predictions_with_features
from ndr_jobs.missing_features import WindowRange, contiguous_ranges
from ndr_resources.errors import InputDataError

KEYS = "host_ip string, window_label string, window_end_ts timestamp"
END_1 = datetime(2026, 4, 2, 0, 8)
END_2 = datetime(2026, 4, 2, 0, 23)


@pytest.fixture
def frames(spark):
    preds = spark.createDataFrame(
        [("10.0.0.1", "night", END_1, "v1", 0.71), ("10.0.0.2", "night", END_1, "v1", 0.42)],
        f"{KEYS}, feature_spec_version string, prediction_score double",
    )
    fg_a = spark.createDataFrame(
        [("10.0.0.1", "night", END_1, 12.0, 1), ("10.0.0.2", "night", END_1, 3.0, 1), ("10.0.0.3", "night", END_1, 5.0, 1)],
        f"{KEYS}, sessions_cnt_w_15m double, is_night int",
    )
    fg_c = spark.createDataFrame(
        [("10.0.0.1", "night", END_1, 4.5, 1), ("10.0.0.2", "night", END_1, -0.5, 1), ("10.0.0.3", "night", END_1, 0.0, 1)],
        f"{KEYS}, z_mad_sessions_cnt_w_15m double, is_night int",
    )
    return preds, fg_a, fg_c


def test_join_keeps_one_row_per_prediction_with_both_feature_sets(spark, frames):
    preds, fg_a, fg_c = frames
    joined = join_predictions_with_features(preds, fg_a, fg_c, "v1")
    expected = spark.createDataFrame(
        [("10.0.0.1", "night", END_1, "v1", 0.71, 12.0, 1, 4.5), ("10.0.0.2", "night", END_1, "v1", 0.42, 3.0, 1, -0.5)],
        f"{KEYS}, feature_spec_version string, prediction_score double, sessions_cnt_w_15m double, is_night int, "
        "z_mad_sessions_cnt_w_15m double",
    )
    assertDataFrameEqual(joined, expected)


def test_a_prediction_without_its_features_fails_naming_the_window_and_dataset(spark, frames):
    preds, fg_a, fg_c = frames
    late = preds.unionByName(spark.createDataFrame(
        [("10.0.0.9", "night", END_2, "v1", 0.5)], f"{KEYS}, feature_spec_version string, prediction_score double"))
    with pytest.raises(InputDataError, match=r"window\(s\) ending \['2026-04-02 00:23:00'\] have no fg_a row"):
        join_predictions_with_features(late, fg_a, fg_c, "v1")


def test_missing_windows_become_one_range_per_contiguous_run():
    keys = ["2026-04-01-00:08", "2026-04-01-00:23", "2026-04-01-00:38", "2026-04-01-01:38", "2026-03-31-23:53"]
    assert contiguous_ranges(keys) == [
        WindowRange("2026-03-31-23:53", "2026-04-01-00:38", 4),
        WindowRange("2026-04-01-01:38", "2026-04-01-01:38", 1),
    ]
    assert contiguous_ranges([]) == []

"""The seeded, bounded Spark sample that becomes the training frame."""

from __future__ import annotations

import pytest

from ndr_assets.models.training_data import NULL_STRATUM, sample_target, sample_training_rows, stratum_fractions


def _frame(spark, counts: dict[str | None, int]):
    rows = [(i, label, float(i)) for label, n in counts.items() for i in range(n)]
    return spark.createDataFrame(rows, "row_id int, window_label string, bytes double")


def test_the_draw_aims_three_standard_deviations_below_max_rows():
    assert sample_target(400) == 340  # 400 - 3 * sqrt(400)
    assert sample_target(200_000) == 198_658  # 200,000 - ceil(1341.6)


def test_stratum_fractions_are_proportional_with_a_floor_for_rare_strata():
    # max_rows 200 over 1,900 + 100 rows: proportional gives B 10 rows, below its floor
    # min(1000, 200 // 4) = 50; B gets 50 (fraction 0.5) and A shares the other 150 of its 1,900.
    assert stratum_fractions({"A": 1900, "B": 100}, 200) == {"A": 150 / 1900, "B": 0.5}
    # Balanced strata: plain proportional allocation.
    assert stratum_fractions({"A": 1000, "B": 1000}, 200) == {"A": 0.1, "B": 0.1}
    # A stratum smaller than the floor is taken whole.
    assert stratum_fractions({"A": 5000, "B": 20}, 400) == {"A": 380 / 5000, "B": 1.0}


def test_a_frame_within_max_rows_is_taken_whole(spark):
    sample, info = sample_training_rows(_frame(spark, {"w_15m": 30, "w_1h": 20}), max_rows=100, seed=7)

    assert len(sample) == 50
    assert info.to_metadata() == {
        "total_rows": 50, "sampled_rows": 50, "method": "all", "seed": 7, "max_rows": 100, "fraction": 1.0,
        "strata": "window_label", "stratum_rows": {"w_15m": 30, "w_1h": 20},
        "stratum_fractions": {"w_15m": 1.0, "w_1h": 1.0},
    }


def test_stratified_sample_is_bounded_keeps_rare_strata_and_is_seeded(spark):
    df = _frame(spark, {"A": 1900, "B": 100})

    sample, info = sample_training_rows(df, max_rows=400, seed=7)
    again, _ = sample_training_rows(df, max_rows=400, seed=7)

    # Target 340 rows: proportionally B would get 17, below its floor 340 // 4 = 85, so B's
    # fraction is 0.85 and A's 255 / 1,900.
    assert info.method == "stratified"
    assert (info.total_rows, info.fraction) == (2000, 340 / 2000)
    assert info.stratum_fractions == {"A": 255 / 1900, "B": 0.85}
    assert info.sampled_rows == len(sample) <= 400
    by_stratum = sample["window_label"].value_counts().to_dict()
    # Expected 255 and 85; Bernoulli draws stay within a few standard deviations (15 and 3.6) of that.
    assert 210 <= by_stratum["A"] <= 300
    assert 70 <= by_stratum["B"] <= 97
    assert sample.sort_values(["window_label", "row_id"]).equals(again.sort_values(["window_label", "row_id"]))
    assert list(sample.columns) == ["row_id", "window_label", "bytes"]


def test_unstratified_sample_uses_one_fraction(spark):
    sample, info = sample_training_rows(_frame(spark, {"A": 1000}), max_rows=100, seed=3, strata=None)

    # Target 100 - 30 = 70 rows of 1,000.
    assert (info.method, info.fraction, info.total_rows, info.strata) == ("bernoulli", 0.07, 1000, None)
    assert 40 <= len(sample) <= 100


def test_rows_without_a_stratum_are_sampled_as_their_own_stratum(spark):
    sample, info = sample_training_rows(_frame(spark, {"A": 300, None: 300}), max_rows=100, seed=3)

    assert info.stratum_rows == {"A": 300, NULL_STRATUM: 300}
    assert sample["window_label"].isna().sum() > 0


def test_a_missing_stratum_column_is_refused(spark):
    with pytest.raises(ValueError, match="stratum column 'window_end' is not in the training frame"):
        sample_training_rows(_frame(spark, {"A": 10}), max_rows=100, seed=3, strata="window_end")

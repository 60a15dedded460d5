"""The training window of a month's model, as arithmetic and as the partition mapping Dagster resolves."""

from datetime import UTC, datetime

from ndr_assets.partitions import (
    FIFTEEN_MINUTE_KEY_FORMAT,
    correlation_partitions,
    monthly_partitions,
    training_range,
    training_window_starts,
    training_windows_mapping,
)


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_june_model_learns_january_to_april():
    assert training_range(_utc(2026, 6, 1), lookback_months=4, gap_months=1) == (_utc(2026, 1, 1), _utc(2026, 5, 1))


def test_training_window_crosses_the_year_boundary():
    assert training_range(_utc(2026, 2, 1), lookback_months=4, gap_months=1) == (_utc(2025, 9, 1), _utc(2026, 1, 1))
    assert training_range(_utc(2026, 1, 1), lookback_months=1, gap_months=0) == (_utc(2025, 12, 1), _utc(2026, 1, 1))


def test_in_month_days_trains_on_the_first_days_of_the_month_of_use():
    assert training_range(_utc(2026, 4, 1), lookback_months=4, gap_months=1, in_month_days=1) == (
        _utc(2026, 4, 1), _utc(2026, 4, 2))


def test_partition_mapping_gives_the_same_windows_as_the_arithmetic():
    project_start = _utc(2025, 6, 1)
    monthly, windows = monthly_partitions(project_start), correlation_partitions(project_start)
    mapping = training_windows_mapping(lookback_months=4, gap_months=1)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        monthly.subset_with_partition_keys(["2026-02-01"]), monthly, windows,
    ).partitions_subset
    keys = sorted(upstream.get_partition_keys())
    # Window partitions are named by their start on the 08/23/38/53 grid: the first is the 23:53 window
    # that holds September's first instant, the last the 23:53 window of December 31st.
    assert (keys[0], keys[-1]) == ("2025-08-31-23:53", "2025-12-31-23:53")
    assert keys == [w.strftime(FIFTEEN_MINUTE_KEY_FORMAT) for w in training_window_starts(_utc(2026, 2, 1), lookback_months=4, gap_months=1)]
    assert len(keys) == (30 + 31 + 30 + 31) * 96 + 1

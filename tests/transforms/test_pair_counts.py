"""Pair counts: sessions per (src, dst, dst_port) and window; filters drop and count rows."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.pair_counts import build_pair_counts
from ndr_assets.transforms.schemas import PAIR_COUNTS_SCHEMA
from ndr_resources.specs import PairCountsFilters
from tests.transforms.traffic_factory import W1, W1_END, W2, W2_END, session, traffic_frame

A, B, C = "10.10.0.1", "10.30.0.5", "10.50.0.3"
WITH_WINDOW = T.StructType([*PAIR_COUNTS_SCHEMA.fields, T.StructField("window_start", T.TimestampType())])


def rows():
    return [
        session(source_ip=A, destination_ip=B, destination_port=443),
        session(source_ip=A, destination_ip=B, destination_port=443, source_port=50001),
        session(source_ip=A, destination_ip=B, destination_port=80),
        session(source_ip=B, destination_ip=A, destination_port=443),  # the reverse direction is its own pair
        session(source_ip=A, destination_ip=B, destination_port=443, window_start=W2),  # next window
        session(source_ip=None, destination_ip=B, destination_port=443),  # no source: filtered
        session(source_ip=A, destination_ip="  ", destination_port=443),  # blank destination: filtered
        session(source_ip=None, destination_ip=C, destination_port=None),  # fails both: counted once, as ip
        session(source_ip=A, destination_ip=C, destination_port=None),  # no port: filtered
    ]


def test_sessions_are_counted_per_pair_and_window_and_filtered_rows_are_counted(spark):
    result = build_pair_counts(traffic_frame(spark, rows()), PairCountsFilters())
    expected = spark.createDataFrame(
        [
            (A, B, 443, W1_END, 2, W1),
            (A, B, 80, W1_END, 1, W1),
            (B, A, 443, W1_END, 1, W1),
            (A, B, 443, W2_END, 1, W2),
        ],
        WITH_WINDOW,
    )
    assertDataFrameEqual(result.pair_counts, expected)
    assert result.counters == {"filtered_null_ip": 3, "filtered_null_destination_port": 1}


def test_switched_off_filters_keep_their_rows(spark):
    no_port_filter = PairCountsFilters(require_nonnull_ips=True, require_destination_port=False)
    result = build_pair_counts(traffic_frame(spark, rows()), no_port_filter)
    kept_without_port = result.pair_counts.filter("dst_port is null").select("src_ip", "dst_ip", "sessions_cnt")
    assertDataFrameEqual(
        kept_without_port, spark.createDataFrame([(A, C, 1)], "src_ip string, dst_ip string, sessions_cnt long")
    )
    assert result.counters == {"filtered_null_ip": 3, "filtered_null_destination_port": 0}

    no_filters = PairCountsFilters(require_nonnull_ips=False, require_destination_port=False)
    nothing = build_pair_counts(traffic_frame(spark, rows()), no_filters)
    assert nothing.counters == {"filtered_null_ip": 0, "filtered_null_destination_port": 0}
    assert nothing.pair_counts.groupBy().sum("sessions_cnt").first()[0] == len(rows())


def test_traffic_without_window_start_is_rejected(spark):
    with pytest.raises(ValueError, match="window_start"):
        build_pair_counts(traffic_frame(spark, rows()).drop("window_start"), PairCountsFilters())

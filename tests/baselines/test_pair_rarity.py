"""Pair rarity per host and per segment over a 7-day horizon with a 1-day safety gap, hand-checked."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.pair_rarity import build_pair_rarity
from ndr_assets.transforms.schemas import PAIR_RARITY_HOST_SCHEMA, PAIR_RARITY_SEGMENT_SCHEMA
from ndr_resources.errors import InputDataError
from ndr_resources.specs import PairRarityThresholds, SegmentMapping
from tests.baselines.frames import BASELINE_END, SEGMENTS, ts

A, B, OUTSIDE = "10.10.0.1", "10.10.0.2", "203.0.113.9"  # A and B: workstations; OUTSIDE: external
DNS, SMB, WEB = ("8.8.8.8", 53), ("10.30.0.5", 445), ("10.30.0.5", 443)
# Pair counts may carry null keys when its filters are off.
PAIRS_SCHEMA = T.StructType(
    [
        T.StructField("src_ip", T.StringType()),
        T.StructField("dst_ip", T.StringType()),
        T.StructField("dst_port", T.IntegerType()),
        T.StructField("event_ts", T.TimestampType()),
        T.StructField("sessions_cnt", T.LongType()),
    ]
)


def pair_counts(spark):
    rows = [
        # A -> DNS: windows ending 01-25 10:08, 10:23, 01-26 10:08 and 01-28 00:08 (starts 01-27 23:53).
        (A, *DNS, ts(25, 10, 8), 3),
        (A, *DNS, ts(25, 10, 8), 1),  # the same window twice (two pair-count files): one window
        (A, *DNS, ts(25, 10, 23), 1),
        (A, *DNS, ts(26, 10, 8), 2),
        (A, *DNS, ts(28, 0, 8), 1),
        (A, *DNS, ts(25, 0, 8), 9),  # starts 01-24 23:53, before the horizon
        (A, *DNS, ts(31, 0, 8), 9),  # ends after 01-31 00:00, inside the safety gap
        # A -> SMB: once, on 01-30 (new: first window starts at or after 01-31 - 1 day = 01-30 00:00).
        (A, *SMB, ts(30, 12, 8), 1),
        # B -> DNS: the window 01-25 10:08 (also A's) and 01-29 08:08.
        (B, *DNS, ts(25, 10, 8), 1),
        (B, *DNS, ts(29, 8, 8), 1),
        (OUTSIDE, *WEB, ts(27, 12, 8), 4),
        (A, "8.8.4.4", None, ts(27, 12, 8), 1),  # no port: cannot be matched, left out
    ]
    return spark.createDataFrame(rows, PAIRS_SCHEMA)


def build(spark):
    return build_pair_rarity(
        pair_counts(spark), segment_mapping=SegmentMapping.model_validate(SEGMENTS), baseline_end=BASELINE_END,
        days=7, gap_days=1, thresholds=PairRarityThresholds(rare_max_active_days=2, new_pair_days=1),
    )


def test_host_pair_rarity(spark):
    expected = spark.createDataFrame(
        [
            # 4 windows on days 25, 26, 27 (the 00:08 window starts on the 27th): avg 4/3, score 1 - 3/7.
            (A, *DNS, 4, ts(28, 0, 8), 3, 4 / 3, 1 - 3 / 7, 0, 0),
            (A, *SMB, 1, ts(30, 12, 8), 1, 1.0, 1 - 1 / 7, 1, 1),
            (B, *DNS, 2, ts(29, 8, 8), 2, 1.0, 1 - 2 / 7, 0, 1),
            (OUTSIDE, *WEB, 1, ts(27, 12, 8), 1, 1.0, 1 - 1 / 7, 0, 1),
        ],
        PAIR_RARITY_HOST_SCHEMA,
    )
    assertDataFrameEqual(build(spark).host, expected)


def test_segment_pair_rarity_counts_a_window_once_for_the_segment(spark):
    expected = spark.createDataFrame(
        [
            # Workstations -> DNS: windows 01-25 10:08 (A and B: once), 10:23, 01-26 10:08, 01-28 00:08,
            # 01-29 08:08 = 5 on days 25, 26, 27, 29 = 4: avg 5/4, score 1 - 4/7, not rare (4 > 2).
            ("workstations", *DNS, 5, ts(29, 8, 8), 4, 1.25, 1 - 4 / 7, 0, 0),
            ("workstations", *SMB, 1, ts(30, 12, 8), 1, 1.0, 1 - 1 / 7, 1, 1),
            ("external", *WEB, 1, ts(27, 12, 8), 1, 1.0, 1 - 1 / 7, 0, 1),
        ],
        PAIR_RARITY_SEGMENT_SCHEMA,
    )
    assertDataFrameEqual(build(spark).segment, expected)


def test_missing_pair_counts_column_is_an_input_error(spark):
    with pytest.raises(InputDataError, match="dst_port"):
        build_pair_rarity(
            pair_counts(spark).drop("dst_port"), segment_mapping=None, baseline_end=BASELINE_END, days=7,
            gap_days=0, thresholds=PairRarityThresholds(),
        )

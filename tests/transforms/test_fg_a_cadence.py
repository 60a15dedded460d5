"""FG-A beacon cadence on hand-built session timelines: regular beacons score high, browsing low."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.fg_a import build_fg_a
from ndr_assets.transforms.fg_a_cadence import beacon_cadence_features, outbound_pair_timelines, pair_window_statistics
from ndr_assets.transforms.schemas import BEACON_CADENCE_FEATURES, DELTA_HOST_SLICE_SCHEMA, DELTA_PEER_SLICE_SCHEMA
from ndr_resources.specs import FgABuilderSpec

END = datetime(2026, 1, 8, 0, 8, tzinfo=UTC)  # a window end on the 08/23/38/53 grid
E = int(END.timestamp())
DAY_START = E - 86_400  # first slice of the 24 h window ending at END
HOST, OTHER = "10.10.0.1", "10.10.0.2"
C2, WEB = "203.0.113.9", "198.51.100.7"
OUT_SCHEMA = T.StructType(
    [T.StructField("host_ip", T.StringType()), T.StructField("end_epoch", T.LongType())]
    + [T.StructField(name, dtype) for name, dtype in BEACON_CADENCE_FEATURES.items()]
)


def peer_slices(host: str, peer_ip: str, port: int, sessions: list[tuple[int, int]], role: str = "outbound") -> list:
    """Peer-slice rows of one pair: each (start epoch, bytes sent) delivered in the slice containing its start."""
    by_slice: dict[int, list[tuple[int, int]]] = {}
    for start, sent in sessions:
        by_slice.setdefault(DAY_START + (start - DAY_START) // 900 * 900, []).append((start, sent))
    rows = []
    for slice_s, items in sorted(by_slice.items()):
        begin = datetime.fromtimestamp(slice_s, UTC)
        timeline = sorted(items) if role == "outbound" else []
        rows.append((host, role, begin, begin + timedelta(minutes=15), peer_ip, port, "external", len(items),
                     sum(b for _, b in items), timeline))
    return rows


def cadence(spark, rows: list, ends: list[int] | None = None):
    return beacon_cadence_features(spark.createDataFrame(rows, DELTA_PEER_SLICE_SCHEMA), ends or [E])


def perfect_beacon(start_offset: int = 60) -> list[tuple[int, int]]:
    return [(DAY_START + start_offset + 600 * k, 512) for k in range(144)]


def browsing() -> list[tuple[int, int]]:
    """Three bursts of page loads (09:00, 13:00, 16:30) with irregular gaps and very different sizes."""
    gaps = [0, 2, 3, 7, 15, 16, 40, 41, 90, 200]
    sizes = [900, 15_000, 620, 48_000, 1_200, 7_700, 350, 22_000, 3_100, 640]
    sessions = []
    for burst_hour in (9, 13, 16.5):
        first = DAY_START + int(burst_hour * 3600)
        sessions += [(first + gap, size) for gap, size in zip(gaps, sizes, strict=True)]
    return sessions


def test_a_perfect_ten_minute_beacon_scores_one(spark):
    actual = cadence(spark, peer_slices(HOST, C2, 443, perfect_beacon()))
    expected = [(HOST, E, 1.0, 144, 600.0, 0.0, 0.0, 0.0, 0.0, 1.0)]
    assertDataFrameEqual(actual, spark.createDataFrame(expected, OUT_SCHEMA))


def test_a_jittered_slow_beacon_scores_high(spark):
    rng = random.Random(7)  # every 20 min +- 3 min, payload 300 +- 8 bytes
    sessions = [(DAY_START + 200 + 1200 * k + rng.randint(-180, 180), 300 + rng.randint(-8, 8)) for k in range(72)]
    row = cadence(spark, peer_slices(HOST, C2, 8443, sessions)).first()
    assert row["beacon_cadence_score_w_24h"] > 0.7
    assert row["beacon_pair_conn_cnt_w_24h"] == 72
    assert abs(row["beacon_interval_median_s_w_24h"] - 1200) < 90
    assert row["beacon_interval_mad_ratio_w_24h"] < 0.2
    assert row["beacon_hourly_coverage_w_24h"] == 1.0


def test_bursty_browsing_scores_low(spark):
    row = cadence(spark, peer_slices(HOST, WEB, 443, browsing())).first()
    assert row["beacon_cadence_score_w_24h"] < 0.3
    assert row["beacon_hourly_coverage_w_24h"] == 3 / 24


def test_statistics_of_a_small_interval_list_are_the_hand_computed_ones(spark):
    # starts 0, 10, 30, 60, 100, 180, 340 s after 00:09 -> intervals sorted [10, 20, 30, 40, 80, 160]:
    # q1 = 20 + 0.25 * 10 = 22.5, q2 = 35, q3 = 40 + 0.75 * 40 = 70; Bowley = (22.5 + 70 - 70) / 47.5;
    # |d - 35| sorted [5, 5, 15, 25, 45, 125] -> MAD = 20, MAD / median = 20 / 35.
    # bytes [100, 100, 100, 200, 300, 600, 1000]: q1 = 100, median 200, q3 = 450 -> Bowley 150 / 350;
    # |b - 200| sorted [0, 100, 100, 100, 100, 400, 800] -> MAD 100.
    offsets = [0, 10, 30, 60, 100, 180, 340]
    sizes = [100, 1000, 100, 300, 200, 600, 100]
    sessions = [(DAY_START + 60 + o, b) for o, b in zip(offsets, sizes, strict=True)]
    interval_skew, mad_ratio, bytes_skew = 22.5 / 47.5, 20 / 35, 150 / 350
    mad_score = 1 - mad_ratio
    regularity = (1 - interval_skew + mad_score) / 2
    persistence = (7 * 35 / 86_400 + 1 / 24) / 2
    data_score = (1 - bytes_skew + (1 - 100 / 200)) / 2
    score = mad_score * (2 * regularity + data_score + persistence) / 4
    expected = [(HOST, E, score, 7, 35.0, mad_ratio, interval_skew, bytes_skew, 100.0, 1 / 24)]
    actual = cadence(spark, peer_slices(HOST, C2, 443, sessions))
    assertDataFrameEqual(actual, spark.createDataFrame(expected, OUT_SCHEMA), rtol=1e-12, atol=1e-12)


def test_the_host_takes_its_most_regular_pair_and_needs_six_connections(spark):
    five_beats = [(DAY_START + 60 + 600 * k, 64) for k in range(5)]  # regular, but too few to qualify
    rows = (
        peer_slices(HOST, WEB, 443, browsing())
        + peer_slices(HOST, C2, 443, perfect_beacon())
        + peer_slices(OTHER, C2, 443, five_beats)
        + peer_slices(OTHER, WEB, 443, perfect_beacon(), role="inbound")  # inbound: no timeline, no cadence
    )
    actual = cadence(spark, rows)
    assertDataFrameEqual(actual, spark.createDataFrame([(HOST, E, 1.0, 144, 600.0, 0.0, 0.0, 0.0, 0.0, 1.0)], OUT_SCHEMA))


def test_many_window_ends_at_once_equal_each_end_alone(spark):
    """A backfill's ends in one pass give what each window would give alone (steady state)."""
    rows = peer_slices(HOST, C2, 443, perfect_beacon()) + peer_slices(HOST, WEB, 443, browsing())
    ends = [E - 4 * 3600, E - 900, E, E + 900]
    together = cadence(spark, rows, ends)
    alone = [cadence(spark, rows, [end]) for end in ends]
    union = alone[0]
    for frame in alone[1:]:
        union = union.unionByName(frame)
    assertDataFrameEqual(together, union)
    # The 24 h window ending 15 min after END lost the beacon's first slice (sessions at 00:09 and 00:19).
    later = together.where(f"end_epoch = {E + 900}").first()
    assert later["beacon_pair_conn_cnt_w_24h"] == 142


def test_pairs_below_six_distinct_starts_over_the_read_are_dropped_early(spark):
    same_second = [(DAY_START + 60, 10)] * 6 + [(DAY_START + 660, 10)]  # 7 sessions, 2 distinct starts
    timelines = outbound_pair_timelines(spark.createDataFrame(peer_slices(HOST, C2, 443, same_second), DELTA_PEER_SLICE_SCHEMA))
    assert timelines.count() == 0
    stats = pair_window_statistics(
        outbound_pair_timelines(spark.createDataFrame(peer_slices(HOST, C2, 443, perfect_beacon()), DELTA_PEER_SLICE_SCHEMA)),
        [E],
    )
    assert stats.count() == 1


def test_build_fg_a_carries_the_cadence_of_active_hosts(spark):
    """Through FG-A: the beacon host's row has its cadence; an active host without pairs has the 0 defaults."""
    last_slice = datetime.fromtimestamp(E - 900, UTC)
    metrics = [0.0 if isinstance(f.dataType, T.DoubleType) else 0 for f in DELTA_HOST_SLICE_SCHEMA.fields[4:]]
    metrics[-2] = None  # packets_sum
    hosts = [(h, "outbound", last_slice, last_slice + timedelta(minutes=15), *metrics) for h in (HOST, OTHER)]
    peers = spark.createDataFrame(peer_slices(HOST, C2, 443, perfect_beacon()), DELTA_PEER_SLICE_SCHEMA)
    spec = FgABuilderSpec.model_validate({"delta_input": {"s3_prefix": "s3://l/d/"}, "fg_a_output": {"s3_prefix": "s3://l/a/"}})
    out = build_fg_a(spark.createDataFrame(hosts, DELTA_HOST_SLICE_SCHEMA), peers,
                     spark.createDataFrame([], DELTA_PEER_SLICE_SCHEMA), [last_slice], spec)
    actual = out.select("host_ip", *BEACON_CADENCE_FEATURES)
    expected_schema = T.StructType([f for f in OUT_SCHEMA.fields if f.name != "end_epoch"])
    expected = [(HOST, 1.0, 144, 600.0, 0.0, 0.0, 0.0, 0.0, 1.0), (OTHER, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    assertDataFrameEqual(actual, spark.createDataFrame(expected, expected_schema))

"""FG-A on hand-made delta slices with hand-computed expectations.

Building FG-A plans a ~500-column aggregation, so the scenarios share frames: one batch (``scenario``)
holds one host per metric family, computed once per module.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.fg_a import build_fg_a, time_band_columns
from ndr_assets.transforms.schemas import (
    BEACON_CADENCE_FEATURES,
    DELTA_HOST_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SCHEMA,
    FG_A_METRICS,
    fg_a_metric_columns,
    fg_a_schema,
)
from ndr_assets.transforms.windows import WINDOW_LABELS
from ndr_resources.errors import InputDataError, SpecError
from ndr_resources.specs import FgABuilderSpec, parse_spec

# A Wednesday; the batch computes the windows starting at W0 and W0 + 15 min.
W0 = datetime(2026, 1, 7, 10, 8, tzinfo=UTC)
E0 = W0 + timedelta(minutes=15)
W1 = W0 + timedelta(minutes=15)
E1 = W1 + timedelta(minutes=15)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)


def spec(**overrides) -> FgABuilderSpec:
    payload = {
        "delta_input": {"s3_prefix": "s3://lake/delta/"},
        "fg_a_output": {"s3_prefix": "s3://lake/fg_a/"},
        "high_risk_segments": ["domain_controllers", "databases"],
        **overrides,
    }
    return FgABuilderSpec.model_validate(payload)


_HOST_METRIC_FIELDS = DELTA_HOST_SLICE_SCHEMA.fields[4:]


def host_slice(host: str, role: str, start: datetime, **metrics) -> tuple:
    """A DELTA_HOST_SLICE_SCHEMA row: every metric 0 unless given."""
    values = {f.name: 0.0 if isinstance(f.dataType, T.DoubleType) else 0 for f in _HOST_METRIC_FIELDS}
    values["packets_sum"] = None
    unknown = set(metrics) - set(values)
    assert not unknown, unknown
    values.update(metrics)
    return (host, role, start, start + 15 * MIN, *[values[f.name] for f in _HOST_METRIC_FIELDS])


def peer_slice(host, role, start, peer_ip, peer_port, segment, sessions, bytes_sum, timeline=()) -> tuple:
    return (host, role, start, start + 15 * MIN, peer_ip, peer_port, segment, sessions, bytes_sum, list(timeline))


def entropy(counts: list[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c) if total else 0.0


# ---------------------------------------------------------------- the shared scenario

HOST_EDGES = "10.10.0.1"  # additive sums at window edges
HOST_DERIVED = "10.10.0.2"  # derived ratios, both directions
HOST_INBOUND_ONLY = "10.10.0.3"
HOST_IDLE = "10.10.0.4"  # active 2 h before the window only
HOST_PEERS = "10.10.0.5"  # distribution metrics, no history at all
HOST_NOVELTY = "10.10.0.6"  # lookback: new, rare, known peers
HOST_HIGH_RISK = "10.10.0.8"

# HOST_EDGES: slice rank k (1 = the window's own slice) -> (sessions, max_sessions_per_minute) for E0.
# The w_L window ending at E0 holds ranks 1 .. L/15: w_30m 1-2, w_1h 1-4, w_8h 1-32, w_24h 1-96.
EDGE_SLICES = {1: (1, 5), 2: (2, 7), 3: (16, 1), 4: (4, 1), 5: (8, 9), 32: (32, 1), 33: (64, 1), 96: (128, 1), 97: (256, 100)}


def rank_start(rank: int, end: datetime = E0) -> datetime:
    return end - rank * 15 * MIN


def scenario_frames(spark):
    hosts = [
        host_slice(HOST_EDGES, "outbound", rank_start(k), sessions_cnt=s, max_sessions_per_minute=m, duration_sum=float(s))
        for k, (s, m) in EDGE_SLICES.items()
    ]
    hosts += [
        host_slice(
            HOST_DERIVED, "outbound", W0, sessions_cnt=4, deny_cnt=1, duration_sum=10.0, bytes_src_sum=300,
            bytes_dst_sum=100, tcp_cnt=2, udp_cnt=1, icmp_cnt=1, high_risk_port_sessions_cnt=1,
        ),
        host_slice(HOST_DERIVED, "inbound", W0 - 15 * MIN, sessions_cnt=2, bytes_src_sum=50, bytes_dst_sum=150, tcp_cnt=2),
        host_slice(HOST_INBOUND_ONLY, "inbound", W0, sessions_cnt=3, allow_cnt=3),
        host_slice(HOST_IDLE, "outbound", W0 - 120 * MIN, sessions_cnt=9),
        host_slice(HOST_PEERS, "outbound", W0, sessions_cnt=3),
        host_slice(HOST_PEERS, "outbound", W0 - 15 * MIN, sessions_cnt=5),
        host_slice(HOST_NOVELTY, "outbound", W0, sessions_cnt=13),
        host_slice(HOST_NOVELTY, "outbound", W0 - 15 * MIN, sessions_cnt=1),
        host_slice(HOST_HIGH_RISK, "outbound", W0, sessions_cnt=14),
        host_slice(HOST_HIGH_RISK, "outbound", W0 - 15 * MIN, sessions_cnt=3),
    ]
    peers = [
        peer_slice(HOST_PEERS, "outbound", W0, "1.1.1.1", 443, "external", 2, 100),
        peer_slice(HOST_PEERS, "outbound", W0, "1.1.1.2", 443, "external", 1, 50),
        peer_slice(HOST_PEERS, "outbound", W0 - 15 * MIN, "1.1.1.1", 80, "external", 2, 10),
        peer_slice(HOST_PEERS, "outbound", W0 - 15 * MIN, "10.30.0.9", 445, "servers", 3, 40),
        # HOST_NOVELTY in its window (history below).
        *[
            peer_slice(HOST_NOVELTY, "outbound", W0, ip, port, segment, 1, 10)
            for ip, port, segment in [
                ("2.2.2.1", 443, "external"),  # never seen
                ("2.2.2.2", 443, "external"),  # seen on 2 days: rare
                ("2.2.2.3", 22, "external"),  # seen on 3 days: known
                ("2.2.2.4", 443, "external"),  # seen 15 min before the 30-day lookback only: new
                ("2.2.2.5", 8080, "external"),  # seen in the previous slice only
                ("2.2.2.6", 443, "external"),  # seen exactly 30 days before the window: rare
                ("10.40.0.7", 443, "databases"),  # new peer, new service (databases, 443)
            ]
        ],
        peer_slice(HOST_NOVELTY, "outbound", W0 - 15 * MIN, "2.2.2.5", 8080, "external", 1, 10),
        peer_slice(HOST_HIGH_RISK, "outbound", W0, "10.50.0.1", 389, "domain_controllers", 4, 40),
        peer_slice(HOST_HIGH_RISK, "outbound", W0, "10.50.0.2", 88, "domain_controllers", 1, 10),
        peer_slice(HOST_HIGH_RISK, "outbound", W0, "10.40.0.3", 1433, "databases", 2, 20),
        peer_slice(HOST_HIGH_RISK, "outbound", W0, "8.8.8.8", 53, "external", 7, 70),
        peer_slice(HOST_HIGH_RISK, "outbound", W0 - 15 * MIN, "10.50.0.1", 389, "domain_controllers", 3, 30),
    ]
    lookback = [
        peer_slice(HOST_NOVELTY, "outbound", W0 - 2 * DAY, "2.2.2.2", 443, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 5 * DAY, "2.2.2.2", 443, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 1 * DAY, "2.2.2.3", 22, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 3 * DAY, "2.2.2.3", 22, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 10 * DAY, "2.2.2.3", 22, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 30 * DAY - 15 * MIN, "2.2.2.4", 443, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "outbound", W0 - 30 * DAY, "2.2.2.6", 443, "external", 1, 10),
        # Another host's and another role's history do not count for HOST_NOVELTY outbound.
        peer_slice("10.10.0.99", "outbound", W0 - 1 * DAY, "2.2.2.1", 443, "external", 1, 10),
        peer_slice(HOST_NOVELTY, "inbound", W0 - 1 * DAY, "2.2.2.1", 443, "external", 1, 10),
    ]
    return (
        spark.createDataFrame(hosts, DELTA_HOST_SLICE_SCHEMA),
        spark.createDataFrame(peers, DELTA_PEER_SLICE_SCHEMA),
        spark.createDataFrame(lookback, DELTA_PEER_SLICE_SCHEMA),
    )


@pytest.fixture(scope="module")
def scenario(spark):
    host_slices, peer_slices, lookback = scenario_frames(spark)
    out = build_fg_a(host_slices, peer_slices, lookback, [W0, W1], spec())
    return out.persist()


def at(end: datetime):
    return F.col("window_end_ts") == F.lit(end)


def check(spark, scenario, host: str, end: datetime, expected: dict[str, object]) -> None:
    """The given columns of one (host, window end) row equal ``expected``."""
    actual = scenario.where((F.col("host_ip") == host) & at(end)).select(*expected)
    assertDataFrameEqual(actual, spark.createDataFrame([tuple(expected.values())], actual.schema))


def per_window(metric: str, values: list, prefix: str = "") -> dict[str, object]:
    return {f"{prefix}{metric}_{label}": value for label, value in zip(WINDOW_LABELS, values, strict=True)}


# ---------------------------------------------------------------- schema and rows


def test_output_has_exactly_the_contract_columns_and_types(scenario):
    contract = fg_a_schema()
    assert scenario.columns == [f.name for f in contract.fields]
    assert len(scenario.columns) == 493 + 3
    assert len(fg_a_metric_columns()) == 480 and len(FG_A_METRICS) == 48
    assert [(f.name, f.dataType) for f in scenario.schema.fields] == [(f.name, f.dataType) for f in contract.fields]


def test_one_row_per_host_active_in_the_window_and_no_nulls(spark, scenario):
    keys = scenario.select("host_ip", F.col("window_end_ts").cast("string").alias("end"))
    e0 = "2026-01-07 10:23:00"
    # Every host but HOST_IDLE is active at E0; at E1 (window W1) nobody has a slice.
    expected = [(h, e0) for h in (HOST_EDGES, HOST_DERIVED, HOST_INBOUND_ONLY, HOST_PEERS, HOST_NOVELTY, HOST_HIGH_RISK)]
    assertDataFrameEqual(keys, spark.createDataFrame(expected, "host_ip string, end string"))
    nulls = scenario.select(*[F.count_if(F.col(c).isNull()) for c in scenario.columns]).first()
    assert sum(nulls) == 0


def test_no_row_for_a_host_active_two_hours_before_the_window_only(scenario):
    assert scenario.where(F.col("host_ip") == HOST_IDLE).count() == 0


# ---------------------------------------------------------------- additive and max


def test_additive_sums_include_the_window_edge_slice_and_exclude_the_one_before(spark, scenario):
    # ranks 1,2 -> 1+2; w_1h adds ranks 3,4 (16+4); w_8h adds 5 and 32 (8+32); w_24h adds 33 and 96 (64+128);
    # rank 97 (256) is just outside w_24h.
    sessions = [1, 3, 23, 63, 255]
    check(spark, scenario, HOST_EDGES, E0, per_window("sessions_cnt", sessions))
    check(spark, scenario, HOST_EDGES, E0, per_window("duration_sum", [float(s) for s in sessions]))
    check(spark, scenario, HOST_EDGES, E0, per_window("sessions_cnt", [0] * 5, prefix="in_"))


def test_max_sessions_per_minute_is_the_largest_slice_in_the_window(spark, scenario):
    check(spark, scenario, HOST_EDGES, E0, per_window("max_sessions_per_minute", [5, 7, 7, 9, 9]))


# ---------------------------------------------------------------- derived, directions


def test_derived_ratios_and_zero_division(spark, scenario):
    outbound = {
        "duration_mean_w_15m": 2.5,
        "deny_ratio_w_15m": 0.25,
        "bytes_asymmetry_ratio_w_15m": 0.5,
        "transport_tcp_ratio_w_15m": 0.5,
        "transport_udp_ratio_w_15m": 0.25,
        "transport_icmp_ratio_w_15m": 0.25,
        "has_high_risk_port_activity_w_15m": 1,
    }
    check(spark, scenario, HOST_DERIVED, E0, outbound)
    # Inbound: no slice in w_15m (every ratio 0, no division error); one slice in w_30m.
    inbound = {
        "in_sessions_cnt_w_15m": 0,
        "in_duration_mean_w_15m": 0.0,
        "in_deny_ratio_w_15m": 0.0,
        "in_bytes_asymmetry_ratio_w_15m": 0.0,
        "in_transport_tcp_ratio_w_15m": 0.0,
        "in_has_high_risk_port_activity_w_15m": 0,
        "in_sessions_cnt_w_30m": 2,
        "in_bytes_asymmetry_ratio_w_30m": -0.5,
        "in_transport_tcp_ratio_w_30m": 1.0,
        "in_deny_ratio_w_30m": 0.0,
    }
    check(spark, scenario, HOST_DERIVED, E0, inbound)


def test_host_active_only_inbound_gets_a_row_with_zero_outbound_metrics(spark, scenario):
    expected = {
        "sessions_cnt_w_15m": 0,
        "peer_ip_nunique_w_15m": 0,
        "deny_ratio_w_24h": 0.0,
        "in_sessions_cnt_w_15m": 3,
        "in_allow_cnt_w_24h": 3,
        "in_peer_ip_nunique_w_15m": 0,  # no peer rows given for it
    }
    check(spark, scenario, HOST_INBOUND_ONLY, E0, expected)


# ---------------------------------------------------------------- distribution


def test_distinct_counts_entropy_and_top1_over_a_window_with_a_repeated_peer(spark, scenario):
    # w_15m: 1.1.1.1 (2 sessions, 100 B), 1.1.1.2 (1, 50 B), all on port 443.
    # w_30m adds 1.1.1.1:80 (2, 10 B) and 10.30.0.9:445 (3, 40 B): 1.1.1.1 counted once with 4 sessions.
    expected = {
        **per_window("peer_ip_nunique", [2, 3, 3, 3, 3]),
        **per_window("peer_port_nunique", [1, 3, 3, 3, 3]),
        **per_window("peer_segment_nunique", [1, 2, 2, 2, 2]),
        "peer_ip_entropy_w_15m": entropy([2, 1]),
        "peer_ip_entropy_w_30m": entropy([4, 1, 3]),
        "peer_port_entropy_w_15m": 0.0,
        "peer_port_entropy_w_30m": entropy([3, 2, 3]),
        "peer_ip_top1_sessions_share_w_15m": 2 / 3,
        "peer_ip_top1_sessions_share_w_30m": 4 / 8,
        "peer_port_top1_sessions_share_w_15m": 1.0,
        "peer_port_top1_sessions_share_w_30m": 3 / 8,
        "peer_ip_top1_bytes_share_w_15m": 100 / 150,
        "peer_ip_top1_bytes_share_w_30m": 110 / 200,
        "peer_port_top1_bytes_share_w_30m": 150 / 200,
        "in_peer_ip_nunique_w_30m": 0,
        "in_peer_ip_entropy_w_30m": 0.0,
        "in_peer_ip_top1_sessions_share_w_30m": 0.0,
    }
    check(spark, scenario, HOST_PEERS, E0, expected)


# ---------------------------------------------------------------- novelty


def test_novelty_without_lookback_history_counts_every_peer_as_new(spark, scenario):
    # HOST_PEERS has no lookback rows. Its only history is the slice before W0: for w_15m, 1.1.1.1 was
    # seen there (rare: 1 day) and 1.1.1.2 is new; from w_30m on that slice is part of the window and
    # nothing precedes it, so every key is new.
    expected = {
        **per_window("new_peer_cnt_lookback30d", [1, 3, 3, 3, 3]),
        **per_window("new_peer_ratio_lookback30d", [0.5, 1.0, 1.0, 1.0, 1.0]),
        **per_window("rare_peer_cnt_lookback30d", [1, 0, 0, 0, 0]),
        **per_window("new_dst_port_cnt_lookback30d", [1, 3, 3, 3, 3]),
        **per_window("new_pair_cnt_lookback30d", [2, 4, 4, 4, 4]),
        **per_window("new_src_dst_port_cnt_lookback30d", [1, 3, 3, 3, 3]),
    }
    check(spark, scenario, HOST_PEERS, E0, expected)


def test_novelty_new_rare_and_known_peers_ports_pairs_and_services(spark, scenario):
    # w_15m history = [W0 - 30 d, W0): new 2.2.2.1, 2.2.2.4 (seen 15 min before the lookback), 10.40.0.7;
    # rare (1-2 days) 2.2.2.2, 2.2.2.5 (previous slice), 2.2.2.6 (exactly 30 d back); known 2.2.2.3 (3 days).
    # w_30m history = [W0 - 30 d, W0 - 15 min): 2.2.2.5's only other sighting is inside the window -> new.
    expected = {
        "peer_ip_nunique_w_15m": 7,
        "new_peer_cnt_lookback30d_w_15m": 3,
        "rare_peer_cnt_lookback30d_w_15m": 3,
        "new_peer_ratio_lookback30d_w_15m": 3 / 7,
        "new_peer_cnt_lookback30d_w_30m": 4,
        "rare_peer_cnt_lookback30d_w_30m": 2,
        "new_peer_ratio_lookback30d_w_30m": 4 / 7,
        # ports: 443 seen on 3 days (W0-2d, W0-5d, W0-30d), 22 on 3 days, 8080 in the previous slice only.
        "new_dst_port_cnt_lookback30d_w_15m": 0,
        "rare_dst_port_cnt_lookback30d_w_15m": 1,
        "new_dst_port_cnt_lookback30d_w_30m": 1,
        "rare_dst_port_cnt_lookback30d_w_30m": 0,
        # pairs: (2.2.2.1,443), (2.2.2.4,443), (10.40.0.7,443) new; w_30m adds (2.2.2.5,8080).
        "new_pair_cnt_lookback30d_w_15m": 3,
        "new_pair_cnt_lookback30d_w_30m": 4,
        # services: (databases,443) new; w_30m adds (external,8080).
        "new_src_dst_port_cnt_lookback30d_w_15m": 1,
        "new_src_dst_port_cnt_lookback30d_w_30m": 2,
        # The inbound history row of 2.2.2.1 makes nothing inbound: there is no inbound traffic.
        "in_new_peer_cnt_lookback30d_w_15m": 0,
    }
    check(spark, scenario, HOST_NOVELTY, E0, expected)


def test_rare_threshold_comes_from_the_spec(spark):
    host_slices, peer_slices, lookback = scenario_frames(spark)
    host_slices = host_slices.where(F.col("host_ip") == HOST_NOVELTY)
    out = build_fg_a(host_slices, peer_slices, lookback, [W0], spec(lookback30d={"rare_thresholds": {"peer_days": 4, "port_days": 1}}))
    # peer_days 4: 2.2.2.3 (3 days) becomes rare too; port_days 1: no port can be rare.
    check(
        spark,
        out,
        HOST_NOVELTY,
        E0,
        {"rare_peer_cnt_lookback30d_w_15m": 4, "rare_dst_port_cnt_lookback30d_w_15m": 0, "new_peer_cnt_lookback30d_w_15m": 3},
    )


# ---------------------------------------------------------------- high-risk segments


def test_high_risk_segment_sessions_and_distinct_peers(spark, scenario):
    expected = {
        **per_window("high_risk_segment_sessions_cnt", [7, 10, 10, 10, 10]),
        **per_window("high_risk_segment_unique_dsts", [3, 3, 3, 3, 3]),
        **per_window("has_high_risk_segment_interaction", [1] * 5),
        "in_high_risk_segment_sessions_cnt_w_15m": 0,
        "in_has_high_risk_segment_interaction_w_15m": 0,
    }
    check(spark, scenario, HOST_HIGH_RISK, E0, expected)
    check(spark, scenario, HOST_PEERS, E0, {"has_high_risk_segment_interaction_w_24h": 0, "high_risk_segment_unique_dsts_w_24h": 0})


# ---------------------------------------------------------------- time band


def test_time_band_of_the_scenario_window(spark, scenario):
    expected = {"window_label": "work_hours", "hour_of_day": 10, "is_working_hours": 1, "is_after_hours": 0, "is_night": 0, "is_weekend": 0}
    check(spark, scenario, HOST_EDGES, E0, expected)


BAND_CASES = [
    # window end (UTC), band, hour
    (datetime(2026, 1, 7, 5, 53, tzinfo=UTC), "night", 5),
    (datetime(2026, 1, 7, 6, 8, tzinfo=UTC), "after_hours", 6),
    (datetime(2026, 1, 7, 7, 53, tzinfo=UTC), "after_hours", 7),
    (datetime(2026, 1, 7, 8, 8, tzinfo=UTC), "work_hours", 8),
    (datetime(2026, 1, 7, 17, 53, tzinfo=UTC), "work_hours", 17),
    (datetime(2026, 1, 7, 18, 8, tzinfo=UTC), "after_hours", 18),
    (datetime(2026, 1, 7, 21, 53, tzinfo=UTC), "after_hours", 21),
    (datetime(2026, 1, 7, 22, 8, tzinfo=UTC), "night", 22),
    (datetime(2026, 1, 10, 12, 8, tzinfo=UTC), "weekend", 12),  # Saturday
    (datetime(2026, 1, 11, 23, 8, tzinfo=UTC), "weekend", 23),  # Sunday night: weekend wins
    (datetime(2026, 1, 12, 0, 8, tzinfo=UTC), "night", 0),  # Monday
]


def _bands(spark, ends: list[datetime], time_zone: str, working_hours=(8, 18)):
    frame = spark.createDataFrame([(e,) for e in ends], "window_end_ts timestamp")
    return frame.select(F.col("window_end_ts").cast("string").alias("end"), *time_band_columns(F.col("window_end_ts"), time_zone, working_hours))


def _band_row(end: datetime, band: str, hour: int) -> tuple:
    flags = [int(band == b) for b in ("work_hours", "after_hours", "night", "weekend")]
    return (end.strftime("%Y-%m-%d %H:%M:%S"), band, hour, *flags)


def test_time_bands_and_flags_at_boundaries(spark):
    actual = _bands(spark, [end for end, _, _ in BAND_CASES], "UTC")
    assertDataFrameEqual(actual, spark.createDataFrame([_band_row(*case) for case in BAND_CASES], actual.schema))


def test_time_bands_use_the_spec_time_zone_and_working_hours(spark):
    # New York is UTC-5 in January. Friday 22:08 local is night, not weekend; working hours 9-17.
    cases = [
        (datetime(2026, 1, 7, 13, 8, tzinfo=UTC), "after_hours", 8),  # 08:08 local, before 9
        (datetime(2026, 1, 7, 14, 8, tzinfo=UTC), "work_hours", 9),
        (datetime(2026, 1, 10, 3, 8, tzinfo=UTC), "night", 22),  # Saturday 03:08 UTC = Friday 22:08 local
        (datetime(2026, 1, 10, 5, 8, tzinfo=UTC), "weekend", 0),  # Saturday 00:08 local
    ]
    actual = _bands(spark, [end for end, _, _ in cases], "America/New_York", (9, 17))
    assertDataFrameEqual(actual, spark.createDataFrame([_band_row(*case) for case in cases], actual.schema))


# ---------------------------------------------------------------- brute-force reference

_SEGMENTS = {
    "3.3.3.1": "external",
    "3.3.3.2": "external",
    "10.40.0.1": "databases",
    "10.50.0.1": "domain_controllers",
    "10.30.0.1": "servers",
}


def _random_frames(seed: int = 7):
    """Sparse random slices from 35 h before the first of 8 windows (older slices must be ignored)."""
    rng = random.Random(seed)
    first = datetime(2026, 1, 7, 0, 8, tzinfo=UTC)
    windows = [first + i * 15 * MIN for i in range(8)]
    hosts = ["10.10.1.1", "10.10.1.2", "10.10.1.3"]
    host_rows, peers = [], []
    for slice_index in range(-140, 8):
        start = first + slice_index * 15 * MIN
        for host in hosts:
            for role in ("outbound", "inbound"):
                if rng.random() < 0.3:
                    for _ in range(rng.randint(1, 3)):
                        ip = rng.choice(list(_SEGMENTS))
                        port = rng.choice([22, 443, 445])
                        peers.append(peer_slice(host, role, start, ip, port, _SEGMENTS[ip], rng.randint(1, 4), rng.randint(0, 50)))
                    metrics = {
                        "sessions_cnt": rng.randint(1, 9),
                        "max_sessions_per_minute": rng.randint(0, 5),
                        "duration_sum": rng.randint(0, 400) / 8,
                    }
                    host_rows.append(host_slice(host, role, start, **metrics))
    lookback = []
    for _ in range(80):
        start = first - rng.randint(1, 31 * 96) * 15 * MIN
        ip = rng.choice(list(_SEGMENTS))
        host, role = rng.choice(hosts), rng.choice(["outbound", "inbound"])
        lookback.append(peer_slice(host, role, start, ip, rng.choice([22, 443, 445]), _SEGMENTS[ip], 1, 1))
    return windows, host_rows, peers, lookback


def _brute_force_row(host_rows, peers, history, end, minutes, days) -> dict[str, object]:
    """Every checked metric of one host, role and window, straight from the definitions."""
    lo = end - minutes * MIN
    slices = [r for r in host_rows if lo <= r[2] < end]
    inside = [p for p in peers if lo <= p[2] < end]
    before = [p for p in history if end - 15 * MIN - days * DAY <= p[2] < lo]

    def by(index, value):
        totals = {}
        for p in inside:
            totals[p[index]] = totals.get(p[index], 0) + p[value]
        return totals

    def day_counts(key):
        return {k: len({p[2].date() for p in before if key(p) == k}) for k in {key(p) for p in inside}}

    sessions, ip_sessions, port_sessions, port_bytes = sum(p[7] for p in inside), by(4, 7), by(5, 7), by(5, 8)
    peer_days, port_days = day_counts(lambda p: p[4]), day_counts(lambda p: p[5])
    high_risk = [p for p in inside if p[6] in ("databases", "domain_controllers")]
    return {
        "sessions_cnt": sum(r[4] for r in slices),
        "max_sessions_per_minute": max((r[FIELD_INDEX["max_sessions_per_minute"]] for r in slices), default=0),
        "duration_sum": float(sum(r[FIELD_INDEX["duration_sum"]] for r in slices)),
        "peer_ip_nunique": len(ip_sessions),
        "peer_port_nunique": len(port_sessions),
        "peer_segment_nunique": len({p[6] for p in inside}),
        "peer_ip_entropy": entropy(list(ip_sessions.values())),
        "peer_port_entropy": entropy(list(port_sessions.values())),
        "peer_ip_top1_sessions_share": max(ip_sessions.values()) / sessions if sessions else 0.0,
        "peer_port_top1_bytes_share": max(port_bytes.values()) / sum(port_bytes.values()) if sum(port_bytes.values()) else 0.0,
        "new_peer_cnt_lookback30d": sum(1 for d in peer_days.values() if d == 0),
        "rare_peer_cnt_lookback30d": sum(1 for d in peer_days.values() if 1 <= d < 3),
        "new_dst_port_cnt_lookback30d": sum(1 for d in port_days.values() if d == 0),
        "rare_dst_port_cnt_lookback30d": sum(1 for d in port_days.values() if 1 <= d < 3),
        "new_pair_cnt_lookback30d": len({(p[4], p[5]) for p in inside} - {(p[4], p[5]) for p in before}),
        "new_src_dst_port_cnt_lookback30d": len({(p[6], p[5]) for p in inside} - {(p[6], p[5]) for p in before}),
        "high_risk_segment_sessions_cnt": sum(p[7] for p in high_risk),
        "high_risk_segment_unique_dsts": len({p[4] for p in high_risk}),
    }


FIELD_INDEX = {f.name: i for i, f in enumerate(DELTA_HOST_SLICE_SCHEMA.fields)}
BRUTE_METRICS = list(_brute_force_row([], [], [], W0, 15, 30))


def _brute_force(windows, host_rows, peers, lookback, days):
    rows = []
    for start in windows:
        end = start + 15 * MIN
        active = sorted({r[0] for r in host_rows if r[2] == start})
        for host in active:
            values = {}
            for role, prefix in (("outbound", ""), ("inbound", "in_")):
                mine = [r for r in host_rows if r[0] == host and r[1] == role]
                my_peers = [p for p in peers if p[0] == host and p[1] == role]
                # Where the lookback overlaps the trailing 24 h, the trailing peer slices are authoritative.
                earliest_trailing = windows[0] + 15 * MIN - DAY
                history = [p for p in lookback if p[2] < earliest_trailing] + peers
                my_history = [p for p in history if p[0] == host and p[1] == role]
                for label, minutes in zip(WINDOW_LABELS, (15, 30, 60, 480, 1440), strict=True):
                    for metric, value in _brute_force_row(mine, my_peers, my_history, end, minutes, days).items():
                        values[f"{prefix}{metric}_{label}"] = value
            rows.append({"host_ip": host, "window_end_ts": end, **values})
    return rows


@pytest.mark.parametrize("lookback_days", [30, 1])
def test_every_family_matches_a_brute_force_reference(spark, lookback_days):
    windows, host_rows, peers, lookback = _random_frames()
    out = build_fg_a(
        spark.createDataFrame(host_rows, DELTA_HOST_SLICE_SCHEMA),
        spark.createDataFrame(peers, DELTA_PEER_SLICE_SCHEMA),
        spark.createDataFrame(lookback, DELTA_PEER_SLICE_SCHEMA),
        windows,
        spec(lookback30d={"days": lookback_days}),
    )
    columns = [f"{prefix}{metric}_{label}" for prefix in ("", "in_") for label in WINDOW_LABELS for metric in BRUTE_METRICS]
    actual = out.select("host_ip", "window_end_ts", *columns)
    expected = _brute_force(windows, host_rows, peers, lookback, lookback_days)
    assert len(expected) >= 12  # the random frame has real work in it
    rows = [tuple(row[c] for c in actual.columns) for row in expected]
    assertDataFrameEqual(actual, spark.createDataFrame(rows, actual.schema))


# ---------------------------------------------------------------- inputs


def test_no_windows_gives_an_empty_frame_with_the_contract(spark):
    host_slices, peer_slices, lookback = scenario_frames(spark)
    out = build_fg_a(host_slices, peer_slices, lookback, [], spec())
    assert out.schema == fg_a_schema() and out.count() == 0


def test_window_start_off_the_grid_is_rejected(spark):
    host_slices, peer_slices, lookback = scenario_frames(spark)
    with pytest.raises(ValueError, match="not on the 08/23/38/53 grid"):
        build_fg_a(host_slices, peer_slices, lookback, [datetime(2026, 1, 7, 10, 0, tzinfo=UTC)], spec())


def test_bad_time_band_spec_and_missing_input_columns_are_named(spark):
    host_slices, peer_slices, lookback = scenario_frames(spark)
    payload = {"delta_input": {"s3_prefix": "s3://lake/delta/"}, "fg_a_output": {"s3_prefix": "s3://lake/fg_a/"}}
    with pytest.raises(SpecError, match=r"project 'p', item 'fg_a_builder#v1', key 'working_hours'"):
        parse_spec(FgABuilderSpec, {**payload, "working_hours": [18, 8]}, project="p", item="fg_a_builder#v1")
    with pytest.raises(SpecError, match=r"key 'time_zone': .*Mars/Olympus_Mons"):
        parse_spec(FgABuilderSpec, {**payload, "time_zone": "Mars/Olympus_Mons"}, project="p", item="fg_a_builder#v1")
    assert spec(time_zone="+02:00").time_zone == "+02:00"
    with pytest.raises(InputDataError, match="delta peer slices.*peer_segment"):
        build_fg_a(host_slices, peer_slices.drop("peer_segment"), lookback, [W0], spec())


def test_a_host_without_a_qualifying_pair_gets_the_cadence_defaults(spark, scenario):
    # HOST_HIGH_RISK has outbound peers but no session timelines: every cadence feature is 0.
    check(spark, scenario, HOST_HIGH_RISK, E0, dict.fromkeys(BEACON_CADENCE_FEATURES, 0) | {
        name: 0.0 for name, dtype in BEACON_CADENCE_FEATURES.items() if isinstance(dtype, T.DoubleType)
    })

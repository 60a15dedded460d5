"""Delta builder on hand-made sessions, against hand-computed host and peer slices.

The scenario: in window W1 workstation A = 10.10.0.1 has six outbound sessions (s1..s6 below) to
three peers; in window W2 one more session to 10.30.0.5. Segments: 10.10/16 workstations,
10.30/16 servers, 10.50.0.0/24 domain_controllers, anything else external.
"""

from __future__ import annotations

import calendar
import math
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.delta import (
    ROLE_SESSION_COLUMNS,
    DeltaOptions,
    build_delta,
    build_host_slices,
    build_peer_slices,
    host_role_sessions,
)
from ndr_assets.transforms.port_sets import PortSets
from ndr_assets.transforms.schemas import DELTA_HOST_SLICE_SCHEMA, DELTA_PEER_SLICE_SCHEMA
from ndr_resources.specs import DEFAULT_ROLES, DeltaBuilderSpec, Operator, SegmentMapping
from tests.transforms.traffic_factory import W1, W1_END, W2, W2_END, session, traffic_frame

A, SRV, DC, DNS = "10.10.0.1", "10.30.0.5", "10.50.0.3", "8.8.8.8"

MAPPING = SegmentMapping.model_validate(
    {
        "segments": [
            {"segment_id": "workstations", "cidr": "10.10.0.0/16"},
            {"segment_id": "servers", "cidr": "10.30.0.0/16"},
            {"segment_id": "domain_controllers", "cidr": "10.50.0.0/24"},
        ],
        "default_segment": "external",
    }
)
PORTS = PortSets.from_json(
    {"high_risk": [445, 3389], "admin": [22, 3389], "fileshare": [445], "directory": [53, 88], "db": [1433]}
)


def at(minute: int, second: int) -> datetime:
    """A time in the 08:00 hour of W1's day."""
    return datetime(2026, 1, 5, 8, minute, second)


def scenario_rows() -> list[dict]:
    def s(dst, port, **kw):
        return session(source_ip=A, destination_ip=dst, destination_port=port, **kw)

    return [
        # s1: plain allowed TLS session.
        s(SRV, 443, source_bytes=100, destination_bytes=200, packets=4, duration_s=30.0, event_end=at(9, 30)),
        # s2: reset by the server, no reply, short, packets unknown.
        s(SRV, 443, source_bytes=50, destination_bytes=0, packets=None, duration_s=0.5,
          session_end_reason="tcp-rst-from-server", event_end=at(9, 10)),
        # s3: denied by policy on SMB, no reply, zero duration.
        s(DC, 445, action="deny", session_end_reason="policy-deny", source_bytes=60, destination_bytes=0,
          packets=1, duration_s=0.0, event_end=at(9, 45)),
        # s4: DNS over UDP to the internet, aged out, log type in lower case.
        s(DNS, 53, protocol="udp", session_end_reason="aged-out", source_bytes=70, destination_bytes=130,
          packets=2, duration_s=30.0, log_type="traffic", event_end=at(10, 5)),
        # s5: RDP reset after a threat verdict; a THREAT record, so not counted as traffic.
        s(DC, 3389, action="reset-server", session_end_reason="threat", source_bytes=80, destination_bytes=20,
          packets=None, duration_s=2.0, log_type="THREAT", event_end=at(10, 20)),
        # s6: ICMP, aged out, unknown duration and log type.
        s(SRV, 0, protocol="icmp", session_end_reason="aged-out", source_bytes=10, destination_bytes=10,
          packets=2, duration_s=None, log_type=None, event_end=at(11, 0)),
        # W2: a second window, nothing sent, packets unknown.
        s(SRV, 443, window_start=W2, source_bytes=0, destination_bytes=0, packets=None, duration_s=1.0,
          event_start=W2 + timedelta(minutes=1), event_end=W2 + timedelta(minutes=2)),
    ]


def host_rows(spark, rows: list[dict]):
    """Expected host slices; every row spells out every column (no defaults)."""
    names = DELTA_HOST_SLICE_SCHEMA.fieldNames()
    for row in rows:
        assert sorted(row) == sorted(names), set(names) ^ set(row)
    return spark.createDataFrame([tuple(row[n] for n in names) for row in rows], DELTA_HOST_SLICE_SCHEMA)


def ln(x: float) -> float:
    return math.log(x)


# Outbound A in W1, by hand. Peers: SRV n=3 (s1 s2 s6, bytes 300+50+20=370), DC n=2 (s3 s5, 60+100=160),
# DNS n=1 (s4, 200); N=6, B=730. Ports: 443 n=2 (350), 445 (60), 53 (200), 3389 (100), 0 (20).
A_OUT_W1 = {
    "host_ip": A, "role": "outbound", "slice_start": W1, "slice_end": W1_END,
    "sessions_cnt": 6,
    "allow_cnt": 4,  # s1 s2 s4 s6
    "deny_cnt": 2,  # s3 deny, s5 reset-server
    "alert_cnt": 2,  # s3 policy-deny, s5 threat
    "rst_cnt": 2,  # s2 tcp-rst-from-server, s5 reset-server
    "aged_out_cnt": 2,  # s4 s6
    "zero_reply_cnt": 2,  # s2 s3: destination sent 0 bytes
    "short_session_cnt": 2,  # s2 0.5 s, s3 0.0 s (s6 unknown is not short)
    "bytes_src_sum": 100 + 50 + 60 + 70 + 80 + 10,
    "bytes_dst_sum": 200 + 0 + 0 + 130 + 20 + 10,
    "duration_sum": 30.0 + 0.5 + 0.0 + 30.0 + 2.0,
    "tcp_cnt": 4, "udp_cnt": 1, "icmp_cnt": 1,
    "threat_cnt": 1,  # s5
    "traffic_cnt": 5,  # all but the THREAT record s5 (null and lower-case 'traffic' count)
    "high_risk_port_sessions_cnt": 2,  # 445, 3389
    "admin_port_sessions_cnt": 1,  # 3389
    "fileshare_port_sessions_cnt": 1,  # 445
    "directory_port_sessions_cnt": 1,  # 53
    "db_port_sessions_cnt": 0,
    "peer_ip_nunique": 3, "peer_port_nunique": 5, "peer_segment_nunique": 3,
    "peer_ip_entropy": -(3 / 6 * ln(3 / 6) + 2 / 6 * ln(2 / 6) + 1 / 6 * ln(1 / 6)),
    "peer_port_entropy": -(2 / 6 * ln(2 / 6) + 4 * (1 / 6 * ln(1 / 6))),
    "peer_ip_top1_sessions_share": 3 / 6,
    "peer_port_top1_sessions_share": 2 / 6,
    "peer_ip_top1_bytes_share": 370 / 730,
    "peer_port_top1_bytes_share": 350 / 730,
    "max_sessions_per_minute": 3,  # s1 s2 s3 end in 08:09; s4 s5 in 08:10; s6 in 08:11
    "packets_sum": 4 + 1 + 2 + 2,  # s2 and s5 unknown
    "duration_max": 30.0,
}
# W2: one session, no bytes at all (top-1 byte shares 0), packets unknown (null sum).
A_OUT_W2 = {
    "host_ip": A, "role": "outbound", "slice_start": W2, "slice_end": W2_END,
    "sessions_cnt": 1, "allow_cnt": 1, "deny_cnt": 0, "alert_cnt": 0, "rst_cnt": 0, "aged_out_cnt": 0,
    "zero_reply_cnt": 1, "short_session_cnt": 0, "bytes_src_sum": 0, "bytes_dst_sum": 0, "duration_sum": 1.0,
    "tcp_cnt": 1, "udp_cnt": 0, "icmp_cnt": 0, "threat_cnt": 0, "traffic_cnt": 1,
    "high_risk_port_sessions_cnt": 0, "admin_port_sessions_cnt": 0, "fileshare_port_sessions_cnt": 0,
    "directory_port_sessions_cnt": 0, "db_port_sessions_cnt": 0,
    "peer_ip_nunique": 1, "peer_port_nunique": 1, "peer_segment_nunique": 1,
    "peer_ip_entropy": 0.0, "peer_port_entropy": 0.0,
    "peer_ip_top1_sessions_share": 1.0, "peer_port_top1_sessions_share": 1.0,
    "peer_ip_top1_bytes_share": 0.0, "peer_port_top1_bytes_share": 0.0,
    "max_sessions_per_minute": 1, "packets_sum": None, "duration_max": 1.0,
}
# Inbound SRV in W1: s1 s2 s6 from A. The host SENT the destination bytes.
SRV_IN_W1 = {
    "host_ip": SRV, "role": "inbound", "slice_start": W1, "slice_end": W1_END,
    "sessions_cnt": 3, "allow_cnt": 3, "deny_cnt": 0, "alert_cnt": 0, "rst_cnt": 1, "aged_out_cnt": 1,
    "zero_reply_cnt": 1,  # s2: this host never answered
    "short_session_cnt": 1,
    "bytes_src_sum": 200 + 0 + 10, "bytes_dst_sum": 100 + 50 + 10, "duration_sum": 30.5,
    "tcp_cnt": 2, "udp_cnt": 0, "icmp_cnt": 1, "threat_cnt": 0, "traffic_cnt": 3,
    "high_risk_port_sessions_cnt": 0, "admin_port_sessions_cnt": 0, "fileshare_port_sessions_cnt": 0,
    "directory_port_sessions_cnt": 0, "db_port_sessions_cnt": 0,
    "peer_ip_nunique": 1, "peer_port_nunique": 2, "peer_segment_nunique": 1,
    "peer_ip_entropy": 0.0, "peer_port_entropy": -(2 / 3 * ln(2 / 3) + 1 / 3 * ln(1 / 3)),
    "peer_ip_top1_sessions_share": 1.0, "peer_port_top1_sessions_share": 2 / 3,
    "peer_ip_top1_bytes_share": 1.0, "peer_port_top1_bytes_share": 350 / 370,
    "max_sessions_per_minute": 2,  # s1 s2 in 08:09
    "packets_sum": 6, "duration_max": 30.0,
}
# Inbound DC in W1: s3 (denied SMB) and s5 (RDP threat) from A.
DC_IN_W1 = {
    "host_ip": DC, "role": "inbound", "slice_start": W1, "slice_end": W1_END,
    "sessions_cnt": 2, "allow_cnt": 0, "deny_cnt": 2, "alert_cnt": 2, "rst_cnt": 1, "aged_out_cnt": 0,
    "zero_reply_cnt": 1, "short_session_cnt": 1,
    "bytes_src_sum": 0 + 20, "bytes_dst_sum": 60 + 80, "duration_sum": 2.0,
    "tcp_cnt": 2, "udp_cnt": 0, "icmp_cnt": 0, "threat_cnt": 1, "traffic_cnt": 1,
    "high_risk_port_sessions_cnt": 2, "admin_port_sessions_cnt": 1, "fileshare_port_sessions_cnt": 1,
    "directory_port_sessions_cnt": 0, "db_port_sessions_cnt": 0,
    "peer_ip_nunique": 1, "peer_port_nunique": 2, "peer_segment_nunique": 1,
    "peer_ip_entropy": 0.0, "peer_port_entropy": ln(2),
    "peer_ip_top1_sessions_share": 1.0, "peer_port_top1_sessions_share": 0.5,
    "peer_ip_top1_bytes_share": 1.0, "peer_port_top1_bytes_share": 100 / 160,
    "max_sessions_per_minute": 1, "packets_sum": 1, "duration_max": 2.0,
}
DNS_IN_W1 = {
    "host_ip": DNS, "role": "inbound", "slice_start": W1, "slice_end": W1_END,
    "sessions_cnt": 1, "allow_cnt": 1, "deny_cnt": 0, "alert_cnt": 0, "rst_cnt": 0, "aged_out_cnt": 1,
    "zero_reply_cnt": 0, "short_session_cnt": 0, "bytes_src_sum": 130, "bytes_dst_sum": 70, "duration_sum": 30.0,
    "tcp_cnt": 0, "udp_cnt": 1, "icmp_cnt": 0, "threat_cnt": 0, "traffic_cnt": 1,
    "high_risk_port_sessions_cnt": 0, "admin_port_sessions_cnt": 0, "fileshare_port_sessions_cnt": 0,
    "directory_port_sessions_cnt": 1, "db_port_sessions_cnt": 0,
    "peer_ip_nunique": 1, "peer_port_nunique": 1, "peer_segment_nunique": 1,
    "peer_ip_entropy": 0.0, "peer_port_entropy": 0.0,
    "peer_ip_top1_sessions_share": 1.0, "peer_port_top1_sessions_share": 1.0,
    "peer_ip_top1_bytes_share": 1.0, "peer_port_top1_bytes_share": 1.0,
    "max_sessions_per_minute": 1, "packets_sum": 2, "duration_max": 30.0,
}
SRV_IN_W2 = {**A_OUT_W2, "host_ip": SRV, "role": "inbound"}


@pytest.fixture(scope="module")
def role_sessions(spark):
    return host_role_sessions(traffic_frame(spark, scenario_rows()), DEFAULT_ROLES, MAPPING)


def delta_spec(operators: list[dict] | None = None) -> DeltaBuilderSpec:
    return DeltaBuilderSpec.model_validate(
        {
            "project_name": "p",
            "job_name": "delta_builder",
            "feature_spec_version": "v1",
            "input": {"s3_prefix": "s3://bucket/raw/"},
            "enrichment": {"segment_mapping": MAPPING.model_dump()},
            "operators": operators or [],
            "output": {"s3_prefix": "s3://bucket/delta/"},
        }
    )


def test_a_session_gives_an_outbound_row_for_its_source_and_an_inbound_row_for_its_destination(spark):
    traffic = traffic_frame(spark, [session(source_ip=A, destination_ip=DC, destination_port=445,
                                            source_bytes=60, destination_bytes=7)])
    rows = host_role_sessions(traffic, DEFAULT_ROLES, MAPPING)
    assert rows.columns == list(ROLE_SESSION_COLUMNS)
    picked = rows.select("host_ip", "role", "window_start", "peer_ip", "peer_port", "peer_segment",
                         "bytes_sent", "bytes_recv", "reply_bytes")
    expected = spark.createDataFrame(
        [(A, "outbound", W1, DC, 445, "domain_controllers", 60, 7, 7),
         (DC, "inbound", W1, A, 445, "workstations", 7, 60, 7)],
        "host_ip string, role string, window_start timestamp, peer_ip string, peer_port int, "
        "peer_segment string, bytes_sent long, bytes_recv long, reply_bytes long",
    )
    assertDataFrameEqual(picked, expected)


def test_host_slices_every_metric_both_roles_two_windows(spark, role_sessions):
    actual = build_host_slices(role_sessions, PORTS)
    # The internet resolver (8.8.8.8) is a peer of A, not a host: it lies outside the mapped segments.
    expected = host_rows(spark, [A_OUT_W1, A_OUT_W2, SRV_IN_W1, DC_IN_W1, SRV_IN_W2])
    assertDataFrameEqual(actual, expected, rtol=0, atol=1e-12)


def test_without_a_segment_mapping_every_address_is_a_host(spark):
    rows = host_role_sessions(traffic_frame(spark, scenario_rows()), DEFAULT_ROLES, None)
    actual = build_host_slices(rows, PORTS).where(F.col("host_ip") == DNS)
    unmapped = {**DNS_IN_W1, "peer_segment_nunique": 1}
    assertDataFrameEqual(actual, host_rows(spark, [unmapped]), rtol=0, atol=1e-12)


def test_peer_slices_hold_sessions_bytes_and_the_outbound_timeline_per_peer_endpoint(spark, role_sessions):
    def w1(host, role, peer, port, segment, sessions, bytes_sum, timeline=()):
        return (host, role, W1, W1_END, peer, port, segment, sessions, bytes_sum, list(timeline))

    # Every W1 session starts at the factory's default 08:09:00; timeline = (start epoch, bytes A sent), sorted.
    t1 = calendar.timegm((W1 + timedelta(minutes=1)).timetuple())
    t2 = calendar.timegm((W2 + timedelta(minutes=1)).timetuple())
    expected = spark.createDataFrame(
        [
            w1(A, "outbound", SRV, 443, "servers", 2, 350, [(t1, 50), (t1, 100)]),  # s2, s1
            w1(A, "outbound", SRV, 0, "servers", 1, 20, [(t1, 10)]),
            w1(A, "outbound", DC, 445, "domain_controllers", 1, 60, [(t1, 60)]),
            w1(A, "outbound", DC, 3389, "domain_controllers", 1, 100, [(t1, 80)]),
            w1(A, "outbound", DNS, 53, "external", 1, 200, [(t1, 70)]),
            # Inbound rows carry no timeline: cadence is measured on the initiator's side.
            w1(SRV, "inbound", A, 443, "workstations", 2, 350),
            w1(SRV, "inbound", A, 0, "workstations", 1, 20),
            w1(DC, "inbound", A, 445, "workstations", 1, 60),
            w1(DC, "inbound", A, 3389, "workstations", 1, 100),
            (A, "outbound", W2, W2_END, SRV, 443, "servers", 1, 0, [(t2, 0)]),
            (SRV, "inbound", W2, W2_END, A, 443, "workstations", 1, 0, []),
        ],
        DELTA_PEER_SLICE_SCHEMA,
    )
    assertDataFrameEqual(build_peer_slices(role_sessions), expected)


def test_build_delta_gives_both_datasets_from_the_spec(spark):
    frames = build_delta(traffic_frame(spark, scenario_rows()), delta_spec(), PORTS)
    assertDataFrameEqual(
        frames.host_slices.filter(F.col("slice_start") == W1),
        host_rows(spark, [A_OUT_W1, SRV_IN_W1, DC_IN_W1]),
        rtol=0,
        atol=1e-12,
    )
    assert frames.peer_slices.schema.fieldNames() == DELTA_PEER_SLICE_SCHEMA.fieldNames()
    assert frames.peer_slices.count() == 11


def test_operators_tune_short_sessions_and_the_rate_bucket(spark):
    spec = delta_spec(
        [
            {"type": "short_session", "params": {"max_duration_s": 2.5}},
            {"type": "max_sessions_per_minute", "params": {"bucket_seconds": 900}},
        ]
    )
    frames = build_delta(traffic_frame(spark, scenario_rows()), spec, PORTS)
    a_w1 = frames.host_slices.filter((F.col("host_ip") == A) & (F.col("slice_start") == W1))
    # s5 (2.0 s) is now short too; all six sessions end in the 08:00-08:15 epoch-aligned bucket.
    assertDataFrameEqual(
        a_w1.select("short_session_cnt", "max_sessions_per_minute"),
        spark.createDataFrame([(3, 6)], "short_session_cnt long, max_sessions_per_minute long"),
    )


def test_options_default_and_reject_unknown_operators_and_bad_params():
    assert DeltaOptions.from_operators([]) == DeltaOptions(short_session_max_s=1.0, rate_bucket_seconds=60)
    assert DeltaOptions.from_operators([Operator(type="short_session")]).short_session_max_s == 1.0
    with pytest.raises(ValueError, match="unknown operator 'entropy_sketch'"):
        DeltaOptions.from_operators([Operator(type="entropy_sketch")])
    with pytest.raises(ValueError, match="'short_session'.*max_duration_s.*positive number.*'fast'"):
        DeltaOptions.from_operators([Operator(type="short_session", params={"max_duration_s": "fast"})])
    with pytest.raises(ValueError, match="'max_sessions_per_minute'.*bucket_seconds.*1..900.*0"):
        DeltaOptions.from_operators([Operator(type="max_sessions_per_minute", params={"bucket_seconds": 0})])
    with pytest.raises(ValueError, match=r"'short_session': unknown param\(s\) \['max_s'\]"):
        DeltaOptions.from_operators([Operator(type="short_session", params={"max_s": 2})])
    with pytest.raises(ValueError, match="'short_session' is given more than once"):
        DeltaOptions.from_operators([Operator(type="short_session"), Operator(type="short_session")])


def test_without_segment_mapping_every_peer_is_unmapped(spark):
    sessions = host_role_sessions(traffic_frame(spark, scenario_rows()), DEFAULT_ROLES, None)
    segments = build_peer_slices(sessions).select("peer_segment").distinct()
    assertDataFrameEqual(segments, spark.createDataFrame([("unmapped",)], "peer_segment string"))


def test_traffic_without_window_start_is_rejected(spark):
    traffic = traffic_frame(spark, [session()]).drop("window_start")
    with pytest.raises(ValueError, match="window_start"):
        host_role_sessions(traffic, DEFAULT_ROLES, MAPPING)


def test_port_sets_validate_keys_and_values():
    good = {"high_risk": [445], "admin": [], "fileshare": [445, 2049], "directory": [53], "db": [5432]}
    assert PortSets.from_json(good).fileshare == frozenset({445, 2049})
    assert PortSets.from_json(good).as_dict() == {**good, "fileshare": [445, 2049]}
    assert PortSets.empty().high_risk == frozenset()
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['adminn'\]"):
        PortSets.from_json({**good, "adminn": [22]})
    with pytest.raises(ValueError, match=r"missing key\(s\) \['db'\]"):
        PortSets.from_json({k: v for k, v in good.items() if k != "db"})
    with pytest.raises(ValueError, match="'admin' holds 70000"):
        PortSets.from_json({**good, "admin": [70000]})
    with pytest.raises(ValueError, match="'db' holds '5432'"):
        PortSets.from_json({**good, "db": ["5432"]})
    with pytest.raises(ValueError, match="'directory' must be a list"):
        PortSets.from_json({**good, "directory": 53})


def test_every_spelling_of_a_documented_action_counts_as_allowed_or_denied(spark):
    actions = ["allow", " Allow ", "deny", "drop", "drop-icmp", "drop ICMP", "reset-both", "reset both",
               "Reset_Client", "reset-server", "continue"]  # fmt: skip
    rows = [session(source_ip=A, destination_ip=DNS, destination_port=53, action=a, session_end_reason="n/a")
            for a in actions]  # fmt: skip
    frames = build_delta(traffic_frame(spark, rows), delta_spec(), PORTS)
    counts = frames.host_slices.select("sessions_cnt", "allow_cnt", "deny_cnt", "rst_cnt")
    # "continue" is no TRAFFIC action: a session, neither allowed nor denied (the reader counts it).
    expected = spark.createDataFrame([(11, 2, 8, 4)], "sessions_cnt long, allow_cnt long, deny_cnt long, rst_cnt long")
    assertDataFrameEqual(counts, expected)

"""CIDR segment assignment: longest prefix wins, IPv6/unmapped -> default, no row multiplication."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.delta import host_role_sessions
from ndr_assets.transforms.segments import assign_segment, bucketed_ranges, in_segment_mapping, segment_ranges
from ndr_resources.specs import DEFAULT_ROLES, SegmentMapping
from tests.transforms.traffic_factory import session, traffic_frame

# 10.0.0.0 = 10 * 2**24; 10.50.0.0 = 10 * 2**24 + 50 * 2**16; 10.255.255.255 = 11 * 2**24 - 1.
TEN_0_0_0 = 167_772_160
TEN_50_0_0 = 171_048_960
TEN_50_0_255 = 171_049_215
TEN_255_255_255 = 184_549_375

NESTED = SegmentMapping.model_validate(
    {
        "segments": [
            {"segment_id": "corp", "cidr": "10.0.0.0/8"},
            {"segment_id": "workstations", "cidr": "10.10.0.0/16"},
            {"segment_id": "domain_controllers", "cidr": "10.50.0.0/24"},
        ],
        "default_segment": "external",
    }
)


def test_nested_blocks_flatten_to_disjoint_ranges_where_the_longest_prefix_wins():
    mapping = SegmentMapping.model_validate(
        {"segments": [{"segment_id": "corp", "cidr": "10.0.0.0/8"}, {"segment_id": "dc", "cidr": "10.50.0.0/24"}]}
    )
    assert segment_ranges(mapping) == [
        (TEN_0_0_0, TEN_50_0_0 - 1, "corp"),
        (TEN_50_0_0, TEN_50_0_255, "dc"),
        (TEN_50_0_255 + 1, TEN_255_255_255, "corp"),
    ]


def test_rule_order_does_not_matter_and_adjacent_blocks_of_one_segment_merge():
    mapping = SegmentMapping.model_validate(
        {
            "segments": [
                {"segment_id": "dc", "cidr": "10.50.0.0/24"},
                {"segment_id": "lab", "cidr": "10.0.0.128/25"},
                {"segment_id": "lab", "cidr": "10.0.0.0/25"},
            ]
        }
    )
    assert segment_ranges(mapping) == [(TEN_0_0_0, TEN_0_0_0 + 255, "lab"), (TEN_50_0_0, TEN_50_0_255, "dc")]


def test_one_cidr_given_to_two_segments_is_rejected():
    mapping = SegmentMapping.model_validate(
        {"segments": [{"segment_id": "a", "cidr": "10.1.0.0/16"}, {"segment_id": "b", "cidr": "10.1.0.0/16"}]}
    )
    with pytest.raises(ValueError, match=r"10\.1\.0\.0/16.*'a'.*'b'"):
        segment_ranges(mapping)


def test_assign_segment_maps_each_address_once(spark):
    ips = spark.createDataFrame(
        [(1, "10.10.3.4"), (2, "10.50.0.7"), (3, "10.50.1.7"), (4, "8.8.8.8"), (5, "2001:db8::1"),
         (6, "not-an-ip"), (7, None), (8, "10.10.3.4")],
        "id int, ip string",
    )
    expected = spark.createDataFrame(
        [
            (1, "10.10.3.4", "workstations"),
            (2, "10.50.0.7", "domain_controllers"),  # inside 10.0.0.0/8 too: /24 wins
            (3, "10.50.1.7", "corp"),
            (4, "8.8.8.8", "external"),
            (5, "2001:db8::1", "external"),  # IPv6 -> default
            (6, "not-an-ip", "external"),
            (7, None, "external"),
            (8, "10.10.3.4", "workstations"),
        ],
        "id int, ip string, segment string",
    )
    assertDataFrameEqual(assign_segment(ips, "ip", NESTED, "segment"), expected)


def test_without_mapping_every_address_is_unmapped_and_without_rules_the_default(spark):
    ips = spark.createDataFrame([("10.10.3.4",), ("8.8.8.8",)], "ip string")
    assertDataFrameEqual(
        assign_segment(ips, "ip", None, "seg"),
        spark.createDataFrame([("10.10.3.4", "unmapped"), ("8.8.8.8", "unmapped")], "ip string, seg string"),
    )
    no_rules = SegmentMapping(default_segment="other")
    assertDataFrameEqual(
        assign_segment(ips, "ip", no_rules, "seg"),
        spark.createDataFrame([("10.10.3.4", "other"), ("8.8.8.8", "other")], "ip string, seg string"),
    )


def test_ranges_are_cut_into_slash16_pieces_for_the_join_key():
    # 10.49.255.0 - 10.50.0.255 crosses the 10.49/16 | 10.50/16 boundary: buckets 10*256+49 and 10*256+50.
    start, end = TEN_50_0_0 - 256, TEN_50_0_255
    assert bucketed_ranges([(start, end, "x")]) == [
        (2609, start, TEN_50_0_0 - 1, "x"),
        (2610, TEN_50_0_0, end, "x"),
    ]
    # 10/8 covers 256 /16 blocks; 10.50/16 holds two pieces (domain_controllers /24, then corp).
    assert len(bucketed_ranges(segment_ranges(NESTED))) == 256 + 1


def test_monitored_network_membership_agrees_with_the_hosts_delta_keeps(spark):
    """``in_segment_mapping`` (a column expression, for counting) keeps exactly the hosts of
    ``host_role_sessions`` (a join): inside a mapped segment, not IPv6 or malformed, and a block
    mapped to the default segment's name is outside the monitored network."""
    mapping = SegmentMapping.model_validate({
        "segments": [*[s.model_dump() for s in NESTED.segments], {"segment_id": "external", "cidr": "10.99.0.0/16"}],
        "default_segment": "external",
    })
    addresses = ["10.10.0.5", "10.50.0.1", "10.200.1.1", "10.99.0.1", "8.8.8.8", "2001:db8::1", "999.1.1.1"]
    traffic = traffic_frame(spark, [session(source_ip=ip, destination_ip="8.8.4.4") for ip in addresses])
    hosts = {r.host_ip for r in host_role_sessions(traffic, DEFAULT_ROLES[:1], mapping).select("host_ip").take(20)}
    flags = traffic.select("source_ip", in_segment_mapping(F.col("source_ip"), mapping).alias("monitored")).take(20)
    assert {r.source_ip for r in flags if r.monitored} == hosts == {"10.10.0.5", "10.50.0.1", "10.200.1.1"}
    assert traffic.select(in_segment_mapping(F.col("source_ip"), None).alias("m")).where("m").count() == len(addresses)

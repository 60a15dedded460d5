"""Network segments: map IPv4 addresses onto segment ids by CIDR (``segment_mapping`` of the specs).

The mapping's CIDR blocks may nest (``10.50.0.0/24`` inside ``10.0.0.0/8``); the most specific
block (longest prefix) wins. Because CIDR blocks either nest or are disjoint, the mapping is first
flattened on the driver into disjoint ``[network_start, network_end]`` number ranges that each carry
the winning segment, so the range join below matches at most one range per address and never
multiplies rows. The ranges (cut into /16 pieces for an equality key, see ``bucketed_ranges``) are
a small broadcast frame; the join stays in the JVM (no UDF).

Addresses outside every block, IPv6 addresses and anything that is not an IPv4 address get
``mapping.default_segment``; without a mapping every address is ``"unmapped"``.
"""

from __future__ import annotations

import ipaddress
import itertools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms.ip import ipv4_to_long
from ndr_resources.specs import SegmentMapping

UNMAPPED_SEGMENT = "unmapped"

_RANGES_SCHEMA = T.StructType(
    [
        T.StructField("__seg_bucket", T.LongType(), False),
        T.StructField("__seg_network_start", T.LongType(), False),
        T.StructField("__seg_network_end", T.LongType(), False),
        T.StructField("__seg_segment_id", T.StringType(), False),
    ]
)
_IP_NUMBER = "__seg_ip_number"
# Join buckets are /16 blocks: every range is cut at /16 boundaries so the join has an equality key.
_BUCKET_BITS = 16


def segment_ranges(mapping: SegmentMapping) -> list[tuple[int, int, str]]:
    """Disjoint, sorted ``(network_start, network_end, segment_id)`` ranges; longest prefix wins.

    Adjacent ranges of the same segment are merged. Two rules naming the same CIDR with different
    segment ids are ambiguous and raise ValueError.
    """
    by_network: dict[ipaddress.IPv4Network, str] = {}
    for rule in mapping.segments:
        network = ipaddress.IPv4Network(rule.cidr)
        known = by_network.get(network)
        if known is not None and known != rule.segment_id:
            raise ValueError(
                f"segment_mapping: CIDR {network} is given to both '{known}' and '{rule.segment_id}'"
            )
        by_network[network] = rule.segment_id
    networks = [
        (int(net.network_address), int(net.broadcast_address), net.prefixlen, segment)
        for net, segment in by_network.items()
    ]
    # Elementary intervals between consecutive block boundaries: inside one, the set of covering
    # blocks is constant, so the most specific of them decides the whole interval.
    bounds = sorted({start for start, _, _, _ in networks} | {end + 1 for _, end, _, _ in networks})
    ranges: list[tuple[int, int, str]] = []
    for low, next_low in itertools.pairwise(bounds):
        covering = [(prefix, segment) for start, end, prefix, segment in networks if start <= low <= end]
        if not covering:
            continue
        segment = max(covering)[1]
        if ranges and ranges[-1][2] == segment and ranges[-1][1] == low - 1:
            ranges[-1] = (ranges[-1][0], next_low - 1, segment)
        else:
            ranges.append((low, next_low - 1, segment))
    return ranges


def bucketed_ranges(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, int, str]]:
    """``(bucket, start, end, segment_id)``: each range cut into pieces that stay inside one /16 block.

    The bucket (address >> 16) turns the range join into a broadcast HASH join on the bucket plus a
    range condition, so the cost per row does not grow with the number of rules; a pure range
    condition is a nested-loop join that tests every range for every row (on 4M rows and 200 rules:
    7.0 s against 8.6 s, of which about 5 s is ``ipv4_to_long`` itself). A /8 rule gives 256 pieces,
    a catch-all /0 65,536.
    """
    pieces = []
    for start, end, segment in ranges:
        for bucket in range(start >> _BUCKET_BITS, (end >> _BUCKET_BITS) + 1):
            low, high = bucket << _BUCKET_BITS, ((bucket + 1) << _BUCKET_BITS) - 1
            pieces.append((bucket, max(start, low), min(end, high), segment))
    return pieces


def assign_segment(df: DataFrame, ip_col: str, mapping: SegmentMapping | None, out_col: str) -> DataFrame:
    """``df`` plus ``out_col``: the segment id of the address in ``ip_col`` (see the module doc)."""
    if mapping is None:
        return df.withColumn(out_col, F.lit(UNMAPPED_SEGMENT))
    ranges = segment_ranges(mapping)
    if not ranges:
        return df.withColumn(out_col, F.lit(mapping.default_segment))
    ranges_df = df.sparkSession.createDataFrame(bucketed_ranges(ranges), _RANGES_SCHEMA)
    with_number = df.withColumn(_IP_NUMBER, ipv4_to_long(F.col(ip_col)))
    ip_number = F.col(_IP_NUMBER)
    in_range = (
        (F.shiftright(ip_number, _BUCKET_BITS) == F.col("__seg_bucket"))
        & (ip_number >= F.col("__seg_network_start"))
        & (ip_number <= F.col("__seg_network_end"))
    )
    # A null number (IPv6, malformed) matches no range and falls through to the default.
    joined = with_number.join(F.broadcast(ranges_df), in_range, "left")
    return joined.withColumn(
        out_col, F.coalesce(F.col("__seg_segment_id"), F.lit(mapping.default_segment))
    ).drop(_IP_NUMBER, *_RANGES_SCHEMA.fieldNames())


def in_segment_mapping(ip: Column, mapping: SegmentMapping | None) -> Column:
    """True when ``ip`` is a host of the monitored network: inside a mapped segment other than the
    default (the addresses ``delta.host_role_sessions`` keeps as hosts); every address without a mapping.

    A column expression over the flattened ranges (no join), for counting beside other aggregates.
    """
    if mapping is None:
        return F.lit(True)
    number = ipv4_to_long(ip)
    inside = F.lit(False)
    for start, end, segment in segment_ranges(mapping):
        if segment != mapping.default_segment:
            inside = inside | number.between(start, end)
    return F.coalesce(inside, F.lit(False))

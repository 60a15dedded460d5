"""Network segments: map IPv4 addresses onto segment ids by CIDR (``segment_mapping`` of the specs).

The mapping's CIDR blocks may nest (``10.50.0.0/24`` inside ``10.0.0.0/8``); the most specific
block (longest prefix) wins. Because CIDR blocks either nest or are disjoint, the mapping is first
flattened on the driver into disjoint ``[network_start, network_end]`` number ranges that each carry
the winning segment, so the range join below matches at most one range per address and never
multiplies rows. The ranges are a tiny broadcast frame; the join stays in the JVM (no UDF).

Addresses outside every block, IPv6 addresses and anything that is not an IPv4 address get
``mapping.default_segment``; without a mapping every address is ``"unmapped"``.
"""

from __future__ import annotations

import ipaddress

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms.ip import ipv4_to_long
from ndr_resources.specs import SegmentMapping

UNMAPPED_SEGMENT = "unmapped"

_RANGES_SCHEMA = T.StructType(
    [
        T.StructField("__seg_network_start", T.LongType(), False),
        T.StructField("__seg_network_end", T.LongType(), False),
        T.StructField("__seg_segment_id", T.StringType(), False),
    ]
)
_IP_NUMBER = "__seg_ip_number"


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
    for low, next_low in zip(bounds, bounds[1:]):
        covering = [(prefix, segment) for start, end, prefix, segment in networks if start <= low <= end]
        if not covering:
            continue
        segment = max(covering)[1]
        if ranges and ranges[-1][2] == segment and ranges[-1][1] == low - 1:
            ranges[-1] = (ranges[-1][0], next_low - 1, segment)
        else:
            ranges.append((low, next_low - 1, segment))
    return ranges


def assign_segment(df: DataFrame, ip_col: str, mapping: SegmentMapping | None, out_col: str) -> DataFrame:
    """``df`` plus ``out_col``: the segment id of the address in ``ip_col`` (see the module doc)."""
    if mapping is None:
        return df.withColumn(out_col, F.lit(UNMAPPED_SEGMENT))
    ranges = segment_ranges(mapping)
    if not ranges:
        return df.withColumn(out_col, F.lit(mapping.default_segment))
    ranges_df = df.sparkSession.createDataFrame(ranges, _RANGES_SCHEMA)
    with_number = df.withColumn(_IP_NUMBER, ipv4_to_long(F.col(ip_col)))
    in_range = (F.col(_IP_NUMBER) >= F.col("__seg_network_start")) & (
        F.col(_IP_NUMBER) <= F.col("__seg_network_end")
    )
    # A null number (IPv6, malformed) matches no range and falls through to the default.
    joined = with_number.join(F.broadcast(ranges_df), in_range, "left")
    return joined.withColumn(
        out_col, F.coalesce(F.col("__seg_segment_id"), F.lit(mapping.default_segment))
    ).drop(_IP_NUMBER, *_RANGES_SCHEMA.fieldNames())

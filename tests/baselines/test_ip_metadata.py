"""Cold-start derivation in ip_metadata: full history, non-persistent (VDI) names, the latest inventory snapshot."""

from __future__ import annotations

from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.baselines import ip_metadata
from ndr_assets.transforms.schemas import FG_B_IP_METADATA_SCHEMA
from tests.baselines.frames import DENY, SESSIONS

WH = "work_hours"
INVENTORY_DDL = "ip string, machine_name string, snapshot_month string"


def host_support(spark):
    """The host table's key and support columns (what ip_metadata reads from it)."""
    return spark.createDataFrame(
        [
            ("10.10.0.1", WH, "workstations", 5, 4),  # min 4 >= 3: full history, persistent name
            ("10.10.0.2", WH, "workstations", 2, 9),  # min 2 < 3: short history only
            ("10.20.0.1", WH, "vdi", 10, 10),  # full history, VDI name in lower case
            ("10.20.0.2", WH, "vdi", 1, 1),  # short history and VDI name
            ("10.30.0.9", WH, "servers", 3, 3),  # support == support_min is full; not in the inventory
        ],
        f"host_ip string, window_label string, segment_id string, {SESSIONS}_support_count long, "
        f"{DENY}_support_count long",
    )


def inventory(spark):
    return spark.createDataFrame(
        [
            ("10.10.0.1", "VDI-OLD-1", "2025-12"),  # re-imaged as a workstation: the January name wins
            ("10.10.0.1", "WS-0001", "2026-01"),
            ("10.10.0.2", "WS-0002", "2026-01"),
            ("10.20.0.1", "WS-OLD-3", "2025-11"),
            ("10.20.0.1", "vdi-pool-7", "2026-01"),  # prefix match ignores case
            ("10.20.0.2", "Vdi-Pool-8", "2025-12"),  # only snapshot: it is the latest
        ],
        INVENTORY_DDL,
    )


def test_cold_start_from_history_vdi_prefix_both_and_neither(spark):
    result = ip_metadata(
        host_support(spark), inventory(spark), required_metrics=[SESSIONS, DENY], support_min=3,
        non_persistent_prefixes=["VDI-"],
    )
    expected = spark.createDataFrame(
        [
            # host, label, segment, name, support (min of required), full, non-persistent, cold start
            ("10.10.0.1", WH, "workstations", "WS-0001", 4, 1, 0, 0),  # neither: baselines of its own
            ("10.10.0.2", WH, "workstations", "WS-0002", 2, 0, 0, 1),  # short history only
            ("10.20.0.1", WH, "vdi", "vdi-pool-7", 10, 1, 1, 1),  # VDI prefix only
            ("10.20.0.2", WH, "vdi", "Vdi-Pool-8", 1, 0, 1, 1),  # both
            ("10.30.0.9", WH, "servers", None, 3, 1, 0, 0),  # unknown to the inventory: name null, persistent
        ],
        FG_B_IP_METADATA_SCHEMA,
    )
    assertDataFrameEqual(result, expected)


def test_required_metrics_choose_the_support_and_no_inventory_means_no_names(spark):
    result = ip_metadata(
        host_support(spark), None, required_metrics=[DENY], support_min=3, non_persistent_prefixes=["VDI-"]
    )
    expected = spark.createDataFrame(
        [
            ("10.10.0.1", WH, "workstations", None, 4, 1, 0, 0),
            ("10.10.0.2", WH, "workstations", None, 9, 1, 0, 0),  # deny support 9 alone: full history
            ("10.20.0.1", WH, "vdi", None, 10, 1, 0, 0),
            ("10.20.0.2", WH, "vdi", None, 1, 0, 0, 1),
            ("10.30.0.9", WH, "servers", None, 3, 1, 0, 0),
        ],
        FG_B_IP_METADATA_SCHEMA,
    )
    assertDataFrameEqual(result, expected)


def test_several_prefixes_and_no_prefixes(spark):
    names = spark.createDataFrame(
        [("10.10.0.1", "kiosk-12", "2026-01"), ("10.20.0.1", "VDI-3", "2026-01")], INVENTORY_DDL
    )
    support = host_support(spark).where("host_ip in ('10.10.0.1', '10.20.0.1')")
    flags = ip_metadata(
        support, names, required_metrics=[SESSIONS], support_min=3, non_persistent_prefixes=["vdi-", "KIOSK-"]
    ).select("host_ip", "is_non_persistent_machine", "is_cold_start")
    assertDataFrameEqual(flags, [("10.10.0.1", 1, 1), ("10.20.0.1", 1, 1)])
    none = ip_metadata(support, names, required_metrics=[SESSIONS], support_min=3, non_persistent_prefixes=[])
    assertDataFrameEqual(
        none.select("host_ip", "is_non_persistent_machine", "is_cold_start"),
        [("10.10.0.1", 0, 0), ("10.20.0.1", 0, 0)],
    )


def test_host_support_is_the_least_required_support_count_from_the_value_arrays(spark):
    from ndr_assets.transforms.baselines import host_support, host_value_arrays
    from tests.baselines.frames import fg_a_frame, ts

    nan = float("nan")  # not a value: adds no support
    rows = fg_a_frame(
        spark,
        [
            ("10.10.0.1", WH, ts(27, 10, 8), 1, 0.5),
            ("10.10.0.1", WH, ts(27, 10, 23), 2, nan),
            ("10.10.0.1", WH, ts(27, 10, 38), 3, 0.7),
            ("10.10.0.2", WH, ts(27, 10, 8), 4, 0.1),
        ],
    )
    arrays = host_value_arrays(rows, [SESSIONS, DENY])
    segments = spark.createDataFrame([("10.10.0.1", "workstations"), ("10.10.0.2", "workstations")],
                                     "host_ip string, segment_id string")
    schema = "host_ip string, window_label string, segment_id string, support_count long"
    # Sessions 3 and 1 values, deny 2 and 1: the least over both, or sessions alone.
    assertDataFrameEqual(
        host_support(arrays, segments, [SESSIONS, DENY], [SESSIONS, DENY]),
        spark.createDataFrame([("10.10.0.1", WH, "workstations", 2), ("10.10.0.2", WH, "workstations", 1)], schema),
    )
    assertDataFrameEqual(
        host_support(arrays, segments, [SESSIONS, DENY], [SESSIONS]),
        spark.createDataFrame([("10.10.0.1", WH, "workstations", 3), ("10.10.0.2", WH, "workstations", 1)], schema),
    )

"""Redelivered sessions: identities per window and the redelivery flag, on hand-built deliveries."""

from __future__ import annotations

from datetime import timedelta

from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.sessions import SESSION_KEY_SCHEMA, flag_redelivered_sessions, session_keys
from tests.transforms.traffic_factory import W1, session, traffic_frame

FW1, FW2 = "007200001056", "007200001057"
START = W1 - timedelta(minutes=3)
HOUR = timedelta(hours=1)
MB_A, MB_B = "20260105T081500Z", "20260105T082000Z"  # two mini-batches of window W1
_PICKED = "device_serial string, session_id long, window_start timestamp, mini_batch_id string, redelivered boolean"


def delivery(session_id, window_start=W1, mini_batch_id=MB_A, device_serial=FW1, event_start=START, **kw):
    return session(device_serial=device_serial, session_id=session_id, event_start=event_start,
                   window_start=window_start, mini_batch_id=mini_batch_id, **kw)  # fmt: skip


def keys(spark, rows):
    return spark.createDataFrame(rows, SESSION_KEY_SCHEMA)


def test_redeliveries_within_the_window_and_the_trailing_day_are_flagged_the_first_is_kept(spark):
    rows = [
        delivery(1, mini_batch_id=MB_B),  # the later mini-batch of the same window: a redelivery
        delivery(1),
        delivery(2),
        delivery(2, window_start=W1 + HOUR, mini_batch_id="20260105T091500Z"),  # 1 h later: redelivery
        delivery(3),
        delivery(3, window_start=W1 + 25 * HOUR, mini_batch_id="20260106T091500Z"),  # 25 h later: kept
        delivery(4),
        delivery(4, window_start=W1 + 24 * HOUR, mini_batch_id="20260106T081500Z"),  # 96 windows later: kept
        delivery(5),
        delivery(5, window_start=W1 + 24 * HOUR - timedelta(minutes=15), mini_batch_id="20260106T080000Z"),  # 95
        delivery(6),
        delivery(6),  # a second copy in the same batch and file
        delivery(7, device_serial=FW2),  # the same session id on another firewall: another session
        delivery(7),
        delivery(8, event_start=START + HOUR),  # a reused session id (another start): another session
        delivery(8),
    ]
    flagged = flag_redelivered_sessions(traffic_frame(spark, rows), keys(spark, []))

    assert flagged.columns == [*traffic_frame(spark, rows).columns, "redelivered"]
    assert not flagged.schema["redelivered"].nullable
    expected = spark.createDataFrame(
        [
            (FW1, 1, W1, MB_A, False),
            (FW1, 1, W1, MB_B, True),
            (FW1, 2, W1, MB_A, False),
            (FW1, 2, W1 + HOUR, "20260105T091500Z", True),
            (FW1, 3, W1, MB_A, False),
            (FW1, 3, W1 + 25 * HOUR, "20260106T091500Z", False),
            (FW1, 4, W1, MB_A, False),
            (FW1, 4, W1 + 24 * HOUR, "20260106T081500Z", False),
            (FW1, 5, W1, MB_A, False),
            (FW1, 5, W1 + 24 * HOUR - timedelta(minutes=15), "20260106T080000Z", True),
            (FW1, 6, W1, MB_A, False),
            (FW1, 6, W1, MB_A, True),
            (FW2, 7, W1, MB_A, False),
            (FW1, 7, W1, MB_A, False),
            (FW1, 8, W1, MB_A, False),
            (FW1, 8, W1, MB_A, False),
        ],
        _PICKED,
    )
    assertDataFrameEqual(flagged.select(*[f.name for f in expected.schema]), expected)


def test_earlier_keys_of_published_windows_flag_a_delivery_within_the_trailing_day(spark):
    rows = [delivery(1), delivery(2), delivery(3, device_serial=None), delivery(4)]
    earlier = keys(
        spark,
        [
            (FW1, 1, START, W1 - timedelta(minutes=30)),  # 2 windows before: a redelivery
            (FW1, 2, START, W1 - 24 * HOUR),  # a day before: kept
            ("", 3, START, W1 - timedelta(minutes=15)),  # a single-firewall source (no serial)
            (FW1, 4, START + HOUR, W1 - timedelta(minutes=15)),  # another start: another session
        ],
    )

    flagged = flag_redelivered_sessions(traffic_frame(spark, rows), earlier)

    expected = spark.createDataFrame(
        [(FW1, 1, W1, MB_A, True), (FW1, 2, W1, MB_A, False), (None, 3, W1, MB_A, True), (FW1, 4, W1, MB_A, False)],
        _PICKED,
    )
    assertDataFrameEqual(flagged.select(*[f.name for f in expected.schema]), expected)


def test_a_null_serial_compares_as_empty_and_rows_without_identity_are_never_flagged(spark):
    rows = [
        delivery(1, device_serial=None),
        delivery(1, device_serial=None, mini_batch_id=MB_B),
        delivery(None),
        delivery(None),
        delivery(2, event_start=None, event_end=None),
        delivery(2, event_start=None, event_end=None),
    ]
    flagged = flag_redelivered_sessions(traffic_frame(spark, rows), keys(spark, []))

    expected = spark.createDataFrame(
        [
            (None, 1, W1, MB_A, False),
            (None, 1, W1, MB_B, True),
            (FW1, None, W1, MB_A, False),
            (FW1, None, W1, MB_A, False),
            (FW1, 2, W1, MB_A, False),
            (FW1, 2, W1, MB_A, False),
        ],
        _PICKED,
    )
    assertDataFrameEqual(flagged.select(*[f.name for f in expected.schema]), expected)


def test_session_keys_are_the_distinct_identities_per_window(spark):
    rows = [
        delivery(1),
        delivery(1, mini_batch_id=MB_B),
        delivery(1, window_start=W1 + HOUR),
        delivery(2, device_serial=None),
        delivery(None),
        delivery(3, event_start=None, event_end=None),
    ]

    actual = session_keys(traffic_frame(spark, rows))

    expected = keys(spark, [(FW1, 1, START, W1), (FW1, 1, START, W1 + HOUR), ("", 2, START, W1)])
    assertDataFrameEqual(actual, expected)
    assert [(f.name, f.dataType) for f in actual.schema] == [(f.name, f.dataType) for f in SESSION_KEY_SCHEMA]


def test_keys_of_the_windows_being_recomputed_do_not_flag_their_own_rows(spark):
    earlier = keys(spark, [(FW1, 1, START, W1)])  # the key this very window published before

    flagged = flag_redelivered_sessions(traffic_frame(spark, [delivery(1)]), earlier)

    assertDataFrameEqual(flagged.select("redelivered"), spark.createDataFrame([(False,)], "redelivered boolean"))

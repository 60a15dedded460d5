"""DQ rules of the delta builder: one reason per row, counts, switches, quarantine records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.dq import REJECT_SCHEMA, apply_dq, dq_counts, rejection_rate, to_quarantine
from ndr_assets.transforms.schemas import QUARANTINE_SCHEMA
from ndr_resources.specs import DeltaDQ
from tests.transforms.traffic_factory import W1, session, traffic_frame

START = W1 + timedelta(minutes=1)


def _rows():
    # source_file names the case, so expected rejects can say which row is which.
    return [
        session(source_file="clean-ipv4"),
        session(source_file="clean-ipv6", source_ip="fe80::1", destination_ip="2001:db8::10"),
        session(source_file="no-end", event_end=None),
        session(source_file="bad-ip", source_ip="10.10.0.999"),
        session(source_file="null-port", destination_port=None),
        session(source_file="neg-bytes", destination_bytes=-1),
        session(source_file="neg-duration", duration_s=-2.0),
        session(source_file="end-before-start", event_end=START - timedelta(seconds=5)),
        # Fails malformed_ip and negative_bytes: the first rule in order wins.
        session(source_file="bad-ip-and-neg-bytes", destination_ip="not-an-ip", source_bytes=-7),
    ]


@pytest.fixture()
def traffic(spark):
    return traffic_frame(spark, _rows()).drop("window_start")


def _reasons(spark, pairs):
    return spark.createDataFrame(pairs, "reject_reason string, source_file string")


def test_every_rule_rejects_its_row_with_one_reason(spark, traffic):
    result = apply_dq(traffic, DeltaDQ())

    assertDataFrameEqual(
        result.rejects.select("reject_reason", "source_file"),
        _reasons(
            spark,
            [
                ("missing_timestamp", "no-end"),
                ("malformed_ip", "bad-ip"),
                ("null_bytes_or_port", "null-port"),
                ("negative_bytes", "neg-bytes"),
                ("negative_duration", "neg-duration"),
                ("negative_duration", "end-before-start"),
                ("malformed_ip", "bad-ip-and-neg-bytes"),
            ],
        ),
    )
    assertDataFrameEqual(result.clean, traffic_frame(spark, _rows()[:2]).drop("window_start"))
    assert [(f.name, f.dataType) for f in result.rejects.schema] == [(f.name, f.dataType) for f in REJECT_SCHEMA]


def test_counts_are_one_per_rule_and_zero_when_unused(spark, traffic):
    counts = apply_dq(traffic, DeltaDQ()).counts()

    assert counts == {
        "rows_in": 9,
        "rows_clean": 2,
        "rows_rejected": 7,
        "missing_timestamp": 1,
        "malformed_ip": 2,
        "null_bytes_or_port": 1,
        "negative_bytes": 1,
        "negative_duration": 2,
    }
    assert rejection_rate(counts) == pytest.approx(7 / 9)

    clean_only = apply_dq(traffic.filter(F.col("source_file").startswith("clean")), DeltaDQ()).counts()
    assert clean_only == {
        "rows_in": 2,
        "rows_clean": 2,
        "rows_rejected": 0,
        "missing_timestamp": 0,
        "malformed_ip": 0,
        "null_bytes_or_port": 0,
        "negative_bytes": 0,
        "negative_duration": 0,
    }


def test_rules_switched_off_keep_their_rows(spark, traffic):
    all_off = DeltaDQ(
        drop_malformed_ip=False, duration_non_negative=False, bytes_non_negative=False, filter_null_bytes_ports=False
    )
    result = apply_dq(traffic, all_off)

    # The structural timestamp rule stays on.
    assertDataFrameEqual(
        result.rejects.select("reject_reason", "source_file"), _reasons(spark, [("missing_timestamp", "no-end")])
    )
    assert result.clean.count() == 8

    # Without the IP rule, the row that failed two rules falls to the next one.
    no_ip_rule = apply_dq(traffic, DeltaDQ(drop_malformed_ip=False))
    assertDataFrameEqual(
        no_ip_rule.rejects.filter(F.col("source_file").startswith("bad-ip")).select("reject_reason", "source_file"),
        _reasons(spark, [("negative_bytes", "bad-ip-and-neg-bytes")]),
    )
    assert dq_counts(no_ip_rule.flagged)["malformed_ip"] == 0


def test_reject_keeps_the_whole_row_as_json(spark):
    row = session(source_file="no-end", event_end=None, application=None)
    rejects = apply_dq(traffic_frame(spark, [row]).drop("window_start"), DeltaDQ()).rejects

    # to_json leaves null fields out; timestamps in ISO form, UTC.
    expected_json = (
        b'{"source_ip":"10.10.0.1","destination_ip":"10.30.0.5","source_port":50000,"destination_port":443,'
        b'"protocol":"tcp","action":"allow","source_bytes":100,"destination_bytes":200,"packets":4,'
        b'"event_start":"2026-01-05T08:09:00.000Z","duration_s":30.0,"rule":"allow-all",'
        b'"source_zone":"trust","destination_zone":"trust","session_end_reason":"tcp-fin","log_type":"TRAFFIC",'
        b'"log_subtype":"end","mini_batch_id":"20260105T081000Z","source_file":"no-end"}'
    )  # raw_record is binary: the JSON text's UTF-8 bytes
    expected = spark.createDataFrame(
        [("missing_timestamp", expected_json, "no-end", "20260105T081000Z")], REJECT_SCHEMA
    )
    assertDataFrameEqual(rejects, expected)


def test_rejection_rate_of_empty_input_is_zero():
    assert rejection_rate({"rows_in": 0, "rows_clean": 0}) == 0.0


def test_to_quarantine_adds_the_window_from_a_mapping_or_a_single_value(spark):
    rejects = spark.createDataFrame(
        [("malformed_ip", b"{}", "a.json.gz", "20260105T081000Z"), ("short_line", b"x", "b.log", "20260105T082500Z")],
        REJECT_SCHEMA,
    )
    w1 = datetime(2026, 1, 5, 8, 8, tzinfo=UTC)
    w2 = datetime(2026, 1, 5, 8, 23, tzinfo=UTC)

    by_batch = to_quarantine(rejects, {"20260105T081000Z": w1, "20260105T082500Z": w2})
    expected = spark.createDataFrame(
        [
            ("malformed_ip", b"{}", "a.json.gz", "20260105T081000Z", w1),
            ("short_line", b"x", "b.log", "20260105T082500Z", w2),
        ],
        QUARANTINE_SCHEMA,
    )
    assertDataFrameEqual(by_batch, expected)
    assert by_batch.schema.names == QUARANTINE_SCHEMA.names

    single = to_quarantine(rejects, w1)
    assertDataFrameEqual(single.select("window_start").distinct(), spark.createDataFrame([(w1,)], "window_start timestamp"))

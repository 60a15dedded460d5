"""Traffic readers: hand-written raw files in each format -> canonical traffic, rejects, counters."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.dq import REJECT_SCHEMA
from ndr_assets.transforms.panos_csv import csv_field_count, strip_syslog_header
from ndr_assets.transforms.readers import (
    PANOS_FIELD_MAPPING,
    find_unreadable_file,
    parse_timestamp,
    read_traffic,
    select_traffic_files,
)
from ndr_resources.errors import InputDataError
from ndr_resources.specs import DeltaInput
from tests.transforms.traffic_factory import session, traffic_frame

MB1 = "20260105T082455Z"
MB2 = "20260105T083010Z-fw02"

# One PAN-OS TRAFFIC session as the generator writes it (JSON lines / Parquet).
RAW = {
    "receive_time": "2026/01/05 08:24:55",
    "serial": "012801000001",
    "type": "TRAFFIC",
    "subtype": "end",
    "time_generated": "2026/01/05 08:24:54",
    "src": "10.10.0.5",
    "dst": "10.30.0.7",
    "rule": "allow-web",
    "app": "ssl",
    "from": "trust",
    "to": "servers",
    "sessionid": 4711,
    "sport": 50123,
    "dport": 443,
    "proto": "tcp",
    "action": "allow",
    "bytes": 1500,
    "bytes_sent": 500,
    "bytes_received": 1000,
    "packets": 12,
    "start": "2026/01/05 08:24:30",
    "elapsed": 24,
    "pkts_sent": 5,
    "pkts_received": 7,
    "session_end_reason": "tcp-fin",
}
# The same session in canonical form (hand-mapped from RAW).
CANONICAL = {
    "source_ip": "10.10.0.5",
    "destination_ip": "10.30.0.7",
    "source_port": 50123,
    "destination_port": 443,
    "protocol": "tcp",
    "action": "allow",
    "source_bytes": 500,
    "destination_bytes": 1000,
    "packets": 12,
    "event_start": datetime(2026, 1, 5, 8, 24, 30),
    "event_end": datetime(2026, 1, 5, 8, 24, 54),
    "duration_s": 24.0,
    "application": "ssl",
    "rule": "allow-web",
    "source_zone": "trust",
    "destination_zone": "servers",
    "session_end_reason": "tcp-fin",
    "log_type": "TRAFFIC",
    "log_subtype": "end",
    "device_serial": "012801000001",
    "session_id": 4711,
}
NULL_CANONICAL = dict.fromkeys(CANONICAL)
PANOS = DeltaInput(s3_prefix="s3://raw/paloalto/org1/org2/", format="jsonl", field_mapping=PANOS_FIELD_MAPPING)

# A PAN-OS syslog TRAFFIC line, 53 fields; the rule name is quoted because it contains a comma.
CSV_LINE = (
    "1,2026/01/05 08:24:55,012801000001,TRAFFIC,end,2049,2026/01/05 08:24:54,10.10.0.5,10.30.0.7,0.0.0.0,"
    '0.0.0.0,"allow-web, servers",,,ssl,vsys1,trust,servers,ethernet1/1,ethernet1/2,default,,4711,1,50123,443,'
    "0,0,0x19,tcp,allow,1500,500,1000,12,2026/01/05 08:24:30,24,any,,7046,0x0,10.0.0.0-10.255.255.255,"
    "10.0.0.0-10.255.255.255,,5,7,tcp-fin,0,0,0,0,,fw01"
)
SYSLOG_HEADER = "<14>Jan  5 08:24:55 fw01 "


def _expected(spark, rows):
    """TRAFFIC_SCHEMA frame from canonical dicts (each carrying mini_batch_id and source_file)."""
    return traffic_frame(spark, [session(**row) for row in rows]).drop("window_start")


def _rejects(spark, rows):
    return spark.createDataFrame(rows, REJECT_SCHEMA)


def _batch_file(root: Path, mini_batch_id: str, name: str) -> Path:
    path = root / "raw" / "paloalto" / "org1" / "org2" / mini_batch_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_json_lines(path: Path, lines: list[str]) -> str:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


def _json(**overrides) -> str:
    return json.dumps({**RAW, **overrides})


# ---------------------------------------------------------------- JSON lines


def test_gzip_and_plain_json_lines_from_two_mini_batches(spark, tmp_path):
    gz = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json(), _json(proto="UDP", action="Deny")])
    plain = _write_json_lines(_batch_file(tmp_path, MB2, "part-00000.jsonl"), [_json(sport="50124")])

    read = read_traffic(spark, [gz, plain], PANOS)

    assertDataFrameEqual(
        read.traffic,
        _expected(
            spark,
            [
                {**CANONICAL, "mini_batch_id": MB1, "source_file": gz},
                {**CANONICAL, "protocol": "udp", "action": "deny", "mini_batch_id": MB1, "source_file": gz},
                {**CANONICAL, "source_port": 50124, "mini_batch_id": MB2, "source_file": plain},
            ],
        ),
    )
    assert read.rejects.count() == 0
    assert read.counters() == {
        "rows_read": 3,
        "traffic_rows": 3,
        "non_traffic_lines": 0,
        "unparseable_json": 0,
        "short_line": 0,
        "garbled_line": 0,
        "unparseable_lines": 0,
    }


def test_malformed_json_line_and_garbled_value_are_quarantined(spark, tmp_path):
    path = _write_json_lines(
        _batch_file(tmp_path, MB1, "part-00000.json.gz"),
        [_json(), "{broken", json.dumps({"src": "10.10.0.9", "dport": "https", "type": "TRAFFIC"}), _json(type="THREAT")],
    )

    read = read_traffic(spark, [path], PANOS.model_copy(update={"format": "json"}))

    assertDataFrameEqual(read.traffic, _expected(spark, [{**CANONICAL, "mini_batch_id": MB1, "source_file": path}]))
    # A garbled record keeps the source columns the reader read, as JSON text (nulls left out).
    assertDataFrameEqual(
        read.rejects,
        _rejects(
            spark,
            [
                ("unparseable_json", "{broken", path, MB1),
                ("garbled_line", '{"dport":"https","src":"10.10.0.9","type":"TRAFFIC"}', path, MB1),
            ],
        ),
    )
    counters = read.counters()
    assert counters["rows_read"] == 4
    assert counters["traffic_rows"] == 1
    assert counters["non_traffic_lines"] == 1
    assert counters["unparseable_json"] == 1
    assert counters["garbled_line"] == 1
    assert counters["unparseable_lines"] == 2


def test_field_mapping_with_renamed_columns_and_same_named_fallback(spark, tmp_path):
    record = {
        "client": "10.10.0.5",
        "server": "10.30.0.7",
        "server_port": "443",
        "first_seen": "2026-01-05T08:24:30Z",
        "last_seen": 1767601494,  # epoch seconds of 2026-01-05 08:24:54 UTC
        "protocol": "TCP",  # no mapping entry: read from the same-named column
        "source_bytes": 500,
    }
    path = _write_json_lines(_batch_file(tmp_path, MB1, "flows.json"), [json.dumps(record)])
    spec = DeltaInput(
        s3_prefix="s3://raw/other/",
        format="json",
        field_mapping={
            "source_ip": "client",
            "destination_ip": "server",
            "destination_port": "server_port",
            "event_start": "first_seen",
            "event_end": "last_seen",
        },
    )

    read = read_traffic(spark, [path], spec)

    expected = {
        **NULL_CANONICAL,
        "source_ip": "10.10.0.5",
        "destination_ip": "10.30.0.7",
        "destination_port": 443,
        "protocol": "tcp",
        "source_bytes": 500,
        "event_start": datetime(2026, 1, 5, 8, 24, 30),
        "event_end": datetime(2026, 1, 5, 8, 24, 54),
        "duration_s": 24.0,  # derived from the two timestamps
        "mini_batch_id": MB1,
        "source_file": path,
    }
    assertDataFrameEqual(read.traffic, _expected(spark, [expected]))


def test_schema_projection_keeps_projected_and_required_fields_only(spark, tmp_path):
    path = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json()])
    spec = PANOS.model_copy(update={"schema_projection": ["protocol", "source_bytes"]})

    read = read_traffic(spark, [path], spec)

    kept = ("source_ip", "destination_ip", "destination_port", "event_start", "event_end", "protocol", "source_bytes")
    expected = {**NULL_CANONICAL, **{k: CANONICAL[k] for k in kept}, "mini_batch_id": MB1, "source_file": path}
    assertDataFrameEqual(read.traffic, _expected(spark, [expected]))

    with pytest.raises(ValueError, match="unknown canonical field.*'bytes'"):
        read_traffic(spark, [path], PANOS.model_copy(update={"schema_projection": ["bytes"]}))


def test_missing_timestamp_or_duration_is_derived_from_the_other_two(spark, tmp_path):
    path = _write_json_lines(
        _batch_file(tmp_path, MB1, "part-00000.json.gz"),
        [_json(start=""), _json(time_generated=None), _json(elapsed=None, sport=1)],
    )

    read = read_traffic(spark, [path], PANOS)

    base = {**CANONICAL, "mini_batch_id": MB1, "source_file": path}
    assertDataFrameEqual(read.traffic, _expected(spark, [base, base, {**base, "source_port": 1}]))


def test_timestamp_formats(spark):
    texts = spark.createDataFrame(
        [
            ("panos", "2026/01/05 08:24:54"),
            ("iso_z", "2026-01-05T08:24:54Z"),
            ("iso_offset", "2026-01-05T09:24:54.5+01:00"),
            ("iso_space", "2026-01-05 08:24:54"),
            ("epoch", "1767601494"),
            ("epoch_fraction", " 1767601494.25 "),
            ("garbage", "yesterday"),
            ("empty", None),
        ],
        "case string, text string",
    )

    parsed = texts.select("case", parse_timestamp(F.col("text")).alias("ts"))

    t = datetime(2026, 1, 5, 8, 24, 54)
    expected = spark.createDataFrame(
        [
            ("panos", t),
            ("iso_z", t),
            ("iso_offset", t.replace(microsecond=500000)),
            ("iso_space", t),
            ("epoch", t),
            ("epoch_fraction", t.replace(microsecond=250000)),
            ("garbage", None),
            ("empty", None),
        ],
        "case string, ts timestamp",
    )
    assertDataFrameEqual(parsed, expected)


# ---------------------------------------------------------------- Parquet


def test_parquet_with_native_types(spark, tmp_path):
    path = _batch_file(tmp_path, MB1, "part-00000.parquet")
    table = pa.table(
        {
            **{k: [v] for k, v in RAW.items() if k != "time_generated"},
            # A real timestamp column passes through; integer columns are cast to the canonical types.
            "time_generated": pa.array([datetime(2026, 1, 5, 8, 24, 54)], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)

    read = read_traffic(spark, [str(path)], PANOS.model_copy(update={"format": "parquet"}))

    assertDataFrameEqual(read.traffic, _expected(spark, [{**CANONICAL, "mini_batch_id": MB1, "source_file": str(path)}]))
    assert read.counters()["traffic_rows"] == 1


def test_parquet_missing_mapped_column_names_file_and_column(spark, tmp_path):
    path = _batch_file(tmp_path, MB1, "part-00000.parquet")
    pq.write_table(pa.table({k: [v] for k, v in RAW.items() if k != "dport"}), path)

    with pytest.raises(InputDataError) as error:
        read_traffic(spark, [str(path)], PANOS.model_copy(update={"format": "parquet"}))

    assert error.value.location == str(path)
    assert "mapped column 'dport' (destination_port) not found" in error.value.problem


# ---------------------------------------------------------------- PAN-OS syslog CSV


def test_panos_csv_lines_threat_short_and_garbled(spark, tmp_path):
    threat = CSV_LINE.replace(",TRAFFIC,end,", ",THREAT,url,")
    short = ",".join(CSV_LINE.split(",")[:30])
    garbled_port = CSV_LINE.replace(",50123,443,", ",50123,https,")
    garbled_time = CSV_LINE.replace("2026/01/05 08:24:30", "2026/13/45 08:24:30")
    no_type = CSV_LINE.replace(",TRAFFIC,end,", ",,end,")
    udp = CSV_LINE.replace(",tcp,allow,", ",udp,deny,")
    lines = [SYSLOG_HEADER + CSV_LINE, udp, threat, "", short, garbled_port, garbled_time, no_type]
    path = _batch_file(tmp_path, MB1, "part-00000.log.gz")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    spec = PANOS.model_copy(update={"format": "panos_csv"})

    read = read_traffic(spark, [str(path)], spec)

    row = {**CANONICAL, "rule": "allow-web, servers", "mini_batch_id": MB1, "source_file": str(path)}
    assertDataFrameEqual(read.traffic, _expected(spark, [row, {**row, "protocol": "udp", "action": "deny"}]))
    assertDataFrameEqual(
        read.rejects,
        _rejects(
            spark,
            [
                ("short_line", short, str(path), MB1),
                ("garbled_line", garbled_port, str(path), MB1),
                ("garbled_line", garbled_time, str(path), MB1),
                ("garbled_line", no_type, str(path), MB1),
            ],
        ),
    )
    assert read.counters() == {
        "rows_read": 7,  # blank lines are not records
        "traffic_rows": 2,
        "non_traffic_lines": 1,
        "unparseable_json": 0,
        "short_line": 1,
        "garbled_line": 3,
        "unparseable_lines": 4,
    }


def test_syslog_header_is_stripped_and_quoted_commas_do_not_count_as_fields(spark):
    lines = spark.createDataFrame(
        [
            ("header", "<14>Jan  5 08:24:55 fw01 1,a,b"),
            ("header_two_digit_day", "<134>Dec 15 23:59:59 fw-02.corp 1,a,b"),
            ("no_header", "1,a,b"),
            ("quoted", '1,"x, y","say ""hi"", ok",,'),
        ],
        "case string, line string",
    )

    body = strip_syslog_header(F.col("line"))
    result = lines.select("case", body.alias("body"), csv_field_count(body).alias("fields"))

    expected = spark.createDataFrame(
        [
            ("header", "1,a,b", 3),
            ("header_two_digit_day", "1,a,b", 3),
            ("no_header", "1,a,b", 3),
            ("quoted", '1,"x, y","say ""hi"", ok",,', 5),
        ],
        "case string, body string, fields int",
    )
    assertDataFrameEqual(result, expected)


# ---------------------------------------------------------------- bad input


def test_corrupt_gzip_raises_input_data_error_naming_the_file(spark, tmp_path):
    good = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json()])
    whole = gzip.compress(("\n".join(_json(sport=i) for i in range(3000)) + "\n").encode())
    truncated = _batch_file(tmp_path, MB2, "part-00000.json.gz")
    truncated.write_bytes(whole[: len(whole) // 2])

    read = read_traffic(spark, [good, str(truncated)], PANOS)  # lazy: nothing fails yet

    with pytest.raises(InputDataError) as error:
        with read.named_read_errors():
            read.traffic.count()
    assert error.value.location == str(truncated)
    assert "cannot read the jsonl file" in error.value.problem
    with pytest.raises(InputDataError, match=str(truncated)):
        read.counters()
    assert find_unreadable_file(spark, [good, str(truncated)], "jsonl") == str(truncated)


def test_garbage_gzip_as_first_file_fails_while_sampling_its_columns(spark, tmp_path):
    garbage = _batch_file(tmp_path, MB1, "part-00000.json.gz")
    garbage.write_bytes(b"\x1f\x8b this is not deflate data at all")

    with pytest.raises(InputDataError) as error:
        read_traffic(spark, [str(garbage)], PANOS)
    assert error.value.location == str(garbage)


def test_file_removed_after_listing_names_the_file(spark, tmp_path):
    good = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json()])
    gone = str(_batch_file(tmp_path, MB1, "part-00001.json.gz"))

    with pytest.raises(InputDataError) as error:
        read_traffic(spark, [good, gone], PANOS)
    assert error.value.location == gone
    assert "does not exist" in error.value.problem


def test_missing_mapped_or_required_json_column_names_file_and_column(spark, tmp_path):
    path = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json()])

    renamed = PANOS.model_copy(update={"field_mapping": {**PANOS_FIELD_MAPPING, "destination_port": "dest_port"}})
    with pytest.raises(InputDataError) as error:
        read_traffic(spark, [path], renamed)
    assert str(error.value).startswith(f"{path}: mapped column 'dest_port' (destination_port) not found")
    assert "'dport'" in error.value.problem  # the columns present are listed

    with pytest.raises(InputDataError, match="required column 'source_ip' not found"):
        read_traffic(spark, [path], DeltaInput(s3_prefix="s3://raw/p/"))


def test_mini_batch_ids_name_the_batch_of_nested_files(spark, tmp_path):
    nested = _write_json_lines(_batch_file(tmp_path, MB1, "sub/part-00000.json"), [_json()])

    read = read_traffic(spark, [nested], PANOS, mini_batch_ids=[MB1, MB2])

    assertDataFrameEqual(read.traffic.select("mini_batch_id"), spark.createDataFrame([(MB1,)], "mini_batch_id string"))
    with pytest.raises(ValueError, match="expected exactly one mini-batch folder"):
        read_traffic(spark, [nested], PANOS, mini_batch_ids=[MB2])


def test_no_files_gives_empty_frames_and_zero_counters(spark):
    read = read_traffic(spark, [], PANOS)

    assert read.traffic.count() == 0
    assert read.counters()["rows_read"] == 0


def test_select_traffic_files_keeps_data_files_of_the_format():
    objects = [
        "s3://raw/p/mb/_SUCCESS",
        "s3://raw/p/mb/.part-00000.json.gz.crc",
        "s3://raw/p/mb/part-00000.json.gz",
        "s3://raw/p/mb/part-00001.JSONL",
        "s3://raw/p/mb/part-00002.parquet",
        "s3://raw/p/mb/fw01.log.gz",
    ]

    assert select_traffic_files(objects, "jsonl") == ["s3://raw/p/mb/part-00000.json.gz", "s3://raw/p/mb/part-00001.JSONL"]
    assert select_traffic_files(objects, "parquet") == ["s3://raw/p/mb/part-00002.parquet"]
    assert select_traffic_files(objects, "panos_csv") == ["s3://raw/p/mb/fw01.log.gz"]

"""Traffic readers: hand-written raw files in each format -> canonical traffic, rejects, counters."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.dq import REJECT_SCHEMA, to_quarantine
from ndr_assets.transforms.panos_csv import csv_field_count, strip_syslog_header
from ndr_assets.transforms.readers import (
    PANOS_FIELD_MAPPING,
    find_unreadable_file,
    parse_timestamp,
    read_traffic,
    select_traffic_files,
)
from ndr_resources.errors import InputDataError, SpecError, UnreadableFileError
from ndr_resources.specs import DeltaBuilderSpec, DeltaInput, parse_spec
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
    """REJECT_SCHEMA frame from (reason, raw record as text or bytes, source file, mini-batch) tuples."""
    as_bytes = [(r, raw.encode() if isinstance(raw, str) else raw, f, mb) for r, raw, f, mb in rows]
    return spark.createDataFrame(as_bytes, REJECT_SCHEMA)


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
        "start_logs_skipped": 0,
        "unknown_subtype": 0,
        "unknown_action": 0,
        "record_too_large": 0,
        "unparseable_json": 0,
        "short_line": 0,
        "garbled_line": 0,
        "unparseable_lines": 0,
    }


def test_malformed_json_line_and_garbled_value_are_quarantined(spark, tmp_path):
    garbled = json.dumps({"src": "10.10.0.9", "dport": "https", "type": "TRAFFIC"})
    path = _write_json_lines(
        _batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json(), "{broken", garbled, _json(type="THREAT")]
    )

    read = read_traffic(spark, [path], PANOS.model_copy(update={"format": "json"}))

    assertDataFrameEqual(read.traffic, _expected(spark, [{**CANONICAL, "mini_batch_id": MB1, "source_file": path}]))
    # A rejected line is kept as delivered.
    assertDataFrameEqual(
        read.rejects,
        _rejects(spark, [("unparseable_json", "{broken", path, MB1), ("garbled_line", garbled, path, MB1)]),
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
        "start_logs_skipped": 0,
        "unknown_subtype": 0,
        "unknown_action": 0,
        "record_too_large": 0,
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

    with pytest.raises(UnreadableFileError) as error, read.named_read_errors():
        read.traffic.count()
    assert error.value.location == str(truncated)
    assert error.value.cause == "Unexpected end of input stream"
    assert "cannot read the file (Unexpected end of input stream)" in error.value.problem
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


# ---------------------------------------------------------------- one session, one record


def _csv_fields(**positions) -> str:
    """CSV_LINE with the given fields replaced (``p4="start"`` sets position 4); the rule unquoted."""
    fields = next(csv.reader([CSV_LINE]))
    fields[11] = RAW["rule"]
    for key, value in positions.items():
        fields[int(key[1:])] = "" if value is None else str(value)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


# Per record: (JSON/Parquet overrides, the same as CSV positions, the canonical session or None if skipped).
_SESSION_RECORDS = [
    ({}, {}, {}),
    # The start log of the same session (PAN-OS "log at session start"): skipped, counted.
    ({"subtype": "start", "time_generated": RAW["start"], "elapsed": 0, "session_end_reason": "n/a"},
     {"p4": "start", "p6": RAW["start"], "p36": 0, "p46": "n/a"}, None),
    ({"subtype": " START ", "sessionid": 4712}, {"p4": " START ", "p22": 4712}, None),
    ({"subtype": "drop", "action": "drop ICMP", "sessionid": 4713}, {"p4": "drop", "p30": "drop ICMP", "p22": 4713},
     {"log_subtype": "drop", "action": "drop-icmp", "session_id": 4713}),
    ({"subtype": "deny", "action": "Deny", "sessionid": 4714}, {"p4": "deny", "p30": "Deny", "p22": 4714},
     {"log_subtype": "deny", "action": "deny", "session_id": 4714}),
    # No subtype (a source that does not write one): a session.
    ({"subtype": None, "action": "reset both", "sessionid": 4715}, {"p4": None, "p30": "reset both", "p22": 4715},
     {"log_subtype": None, "action": "reset-both", "session_id": 4715}),
    # An unknown subtype and an unknown action: kept as a session, counted.
    ({"subtype": "Update", "action": "continue", "sessionid": 4716}, {"p4": "Update", "p30": "continue", "p22": 4716},
     {"log_subtype": "update", "action": "continue", "session_id": 4716}),
]  # fmt: skip


def _write_session_records(tmp_path: Path, file_format: str) -> str:
    if file_format == "parquet":
        path = _batch_file(tmp_path, MB1, "part-00000.parquet")
        pq.write_table(pa.Table.from_pylist([{**RAW, **raw} for raw, _, _ in _SESSION_RECORDS]), path)
        return str(path)
    if file_format == "panos_csv":
        lines = [SYSLOG_HEADER + _csv_fields(**positions) for _, positions, _ in _SESSION_RECORDS]
        return _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.log.gz"), lines)
    lines = [_json(**raw) for raw, _, _ in _SESSION_RECORDS]
    return _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), lines)


@pytest.mark.parametrize("file_format", ["jsonl", "parquet", "panos_csv"])
def test_start_logs_are_skipped_and_actions_normalized_in_every_format(spark, tmp_path, file_format):
    path = _write_session_records(tmp_path, file_format)

    read = read_traffic(spark, [path], PANOS.model_copy(update={"format": file_format}))

    expected = [
        {**CANONICAL, **canonical, "mini_batch_id": MB1, "source_file": path}
        for _, _, canonical in _SESSION_RECORDS
        if canonical is not None
    ]
    assertDataFrameEqual(read.traffic, _expected(spark, expected))
    assert read.rejects.count() == 0
    counters = read.counters()
    assert {k: counters[k] for k in ("rows_read", "traffic_rows", "start_logs_skipped", "unparseable_lines")} == {
        "rows_read": 7,
        "traffic_rows": 5,
        "start_logs_skipped": 2,
        "unparseable_lines": 0,
    }
    assert (counters["unknown_subtype"], counters["unknown_action"]) == (1, 1)


# ---------------------------------------------------------------- syslog headers

# A PAN-OS 10.x TRAFFIC body (111 fields; the app characteristics at the end are quoted).
PANOS_10_BODY = (
    "1,2026/01/05 08:24:55,007200001056,TRAFFIC,end,2561,2026/01/05 08:24:55,10.0.0.5,8.8.8.8,192.0.2.10,8.8.8.8,"
    "allow-dns-out,,,dns-base,vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,2026/01/05 08:24:55,34567,1,53211,53,"
    "41234,53,0x400064,udp,allow,180,76,104,2,2026/01/05 08:24:24,30,any,,7283746529,0x0,10.0.0.0-10.255.255.255,"
    "United States,,1,1,aged-out,0,0,0,0,,fw01,from-policy,,,0,,0,,N/A,0,0,0,0,b5a0a4c1-7d4e-4c3f-9a5e-0f1e2d3c4b5a,"
    "0,0,,,,,,,,0.0.0.0,,,,,,,,,,,,,,,,,,,,,,,dns-base,networking,infrastructure,network-protocol,1,"
    '"used-by-malware,has-known-vulnerability,pervasive-use",,dns-base,no,no,0,NonProxyTraffic,'
)
PANOS_10_SESSION = {
    "source_ip": "10.0.0.5",
    "destination_ip": "8.8.8.8",
    "source_port": 53211,
    "destination_port": 53,
    "protocol": "udp",
    "action": "allow",
    "source_bytes": 76,
    "destination_bytes": 104,
    "packets": 2,
    "event_start": datetime(2026, 1, 5, 8, 24, 24),
    "event_end": datetime(2026, 1, 5, 8, 24, 55),
    "duration_s": 30.0,  # PAN-OS elapsed, as logged
    "application": "dns-base",
    "rule": "allow-dns-out",
    "source_zone": "trust",
    "destination_zone": "untrust",
    "session_end_reason": "aged-out",
    "log_type": "TRAFFIC",
    "log_subtype": "end",
    "device_serial": "007200001056",
    "session_id": 34567,
}
BOM = "\ufeff"
SYSLOG_HEADERS = {
    "rfc3164": "<14>Jan  5 08:24:55 fw01 ",
    "rfc3164_no_pri": "Jan  5 08:24:55 fw01 ",
    "rfc5424": "<14>1 2026-01-05T08:24:55.123Z fw01 - - - - ",
    "rfc5424_no_pri": "1 2026-01-05T08:24:55.123Z fw01 - - - - ",
    "rfc5424_sd_bom": f'<14>1 2026-01-05T08:24:55.123+01:00 fw01.corp PAN-OS - - [meta sequenceId="1"] {BOM}',
    "rfc5424_two_sd": (
        '<165>1 2026-01-05T08:24:55Z fw01 - - TRAFFIC [meta sequenceId="2" x="a\\"]b"][origin ip="10.0.0.1"] '
    ),
    "rfc3339": "2026-01-05T08:24:55+00:00 fw01 ",
    "bom_only": BOM,
    "none": "",
}


def test_each_syslog_header_form_is_stripped_before_the_csv_body(spark):
    lines = spark.createDataFrame([(name, header + PANOS_10_BODY) for name, header in SYSLOG_HEADERS.items()],
                                  "case string, line string")  # fmt: skip

    result = lines.select("case", strip_syslog_header(F.col("line")).alias("body"))

    expected = spark.createDataFrame([(name, PANOS_10_BODY) for name in SYSLOG_HEADERS], "case string, body string")
    assertDataFrameEqual(result, expected)


def test_panos_10_lines_behind_every_header_form_read_as_the_same_session(spark, tmp_path):
    path = _batch_file(tmp_path, MB1, "fw01.log")
    path.write_bytes("".join(header + PANOS_10_BODY + "\n" for header in SYSLOG_HEADERS.values()).encode())

    read = read_traffic(spark, [str(path)], PANOS.model_copy(update={"format": "panos_csv"}))

    row = {**PANOS_10_SESSION, "mini_batch_id": MB1, "source_file": str(path)}
    assertDataFrameEqual(read.traffic, _expected(spark, [row] * len(SYSLOG_HEADERS)))
    assert read.counters()["unparseable_lines"] == 0


# ---------------------------------------------------------------- device-local clocks


def test_timestamps_without_offset_are_read_in_the_input_time_zone(spark):
    texts = spark.createDataFrame(
        [
            ("panos_winter", "2026/01/05 08:24:54"),
            ("panos_summer", "2026/07/05 08:24:54"),
            ("iso_no_offset", "2026-01-05T08:24:54"),
            ("iso_z", "2026-01-05T08:24:54Z"),
            ("iso_offset", "2026-01-05T09:24:54+01:00"),
            ("iso_compact_offset", "2026-01-05T03:24:54-0500"),
            ("epoch", "1767601494"),
        ],
        "case string, text string",
    )
    t = datetime(2026, 1, 5, 8, 24, 54)
    summer = datetime(2026, 7, 5, 8, 24, 54)
    instants = {"iso_z": t, "iso_offset": t, "iso_compact_offset": t, "epoch": t}

    def parsed(zone):
        return texts.select("case", parse_timestamp(F.col("text"), zone).alias("ts"))

    def expected(panos_winter, panos_summer):
        wall = {"panos_winter": panos_winter, "panos_summer": panos_summer, "iso_no_offset": panos_winter}
        return spark.createDataFrame(list({**wall, **instants}.items()), "case string, ts timestamp")

    hour = timedelta(hours=1)
    assertDataFrameEqual(parsed("UTC"), expected(t, summer))
    assertDataFrameEqual(parsed("+02:00"), expected(t - 2 * hour, summer - 2 * hour))
    # Berlin: UTC+1 in January, UTC+2 (daylight saving time) in July.
    assertDataFrameEqual(parsed("Europe/Berlin"), expected(t - hour, summer - 2 * hour))


def test_read_traffic_takes_the_time_zone_from_the_spec(spark, tmp_path):
    path = _write_json_lines(
        _batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json(), _json(start="2026-01-05T08:24:30Z", sport=1)]
    )

    read = read_traffic(spark, [path], PANOS.model_copy(update={"timezone": "Europe/Berlin"}))

    base = {**CANONICAL, "mini_batch_id": MB1, "source_file": path}
    local = {"event_start": datetime(2026, 1, 5, 7, 24, 30), "event_end": datetime(2026, 1, 5, 7, 24, 54)}
    # The second start carries its offset (an instant); only its end is device-local.
    mixed = {"source_port": 1, "event_start": datetime(2026, 1, 5, 8, 24, 30), "event_end": local["event_end"]}
    assertDataFrameEqual(read.traffic, _expected(spark, [{**base, **local}, {**base, **mixed}]))


def test_an_unknown_input_time_zone_is_a_spec_error_naming_the_key():
    payload = {
        "project_name": "p",
        "job_name": "delta_builder",
        "feature_spec_version": "v1",
        "input": {"s3_prefix": "s3://raw/p/", "timezone": "Mars/Olympus_Mons"},
        "output": {"s3_prefix": "s3://bucket/delta/"},
    }
    with pytest.raises(SpecError, match=r"key 'input.timezone': .*Mars/Olympus_Mons"):
        parse_spec(DeltaBuilderSpec, payload, project="p", item="delta_builder#v1")
    assert DeltaInput(s3_prefix="s3://raw/p/").timezone == "UTC"
    assert DeltaInput(s3_prefix="s3://raw/p/", timezone="UTC+2").timezone == "UTC+2"


# ---------------------------------------------------------------- quarantine bytes and sizes


def test_lines_with_bytes_that_are_not_utf8_stay_readable_in_the_quarantine_parquet(spark, tmp_path):
    json_line = b'{"src": "10.10.0.5", "rule": "r\xe9gle \xff\xfe", "dport": '  # Latin-1 and stray bytes, cut short
    json_path = _batch_file(tmp_path, MB1, "part-00000.json.gz")
    json_path.write_bytes(gzip.compress(_json().encode() + b"\n" + json_line + b"\n"))
    csv_line = SYSLOG_HEADER.encode() + CSV_LINE.replace(",50123,443,", ",50123,44\xe93,").encode("latin-1")
    csv_path = _batch_file(tmp_path, MB2, "fw01.log.gz")
    csv_path.write_bytes(gzip.compress(csv_line + b"\n" + CSV_LINE.encode() + b"\n"))

    json_read = read_traffic(spark, [str(json_path)], PANOS)
    csv_read = read_traffic(spark, [str(csv_path)], PANOS.model_copy(update={"format": "panos_csv"}))
    rejects = json_read.rejects.unionByName(csv_read.rejects)
    out = tmp_path / "quarantine"
    to_quarantine(rejects, datetime(2026, 1, 5, 8, 23)).write.parquet(str(out))

    frame = pq.read_table(out).to_pandas().sort_values("reject_reason", ignore_index=True)
    assert frame["reject_reason"].tolist() == ["garbled_line", "unparseable_json"]
    assert frame["raw_record"].tolist() == [csv_line, json_line]


def test_an_oversized_record_is_rejected_as_record_too_large_before_parsing(spark, tmp_path):
    huge_json = _json(rule="x" * (2 * 1024 * 1024))  # valid JSON, longer than the default 1 MiB
    json_path = _write_json_lines(_batch_file(tmp_path, MB1, "part-00000.json.gz"), [_json(), huge_json, "{broken"])
    long_rule = '"' + "r," * 600 + '"'  # a quoted rule name of 1,202 bytes
    csv_path = _write_json_lines(
        _batch_file(tmp_path, MB2, "fw01.log"), [CSV_LINE, CSV_LINE.replace('"allow-web, servers"', long_rule)]
    )
    parquet_path = _batch_file(tmp_path, MB1, "part-00001.parquet")
    pq.write_table(pa.Table.from_pylist([RAW, {**RAW, "rule": "x" * 2000}]), parquet_path)

    json_read = read_traffic(spark, [json_path], PANOS)
    small = {"max_record_bytes": 1024}
    csv_read = read_traffic(spark, [csv_path], PANOS.model_copy(update={"format": "panos_csv", **small}))
    parquet_read = read_traffic(spark, [str(parquet_path)], PANOS.model_copy(update={"format": "parquet", **small}))

    assertDataFrameEqual(
        json_read.rejects,
        _rejects(
            spark,
            [("record_too_large", huge_json, json_path, MB1), ("unparseable_json", "{broken", json_path, MB1)],
        ),
    )
    too_large = spark.createDataFrame([("record_too_large",)], "reject_reason string")
    assertDataFrameEqual(csv_read.rejects.select("reject_reason"), too_large)
    assertDataFrameEqual(parquet_read.rejects.select("reject_reason"), too_large)
    for read in (json_read, csv_read, parquet_read):
        counters = read.counters()
        assert (counters["traffic_rows"], counters["record_too_large"]) == (1, 1)

"""File formats: gzip JSON lines, Parquet, PAN-OS syslog CSV, inventory and their equivalence."""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import json
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from ndr_jobs.synthetic.records import RAW_TRAFFIC_FIELDS

SYSLOG_HEADER = re.compile(r"^<14>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} fw01 ")


def _batch_uri(run, index: int, file_name: str) -> str:
    tenant = run.summary.tenants[0]
    return f"{tenant.raw_prefix}{tenant.mini_batch_ids[index]}/{file_name}"


def _csv_lines(run, index: int) -> list[str]:
    return gzip.decompress(run.lake.read_bytes(_batch_uri(run, index, "part-00000.log.gz"))).decode().splitlines()


def test_jsonl_batches_are_gzip_json_lines_with_panos_field_names(jsonl_run):
    lines = (
        gzip.decompress(jsonl_run.lake.read_bytes(_batch_uri(jsonl_run, 40, "part-00000.json.gz")))
        .decode()
        .splitlines()
    )
    record = json.loads(lines[0])
    assert list(record) == RAW_TRAFFIC_FIELDS
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", record["time_generated"])
    assert isinstance(record["sessionid"], int) and isinstance(record["bytes_sent"], int)


def test_parquet_batches_hold_the_same_records_with_int64_columns(parquet_run, jsonl_run):
    table = pq.read_table(io.BytesIO(parquet_run.lake.read_bytes(_batch_uri(parquet_run, 40, "part-00000.parquet"))))
    assert table.column_names == RAW_TRAFFIC_FIELDS
    assert table.schema.field("bytes_sent").type == pa.int64()
    assert table.schema.field("dport").type == pa.int64()
    assert table.schema.field("start").type == pa.string()
    lines = (
        gzip.decompress(jsonl_run.lake.read_bytes(_batch_uri(jsonl_run, 40, "part-00000.json.gz")))
        .decode()
        .splitlines()
    )
    from_json = pd.DataFrame([json.loads(line) for line in lines])
    from_parquet = table.to_pandas()
    pd.testing.assert_frame_equal(from_parquet, from_json, check_dtype=False)


def test_formats_hold_the_same_sessions(jsonl_run, parquet_run, csv_run):
    for run in (parquet_run, csv_run):
        assert run.summary.tenants[0].sessions == jsonl_run.summary.tenants[0].sessions
        assert run.summary.tenants[0].mini_batch_ids == jsonl_run.summary.tenants[0].mini_batch_ids
        assert run.summary.tenants[0].malformed == jsonl_run.summary.tenants[0].malformed
        for count in ("start_logs", "redelivered", "respelled_actions"):
            assert getattr(run.summary.tenants[0], count) == getattr(jsonl_run.summary.tenants[0], count) > 0


def test_csv_traffic_lines_put_fields_at_the_documented_positions(csv_run, jsonl_run):
    lines = _csv_lines(csv_run, 40)
    json_lines = gzip.decompress(jsonl_run.lake.read_bytes(_batch_uri(jsonl_run, 40, "part-00000.json.gz"))).decode()
    # One record per session id and subtype in a batch (a start log shares its session's id).
    by_session = {(r["sessionid"], r["subtype"]): r for r in map(json.loads, json_lines.splitlines())}
    traffic = [line for line in lines if ",TRAFFIC," in line]
    assert len(traffic) == len(by_session) == len(json_lines.splitlines())
    line = traffic[0]
    assert SYSLOG_HEADER.match(line)
    fields = next(csv.reader([SYSLOG_HEADER.sub("", line)]))
    assert len(fields) >= 47
    record = by_session[(int(fields[22]), fields[4])]
    expected = {
        1: record["receive_time"],
        2: record["serial"],
        3: "TRAFFIC",
        4: record["subtype"],
        6: record["time_generated"],
        7: record["src"],
        8: record["dst"],
        11: record["rule"],
        14: record["app"],
        16: record["from"],
        17: record["to"],
        24: str(record["sport"]),
        25: str(record["dport"]),
        29: record["proto"],
        30: record["action"],
        31: str(record["bytes"]),
        32: str(record["bytes_sent"]),
        33: str(record["bytes_received"]),
        34: str(record["packets"]),
        35: record["start"],
        36: str(record["elapsed"]),
        44: str(record["pkts_sent"]),
        45: str(record["pkts_received"]),
        46: record["session_end_reason"],
    }
    assert {pos: fields[pos] for pos in expected} == expected
    # The header carries the receive time: "<14>Jan  5 10:08:03 fw01 ".
    assert line[4:19] == pd.Timestamp(record["receive_time"].replace("/", "-")).strftime("%b %e %H:%M:%S")


def test_csv_mixes_in_counted_threat_and_system_lines(csv_run):
    tenant = csv_run.summary.tenants[0]
    types = []
    for index in range(len(tenant.mini_batch_ids)):
        for line in _csv_lines(csv_run, index):
            assert SYSLOG_HEADER.match(line)
            types.append(next(csv.reader([SYSLOG_HEADER.sub("", line)]))[3])
    counts = pd.Series(types).value_counts()
    assert counts["TRAFFIC"] == tenant.traffic_records == tenant.sessions + tenant.start_logs + tenant.redelivered
    assert counts.drop("TRAFFIC").sum() == tenant.non_traffic_lines > 0
    assert set(counts.index) <= {"TRAFFIC", "THREAT", "SYSTEM"}


def test_csv_null_dport_is_an_empty_field(csv_run, jsonl_run):
    assert csv_run.summary.tenants[0].malformed["null_dport"] > 0
    empties = 0
    for index in range(len(csv_run.summary.tenants[0].mini_batch_ids)):
        for line in _csv_lines(csv_run, index):
            fields = next(csv.reader([SYSLOG_HEADER.sub("", line)]))
            empties += fields[3] == "TRAFFIC" and fields[25] == ""
    assert empties == csv_run.summary.tenants[0].malformed["null_dport"]


def test_inventory_names_vdi_machines_in_the_vdi_cidr_and_lists_inactive_ones(jsonl_run):
    inventory = pq.read_table(
        io.BytesIO(jsonl_run.lake.read_bytes(jsonl_run.summary.tenants[0].inventory_uri))
    ).to_pandas()
    assert list(inventory.columns) == ["ip_address", "machine_name", "active", "segment"]
    assert inventory["active"].dtype == bool
    vdi_net = ipaddress.ip_network("10.20.0.0/16")
    vdi = inventory[inventory["machine_name"].str.startswith("VDI-")]
    assert len(vdi) >= 20
    assert all(ipaddress.ip_address(ip) in vdi_net for ip in vdi["ip_address"])
    assert (inventory.loc[inventory["segment"] == "vdi", "machine_name"].str.startswith("VDI-")).all()
    assert 0 < (~inventory["active"]).sum() < 0.2 * len(inventory)
    # An address is held by at most one active machine.
    assert inventory.loc[inventory["active"], "ip_address"].is_unique


def test_ground_truth_and_inventory_live_at_their_documented_uris(jsonl_run):
    tenant = jsonl_run.summary.tenants[0]
    assert tenant.ground_truth_uri == "s3://ndr-test/synthetic/acme/finance/ground_truth.csv"
    # The inventory is the tenant's partition of the local warehouse table dim.machines.
    assert tenant.inventory_uri == "s3://ndr-test/warehouse/dim/machines/tenant=acme_finance/part-00000.parquet"
    assert tenant.raw_prefix == "s3://ndr-test/paloalto/acme/finance/"
    assert (jsonl_run.root / "ndr-test/warehouse/dim/machines/tenant=acme_finance/part-00000.parquet").is_file()


def test_cli_generates_and_prints_a_summary(tmp_path):
    import typer

    from ndr_jobs.synthetic.cli import generate

    app = typer.Typer()
    app.command("generate")(generate)
    app.command("noop")(lambda: None)  # a multi-command app, as the real `ndr` CLI is
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--lake-root",
            str(tmp_path),
            "--tenants",
            "acme/finance",
            "--days",
            "0.1",
            "--scale",
            "0.1",
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "acme/finance" in result.output and "c2_beaconing" in result.output
    assert len(list((tmp_path / "ndr-demo/paloalto/acme/finance").glob("*/part-00000.parquet"))) == 10
    bad = CliRunner().invoke(app, ["generate", "--lake-root", str(tmp_path), "--tenants", "acme"])
    assert bad.exit_code != 0 and "org1/org2" in bad.output

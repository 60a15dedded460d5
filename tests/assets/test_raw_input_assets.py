"""Bad input delivered beside good sessions, through the real assets: nothing skipped unseen, one bad
file is not a bad range, counters that add up, and no silent success without monitored hosts.

One tenant gets good mini-batches plus a hidden file, a file of another format, a truncated gzip, a
folder without a landing time and one with a backslash in its name; a second tenant only sees
traffic between internet addresses. Each is backfilled once through Dagster on the real local Spark.
"""

import gzip
import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from ndr_assets.transforms.schemas import DELTA_HOST_SLICE_SCHEMA, QUARANTINE_SCHEMA
from ndr_jobs.backfill import backfill_project
from ndr_resources.environments import LocalPaths
from ndr_resources.lake import LocalLake, PartitionSpec
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from seeds.provision import provision

BUCKET = "ndr-test"
W1, W2 = datetime(2026, 1, 5, 0, 8), datetime(2026, 1, 5, 0, 23)
RANGE = ("2026-01-04-23:53", "2026-01-05-00:23")


def _record(src, dst, sessionid, start="00:10:00", end="00:12:00", subtype="end"):
    return {
        "type": "TRAFFIC", "subtype": subtype, "src": src, "dst": dst, "sport": 50000 + sessionid, "dport": 443,
        "proto": "tcp", "action": "allow", "bytes_sent": 100, "bytes_received": 200, "bytes": 300, "packets": 4,
        "start": f"2026/01/05 {start}", "time_generated": f"2026/01/05 {end}", "receive_time": f"2026/01/05 {end}",
        "elapsed": 120, "session_end_reason": "tcp-fin", "app": "ssl", "rule": "allow-out", "from": "trust",
        "to": "untrust", "sessionid": sessionid, "serial": "007200001056",
    }


def _lines(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _prefix(org1, org2):
    return f"s3://{BUCKET}/paloalto/{org1}/{org2}/"


def _project_prefix(project):
    return f"s3://{BUCKET}/projects/{project}/versions/v1/data"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("ndr_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NDR_HOME", str(home))
        mp.setenv("NDR_ENV", "local")
        paths = LocalPaths.from_env()
        lake = LocalLake(root=str(paths.lake_root))
        store = SqliteParameterStore(path=str(paths.parameters_db))
        for org1, org2 in (("acme", "finance"), ("globex", "retail")):
            provision(store, lake, project_name=f"ndr-{org1}-{org2}", bucket=BUCKET, feature_spec_version="v1",
                      org1=org1, org2=org2, start_date="2026-01-05")
        acme = _prefix("acme", "finance")
        good_w1 = [_record("10.10.0.5", "8.8.8.8", 1), _record("10.10.0.6", "8.8.8.8", 2),
                   _record("10.10.0.7", "10.30.0.9", 3)]
        lake.write_bytes(f"{acme}20260105T002200Z/part-00000.json.gz", gzip.compress(_lines(good_w1)))
        lake.write_bytes(f"{acme}20260105T002200Z/.part-00000.json.gz.swp", gzip.compress(_lines(good_w1)))
        lake.write_bytes(f"{acme}20260105T002200Z/export.parquet", b"PAR1")
        lake.write_bytes(f"{acme}20260105T002200Z/_SUCCESS", b"")
        # A second mini-batch of the window: session 1 delivered again, and the start log of session 20,
        # which ends in the next window.
        lake.write_bytes(f"{acme}20260105T002230Z/part-00000.json.gz", gzip.compress(_lines([
            good_w1[0], _record("10.10.0.9", "1.1.1.1", 20, "00:20:00", "00:20:00", subtype="start")])))
        good_w2 = [_record("10.10.0.5", "1.1.1.1", 4, "00:25:00", "00:26:00"),
                   _record("10.10.0.8", "1.1.1.1", 5, "00:25:00", "00:26:00"),
                   _record("10.10.0.9", "1.1.1.1", 20, "00:20:00", "00:30:00"),
                   good_w1[1]]  # session 2 again, one window later
        lake.write_bytes(f"{acme}20260105T003700Z/part-00000.json.gz", gzip.compress(_lines(good_w2)))
        whole = gzip.compress(_lines([_record("10.10.0.9", "1.1.1.1", 10 + i) for i in range(2000)]))
        lake.write_bytes(f"{acme}20260105T003700Z/part-00001.json.gz", whole[: len(whole) // 2])
        lake.write_bytes(f"{acme}manual-upload/part-00000.json.gz", gzip.compress(_lines(good_w1)))
        # A key S3 allows but our lake refuses to map: written beside the lake API on purpose.
        hostile = Path(lake.spark_uri(acme)) / "20260105T001500Z\\..\\x"
        hostile.mkdir(parents=True)
        (hostile / "part-00000.json.gz").write_bytes(gzip.compress(_lines(good_w1)))

        globex = _prefix("globex", "retail")
        internet = [_record("8.8.8.8", "1.1.1.1", 1), _record("9.9.9.9", "1.0.0.1", 2)]
        lake.write_bytes(f"{globex}20260105T002200Z/part-00000.json.gz", gzip.compress(_lines(internet)))

        instance_dir = home / "dagster"
        instance_dir.mkdir()
        with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
            bad_input = backfill_project("ndr-acme-finance", *RANGE, instance=instance)
            unmonitored = backfill_project("ndr-globex-retail", *RANGE, instance=instance)
            yield lake, instance, bad_input, unmonitored


def _evaluations(instance, run_id):
    records = instance.get_records_for_run(run_id=run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    found = {}
    for record in records:
        data = record.event_log_entry.dagster_event.asset_check_evaluation_data
        found[(data.asset_key.path[-1], data.check_name)] = data
    return found


def _text(raw_record) -> str:
    return bytes(raw_record).decode() if isinstance(raw_record, (bytes, bytearray)) else raw_record


def _partition(dt, window):
    return PartitionSpec((("dt", dt), ("window", window)))


def test_every_object_is_read_or_listed_as_skipped_with_its_reason(runs):
    _, instance, outcome, _ = runs
    assert outcome.error is None  # the readable rest is published: skipped objects do not block
    assert sorted(outcome.failed_checks) == ["delta.input_complete", "pair_counts.input_complete"]
    meta = outcome.materializations["delta"]
    assert (meta["mini_batches"], meta["files_read"], meta["files_unreadable"], meta["objects_skipped"]) == (3, 3, 1, 4)
    assert meta["incomplete_windows"] == "2026-01-05/0008, 2026-01-05/0023"
    check = _evaluations(instance, outcome.run_id)[("delta", "input_complete")]
    assert not check.passed
    not_read = check.metadata["not_read"].value
    acme = _prefix("acme", "finance")
    assert not_read == [
        f"{acme}20260105T001500Z\\..\\x/: folder name contains a backslash or a control character: "
        "not a valid mini-batch id",
        f"{acme}manual-upload/: folder name carries no landing time (expected %Y%m%dT%H%M%SZ[-suffix])",
        f"{acme}20260105T002200Z/.part-00000.json.gz.swp: hidden file (name starts with '.')",
        f"{acme}20260105T002200Z/export.parquet: not a jsonl file (input.format is jsonl: names end with "
        ".json, .jsonl, .ndjson, .json.gz, .jsonl.gz, .ndjson.gz)",
        f"{acme}20260105T003700Z/part-00001.json.gz: unreadable (Unexpected end of input stream); quarantined whole",
    ]
    assert check.description.startswith("2 object(s) skipped, 1 unreadable file(s) quarantined, 2 folder(s)")


def test_one_truncated_file_is_quarantined_whole_and_the_rest_published(runs, spark):
    lake, _, outcome, _ = runs
    prefix = _project_prefix("ndr-acme-finance")
    quarantine, missing = lake.read_partitions(
        spark, f"{prefix}/quarantine/delta/", [_partition("2026-01-05", "0023")], QUARANTINE_SCHEMA
    )
    assert missing == []
    (row,) = quarantine.select("reject_reason", "raw_record", "source_file", "mini_batch_id").take(2)
    assert row.reject_reason == "unreadable_file"
    assert _text(row.raw_record) == "Unexpected end of input stream"
    assert row.source_file.endswith("20260105T003700Z/part-00001.json.gz") and row.mini_batch_id == "20260105T003700Z"
    host_slices, _ = lake.read_partitions(
        spark, f"{prefix}/features/delta/host_slices/", [_partition("2026-01-05", "0023")], DELTA_HOST_SLICE_SCHEMA
    )
    outbound = {r.host_ip: r.sessions_cnt for r in host_slices.where("role = 'outbound'").take(10)}
    assert outbound == {"10.10.0.5": 1, "10.10.0.8": 1, "10.10.0.9": 1}
    assert "fg_a" in outcome.materializations  # downstream still runs on the readable windows


def test_counters_add_up_per_window_and_checks_compare_them_with_what_was_written(runs):
    _, instance, outcome, _ = runs
    meta = outcome.materializations["delta"]
    assert (meta["records_in"], meta["records_published"], meta["records_quarantined"], meta["records_skipped"]) == (
        9, 6, 0, 3)
    assert meta["skipped_by_reason"] == {"start_log": 1, "redelivered": 2}
    assert outcome.materializations["pair_counts"]["skipped_by_reason"] == {"start_log": 1, "redelivered": 2}
    evaluations = _evaluations(instance, outcome.run_id)
    row_count = evaluations[("delta", "row_count_sane")]
    assert row_count.passed
    # 10.10.0.7 -> 10.30.0.9 is one session with two monitored hosts: two role rows.
    assert row_count.metadata["role_sessions_expected"].value == 7
    assert row_count.metadata["role_sessions_in_host_slices"].value == 7
    assert row_count.metadata["quarantine_rows"].value == 1  # the unreadable file
    rejection = evaluations[("delta", "dq_rejection_rate_under_threshold")]
    assert rejection.passed
    assert rejection.description == (
        "0 of 8 records quarantined: rejection rate 0.00% is within the threshold 5.00% "
        "(delta_builder#v1 dq.max_rejection_rate)"
    )


def test_a_session_is_counted_once_however_often_it_is_logged_or_delivered(runs, spark):
    """Start log + end log, and redeliveries in a later mini-batch of the window and in the next window."""
    lake, _, _, _ = runs
    prefix = _project_prefix("ndr-acme-finance")
    host_slices, _ = lake.read_partitions(
        spark, f"{prefix}/features/delta/host_slices/", [_partition("2026-01-05", "0008")], DELTA_HOST_SLICE_SCHEMA
    )
    outbound = {r.host_ip: r.sessions_cnt for r in host_slices.where("role = 'outbound'").take(10)}
    assert outbound == {"10.10.0.5": 1, "10.10.0.6": 1, "10.10.0.7": 1}


def test_sessions_without_a_monitored_host_fail_loudly(runs):
    _, instance, _, outcome = runs
    assert "delta.monitored_hosts_present" in outcome.failed_checks
    assert outcome.error is not None and "fg_a" not in outcome.materializations
    check = _evaluations(instance, outcome.run_id)[("delta", "monitored_hosts_present")]
    assert check.description == (
        "2 sessions, none with an address in the segment mapping (segments: workstations=10.10.0.0/16, "
        "vdi=10.20.0.0/16, servers=10.30.0.0/16, databases=10.40.0.0/16, domain_controllers=10.50.0.0/24, "
        "dmz=172.16.0.0/16)"
    )
    meta = outcome.materializations["delta"]
    assert meta["skipped_by_reason"] == {"no_monitored_host": 2} and meta["rows_out"] == 0

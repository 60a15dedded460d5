"""The 15-minute assets through Dagster with the real local Spark, on hand-made raw mini-batches.

One project is provisioned into a SQLite store; two mini-batches are written by hand; a single run
materializes delta, pair_counts and fg_a for both windows; the published partitions are compared
with hand-computed frames; a second run of the same range must publish the same rows again.
"""

import gzip
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.schemas import DELTA_HOST_SLICE_SCHEMA, PAIR_COUNTS_SCHEMA, QUARANTINE_SCHEMA, fg_a_schema
from ndr_jobs.backfill import backfill_project
from ndr_resources.environments import LocalPaths
from ndr_resources.lake import LocalLake, PartitionSpec
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from seeds.provision import provision

PROJECT = "ndr-acme-finance"
BUCKET = "ndr-test"
W1 = datetime(2026, 1, 5, 0, 8)
W2 = datetime(2026, 1, 5, 0, 23)
PREFIX = f"s3://{BUCKET}/projects/{PROJECT}/versions/v1/data"


_SESSION_IDS = itertools.count(1)


def _record(src, dst, dport, proto, action, sent, received, start, end, elapsed, reason, sport=50000):
    return {
        "type": "TRAFFIC", "subtype": "end", "src": src, "dst": dst, "sport": sport, "dport": dport,
        "proto": proto, "action": action, "bytes_sent": sent, "bytes_received": received,
        "bytes": sent + received, "packets": 4, "start": f"2026/01/05 {start}", "time_generated": f"2026/01/05 {end}",
        "receive_time": f"2026/01/05 {end}", "elapsed": elapsed, "session_end_reason": reason,
        "app": "ssl", "rule": "allow-out", "from": "trust", "to": "untrust",
        "sessionid": next(_SESSION_IDS), "serial": "007200001056",
    }


BATCH_1 = [  # lands 00:22:00 -> window [00:08, 00:23)
    _record("10.10.0.5", "8.8.8.8", 443, "tcp", "allow", 100, 200, "00:10:00", "00:12:00", 120, "tcp-fin"),
    _record("10.10.0.5", "10.50.0.2", 53, "udp", "allow", 50, 80, "00:15:00", "00:15:00", 0, "aged-out"),
    _record("10.10.0.5", "8.8.8.8", 443, "tcp", "deny", 60, 0, "00:20:00", "00:20:00", 0, "policy-deny"),
    _record("999.1.1.1", "10.10.0.5", 445, "tcp", "allow", 1, 1, "00:20:00", "00:20:30", 30, "tcp-fin"),
]
BATCH_2 = [  # lands 00:37:00 -> window [00:23, 00:38); the second session is late (ended 00:21)
    _record("10.30.0.7", "10.10.0.5", 445, "tcp", "allow", 300, 0, "00:30:00", "00:31:00", 60, "tcp-rst-from-server"),
    _record("10.10.0.5", "8.8.4.4", 80, "tcp", "allow", 10, 20, "00:18:00", "00:21:00", 180, "tcp-fin"),
]


def _write_batch(lake, mini_batch_id, records):
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())
    lake.write_bytes(f"s3://{BUCKET}/paloalto/acme/finance/{mini_batch_id}/part-00000.json.gz", data)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    home = tmp_path_factory.mktemp("ndr_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NDR_HOME", str(home))
        mp.setenv("NDR_ENV", "local")
        paths = LocalPaths.from_env()
        lake = LocalLake(root=str(paths.lake_root))
        store = SqliteParameterStore(path=str(paths.parameters_db))
        provision(store, lake, project_name=PROJECT, bucket=BUCKET, feature_spec_version="v1",
                  org1="acme", org2="finance", start_date="2026-01-05")
        # One row in six is malformed: allow that here; test_high_rejection_rate_blocks_fg_a lowers it.
        _set_max_rejection_rate(store, 0.25)
        _write_batch(lake, "20260105T002200Z", BATCH_1)
        _write_batch(lake, "20260105T003700Z", BATCH_2)
        instance_dir = home / "dagster"
        instance_dir.mkdir()
        with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
            # The project's first window is [2026-01-04 23:53, 00:08): empty, but part of the range.
            first = backfill_project(PROJECT, "2026-01-04-23:53", "2026-01-05-00:23", instance=instance)
            snapshot = _published(lake)
            second = backfill_project(PROJECT, "2026-01-04-23:53", "2026-01-05-00:23", instance=instance)
            _set_max_rejection_rate(store, 0.05)
            blocked = backfill_project(PROJECT, "2026-01-05-00:08", "2026-01-05-00:08", instance=instance)
            yield lake, first, second, snapshot, blocked, home


def _set_max_rejection_rate(store, rate):
    """An operator's edit of one spec key per item: a single-item replace in the parameter table."""
    for job in ("delta_builder#v1", "pair_counts_builder#v1"):
        item = store.get_item(PROJECT, job)
        item["spec"].setdefault("dq", {})["max_rejection_rate"] = rate
        store.put_item(item)


def _partitions():
    return [PartitionSpec((("dt", d), ("window", w))) for d, w in
            [("2026-01-04", "2353"), ("2026-01-05", "0008"), ("2026-01-05", "0023")]]


def _published(lake):
    from ndr_resources.spark import build_spark_session

    spark = build_spark_session()
    read = {}
    for name, uri, schema in [
        ("host_slices", f"{PREFIX}/features/delta/host_slices/", DELTA_HOST_SLICE_SCHEMA),
        ("pair_counts", f"{PREFIX}/features/pair_counts/", PAIR_COUNTS_SCHEMA),
        ("fg_a", f"{PREFIX}/features/fg_a/", fg_a_schema()),
        ("quarantine", f"{PREFIX}/quarantine/delta/", QUARANTINE_SCHEMA),
        ("pair_quarantine", f"{PREFIX}/features/pair_counts/_quarantine/", QUARANTINE_SCHEMA),
    ]:
        df, missing = lake.read_partitions(spark, uri, _partitions(), schema)
        assert missing == [], f"{name} partitions not published: {missing}"
        read[name] = df.cache()
        read[name].count()
    return read


def test_delta_host_slices_match_hand_computed_values(materialized, spark):
    _, _, _, data, *_ = materialized
    columns = ["host_ip", "role", "slice_start", "sessions_cnt", "allow_cnt", "deny_cnt", "zero_reply_cnt",
               "short_session_cnt", "rst_cnt", "bytes_src_sum", "bytes_dst_sum", "peer_ip_nunique",
               "peer_port_nunique", "tcp_cnt", "udp_cnt", "fileshare_port_sessions_cnt", "directory_port_sessions_cnt"]
    expected = spark.createDataFrame(
        [
            # window 1: three sessions of 10.10.0.5 (the malformed fourth row is quarantined)
            ("10.10.0.5", "outbound", W1, 3, 2, 1, 1, 2, 0, 210, 280, 2, 2, 2, 1, 0, 1),
            ("10.50.0.2", "inbound", W1, 1, 1, 0, 0, 1, 0, 80, 50, 1, 1, 0, 1, 0, 1),
            # window 2: the late session counts where it arrived
            ("10.10.0.5", "outbound", W2, 1, 1, 0, 0, 0, 0, 10, 20, 1, 1, 1, 0, 0, 0),
            ("10.10.0.5", "inbound", W2, 1, 1, 0, 1, 0, 1, 0, 300, 1, 1, 1, 0, 1, 0),
            ("10.30.0.7", "outbound", W2, 1, 1, 0, 1, 0, 1, 300, 0, 1, 1, 1, 0, 1, 0),
        ],
        "host_ip string, role string, slice_start timestamp, sessions_cnt long, allow_cnt long, deny_cnt long, "
        "zero_reply_cnt long, short_session_cnt long, rst_cnt long, bytes_src_sum long, bytes_dst_sum long, "
        "peer_ip_nunique long, peer_port_nunique long, tcp_cnt long, udp_cnt long, "
        "fileshare_port_sessions_cnt long, directory_port_sessions_cnt long",
    )
    assertDataFrameEqual(data["host_slices"].select(*columns), expected)


def test_rejected_row_is_quarantined_with_its_reason(materialized):
    _, first, _, data, *_ = materialized
    for dataset in ("quarantine", "pair_quarantine"):
        rows = data[dataset].select("reject_reason", "mini_batch_id", "window_start").take(5)
        assert [tuple(r) for r in rows] == [("malformed_ip", "20260105T002200Z", W1)]
    delta_meta = first.materializations["delta"]
    assert (delta_meta["records_in"], delta_meta["records_published"], delta_meta["records_quarantined"],
            delta_meta["records_skipped"]) == (6, 5, 1, 0)
    assert delta_meta["quarantined_by_reason"] == {"malformed_ip": 1}
    assert delta_meta["late_sessions"] == 1
    pair_meta = first.materializations["pair_counts"]
    assert (pair_meta["records_in"], pair_meta["records_published"], pair_meta["records_quarantined"]) == (6, 5, 1)


def test_pair_counts_per_window(materialized, spark):
    _, _, _, data, *_ = materialized
    expected = spark.createDataFrame(
        [
            ("10.10.0.5", "8.8.8.8", 443, datetime(2026, 1, 5, 0, 23), 2),
            ("10.10.0.5", "10.50.0.2", 53, datetime(2026, 1, 5, 0, 23), 1),
            ("10.30.0.7", "10.10.0.5", 445, datetime(2026, 1, 5, 0, 38), 1),
            ("10.10.0.5", "8.8.4.4", 80, datetime(2026, 1, 5, 0, 38), 1),
        ],
        PAIR_COUNTS_SCHEMA,
    )
    assertDataFrameEqual(data["pair_counts"], expected)


def test_fg_a_rolls_windows_up(materialized, spark):
    _, _, _, data, *_ = materialized
    got = data["fg_a"].where(F.col("host_ip") == "10.10.0.5").select(
        "window_end_ts", "window_label", "hour_of_day", "is_night", "sessions_cnt_w_15m", "sessions_cnt_w_30m",
        "in_sessions_cnt_w_15m", "in_sessions_cnt_w_30m", "peer_ip_nunique_w_30m", "bytes_src_sum_w_24h",
    )
    expected = spark.createDataFrame(
        [
            (datetime(2026, 1, 5, 0, 23), "night", 0, 1, 3, 3, 0, 0, 2, 210),
            (datetime(2026, 1, 5, 0, 38), "night", 0, 1, 1, 4, 1, 1, 3, 220),
        ],
        "window_end_ts timestamp, window_label string, hour_of_day int, is_night int, sessions_cnt_w_15m long, "
        "sessions_cnt_w_30m long, in_sessions_cnt_w_15m long, in_sessions_cnt_w_30m long, "
        "peer_ip_nunique_w_30m long, bytes_src_sum_w_24h long",
    )
    assertDataFrameEqual(got, expected)
    hosts = {(r.host_ip, r.window_end_ts) for r in data["fg_a"].select("host_ip", "window_end_ts").take(20)}
    assert hosts == {
        ("10.10.0.5", datetime(2026, 1, 5, 0, 23)), ("10.50.0.2", datetime(2026, 1, 5, 0, 23)),
        ("10.10.0.5", datetime(2026, 1, 5, 0, 38)), ("10.30.0.7", datetime(2026, 1, 5, 0, 38)),
    }


def test_checks_pass_and_rerun_publishes_the_same_rows(materialized):
    lake, first, second, before, *_ = materialized
    assert first.error is None and second.error is None
    assert first.failed_checks == () and second.failed_checks == ()
    after = _published(lake)
    for name in before:
        assertDataFrameEqual(after[name], before[name])


def test_high_rejection_rate_blocks_fg_a(materialized):
    *_, blocked, _ = materialized
    assert sorted(blocked.failed_checks) == ["delta.dq_rejection_rate_under_threshold",
                                             "pair_counts.dq_rejection_rate_under_threshold"]
    assert "fg_a" not in blocked.materializations
    assert blocked.error is not None
    with pytest.raises(RuntimeError, match="dq_rejection_rate_under_threshold"):
        blocked.raise_on_failure()


def test_the_webserver_shows_the_materialized_partitions(materialized):
    """The UI's GraphQL API, served by a real dagster-webserver on this instance and workspace."""
    *_, home = materialized
    port = _free_port()
    env = dict(os.environ, NDR_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), NDR_ENV="local")
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    query = "{ assetNodes { assetKey { path } partitionStats { numMaterialized numFailed } } }"
    try:
        answer = _graphql(port, query, deadline=time.monotonic() + 90)
    finally:
        server.terminate()
        server.wait(timeout=30)
    stats = {tuple(node["assetKey"]["path"]): node["partitionStats"] for node in answer["data"]["assetNodes"]}
    # Three windows materialized twice; then the 00:08 window again, where the blocking DQ check stopped
    # fg_a: the UI marks that fg_a partition failed (red) while delta and pair_counts stay materialized.
    assert stats[(PROJECT, "delta")] == {"numMaterialized": 3, "numFailed": 0}
    assert stats[(PROJECT, "pair_counts")] == {"numMaterialized": 3, "numFailed": 0}
    assert stats[(PROJECT, "fg_a")] == {"numMaterialized": 2, "numFailed": 1}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port, query, *, deadline):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
            if answer.get("data", {}).get("assetNodes"):
                return answer
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("dagster-webserver did not answer within 90 s")
        time.sleep(1)

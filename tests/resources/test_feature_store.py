"""Feature Store publishing: definitions checked against botocore's model, the local offline table, moto's
SageMaker for the group, and a loopback HTTP peer speaking PutRecord for the online path."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import validate_parameters
from pyspark.sql import types as T

from ndr_assets.contracts import dataset_contract
from ndr_resources.feature_store import (
    MAX_FEATURES_PER_GROUP,
    FeatureStoreError,
    LocalFeatureStore,
    SageMakerFeatureStore,
    feature_group_definition,
    feature_name_mapping,
    sagemaker_name,
)
from ndr_resources.model_specs import FeatureGroupTarget, FeatureStoreConfig
from tests.moto_server import FAKE_AWS_ENV

ROLE = "arn:aws:iam::123456789012:role/ndr-feature-store"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
RUNTIME = botocore.session.get_session().get_service_model("sagemaker-featurestore-runtime")


def _valid_request(operation, params, model=SAGEMAKER):
    # raises botocore's ParamValidationError listing every problem
    validate_parameters(params, model.operation_model(operation).input_shape)


# ---------------------------------------------------------------- definitions from the catalog


@pytest.mark.parametrize(
    ("dataset", "integral", "fractional", "string"),
    [
        # fg_a: 341 bigint + 5 int; 147 double; host_ip, window_label, window_end_ts + record_id, event_time
        ("fg_a", 346, 147, 5),
        # fg_c: 3 int; 1357 double; 4 strings + window_end_ts + record_id, event_time
        ("fg_c", 3, 1357, 7),
    ],
)
def test_definition_from_catalog_schema_is_a_valid_create_feature_group_request(dataset, integral, fractional, string):
    target = FeatureGroupTarget(feature_group_name=f"ndr-acme-{dataset.replace('_', '-')}", online=True)
    request = feature_group_definition(target.feature_group_name, dataset_contract(dataset), target,
                                       offline_s3_uri="s3://ndr-fs/offline", role_arn=ROLE, dataset=dataset)
    _valid_request("CreateFeatureGroup", request)
    types = Counter(d["FeatureType"] for d in request["FeatureDefinitions"])
    assert types == {"Integral": integral, "Fractional": fractional, "String": string}
    assert request["FeatureDefinitions"][:3] == [
        {"FeatureName": "record_id", "FeatureType": "String"},
        {"FeatureName": "event_time", "FeatureType": "String"},
        {"FeatureName": "host_ip", "FeatureType": "String"},
    ]
    assert {"FeatureName": "window_end_ts", "FeatureType": "String"} in request["FeatureDefinitions"]
    assert request["RecordIdentifierFeatureName"] == "record_id"
    assert request["EventTimeFeatureName"] == "event_time"
    assert request["OnlineStoreConfig"] == {"EnableOnlineStore": True}
    assert request["OfflineStoreConfig"]["S3StorageConfig"] == {"S3Uri": "s3://ndr-fs/offline"}


def test_names_sagemaker_refuses_are_shortened_deterministically():
    assert sagemaker_name("sessions_cnt_w_15m") == "sessions_cnt_w_15m"
    # sha1("a" * 70)[:8] = ed6c69d9; 55 characters of the name, "_", 8 hex digits = 64
    assert sagemaker_name("a" * 70) == "a" * 55 + "_ed6c69d9"
    assert len(sagemaker_name("a" * 70)) == 64
    # sha1("bytes.sum/w 15m")[:8] = 9ee30907
    assert sagemaker_name("bytes.sum/w 15m") == "bytes_sum_w_15m_9ee30907"
    # a valid name is never touched, so the renamed one cannot take its place
    mapping = feature_name_mapping(["bytes_sum_w_15m", "bytes.sum/w 15m"], dataset="fg_a")
    assert mapping == {"bytes_sum_w_15m": "bytes_sum_w_15m", "bytes.sum/w 15m": "bytes_sum_w_15m_9ee30907"}


def test_reserved_and_colliding_names_fail_naming_the_item():
    with pytest.raises(FeatureStoreError, match=r"project 'ndr-acme', item 'feature_store', key 'groups.fg_a.*write_time"):
        feature_name_mapping(["host_ip", "write_time"], dataset="fg_a", project="ndr-acme")
    with pytest.raises(FeatureStoreError, match="both map to feature name 'Bytes'"):
        feature_name_mapping(["bytes", "Bytes"], dataset="fg_a")


def _schema(extra: int) -> T.StructType:
    keys = [T.StructField("host_ip", T.StringType()), T.StructField("window_label", T.StringType()),
            T.StructField("window_end_ts", T.TimestampType())]
    return T.StructType(keys + [T.StructField(f"m{i}", T.DoubleType()) for i in range(extra)])


def test_more_features_than_sagemaker_allows_fail_clearly():
    target = FeatureGroupTarget(feature_group_name="ndr-acme-wide")
    # 3 keys + 2495 metrics + record_id + event_time = 2500: the limit itself is fine
    ok = feature_group_definition("ndr-acme-wide", _schema(MAX_FEATURES_PER_GROUP - 5), target,
                                  offline_s3_uri="s3://ndr-fs/offline", role_arn=ROLE, dataset="fg_c")
    assert len(ok["FeatureDefinitions"]) == 2500
    with pytest.raises(FeatureStoreError, match=r"key 'groups.fg_c.feature_group_name'.*2501 features .* exceed SageMaker's 2500"):
        feature_group_definition("ndr-acme-wide", _schema(MAX_FEATURES_PER_GROUP - 4), target,
                                 offline_s3_uri="s3://ndr-fs/offline", role_arn=ROLE, dataset="fg_c", project="ndr-acme")


def test_offline_group_without_role_or_location_fails_naming_the_key():
    target = FeatureGroupTarget(feature_group_name="ndr-acme-fg-a")
    with pytest.raises(FeatureStoreError, match=r"key 'groups.fg_a.role_arn'"):
        feature_group_definition("ndr-acme-fg-a", _schema(1), target, offline_s3_uri="s3://b/o", role_arn=None, dataset="fg_a")
    with pytest.raises(FeatureStoreError, match=r"key 'groups.fg_a.offline_s3_uri'"):
        feature_group_definition("ndr-acme-fg-a", _schema(1), target, offline_s3_uri=None, role_arn=ROLE, dataset="fg_a")


# ---------------------------------------------------------------- small window frames

WINDOW_SCHEMA = T.StructType([
    T.StructField("host_ip", T.StringType()),
    T.StructField("window_label", T.StringType()),
    T.StructField("window_end_ts", T.TimestampType()),
    T.StructField("sessions_cnt_w_15m", T.LongType()),
    T.StructField("bytes_src_sum_w_15m", T.DoubleType()),
])


def _rows(n: int, hour: int = 0) -> list[tuple]:
    end = dt.datetime(2026, 4, 1, hour, 8)
    # sessions: big enough that a float round trip would show (2**53 + 1 is not a double)
    # bytes: null every 5th row, NaN for row 3 (both absent from a PutRecord)
    return [(f"10.0.{i // 250}.{i % 250}", "night", end, 2**53 + i, None if i % 5 == 0 else float("nan") if i == 3 else i * 1.5)
            for i in range(n)]


def test_local_store_writes_an_offline_table_partitioned_like_sagemaker(spark, tmp_path):
    rows = _rows(3, hour=0) + [("10.0.9.9", "night", dt.datetime(2026, 4, 1, 1, 23), 7, 2.5)]
    df = spark.createDataFrame(rows, WINDOW_SCHEMA)
    target = FeatureGroupTarget(feature_group_name="ndr-acme-fg-a", offline_s3_uri="s3://ndr-acme-fs/offline")
    store = LocalFeatureStore(lake_root=str(tmp_path))
    outcome = store.publish(df, dataset="fg_a", config=FeatureStoreConfig(), target=target, project="ndr-acme")

    assert outcome.offline_uri == "s3://ndr-acme-fs/offline/ndr-acme-fg-a"
    assert (outcome.records, outcome.calls, outcome.failed_records) == (4, 0, 0)
    base = tmp_path / "ndr-acme-fs" / "offline" / "ndr-acme-fg-a"
    hours = sorted(str(p.relative_to(base)) for p in base.glob("year=*/month=*/day=*/hour=*"))
    assert hours == ["year=2026/month=04/day=01/hour=00", "year=2026/month=04/day=01/hour=01"]
    written = spark.read.parquet(str(base))
    got = {r["record_id"]: r for r in written.collect()}  # 4 test rows
    first = got["10.0.0.0|2026-04-01T00:08:00Z|night"]
    assert first["event_time"] == "2026-04-01T00:08:00Z"
    assert first["window_end_ts"] == "2026-04-01T00:08:00Z"
    assert first["sessions_cnt_w_15m"] == 2**53
    assert first["bytes_src_sum_w_15m"] is None
    assert first["is_deleted"] is False
    # The hour folder of the 01:23 window (typed 1 or "01": the lake's publish turns Spark's partition
    # type inference off for the session, so the type depends on what ran before).
    assert int(got["10.0.9.9|2026-04-01T01:23:00Z|night"]["hour"]) == 1
    assert json.loads((base / "_feature_names.json").read_text())["host_ip"] == "host_ip"

    # the offline store is an append log: a second window of the same hour adds, never replaces
    store.publish(spark.createDataFrame([("10.0.0.0", "night", dt.datetime(2026, 4, 1, 0, 23), 1, 1.0)], WINDOW_SCHEMA),
                  dataset="fg_a", config=FeatureStoreConfig(), target=target)
    assert spark.read.parquet(str(base)).count() == 5


# ---------------------------------------------------------------- SageMaker: the group on moto


@pytest.fixture
def sagemaker_store(moto_endpoint, tmp_path) -> SageMakerFeatureStore:
    return SageMakerFeatureStore(region_name="us-east-1", endpoint_url=moto_endpoint, offline_lake_root=str(tmp_path))


def test_ensure_feature_group_creates_once_and_checks_an_existing_group(sagemaker_store, spark):
    name = f"ndr-acme-fg-a-{uuid.uuid4().hex[:6]}"
    target = FeatureGroupTarget(feature_group_name=name, offline_s3_uri="s3://ndr-acme-fs/offline")
    config = FeatureStoreConfig(role_arn=ROLE)
    first = sagemaker_store.ensure_feature_group(WINDOW_SCHEMA, dataset="fg_a", config=config, target=target)
    again = sagemaker_store.ensure_feature_group(WINDOW_SCHEMA, dataset="fg_a", config=config, target=target)
    assert first["FeatureGroupArn"] == again["FeatureGroupArn"] == f"arn:aws:sagemaker:us-east-1:123456789012:feature-group/{name}"
    assert [d["FeatureName"] for d in again["FeatureDefinitions"]] == [
        "record_id", "event_time", "host_ip", "window_label", "window_end_ts", "sessions_cnt_w_15m", "bytes_src_sum_w_15m"]
    wider = T.StructType(WINDOW_SCHEMA.fields + [T.StructField("new_metric", T.DoubleType())])
    with pytest.raises(FeatureStoreError, match=r"project 'ndr-acme'.*lacks or mistypes 1 feature\(s\): \['new_metric \(Fractional, group has none\)'\]"):
        sagemaker_store.ensure_feature_group(wider, dataset="fg_a", config=config, target=target, project="ndr-acme")


def test_offline_only_group_is_ingested_as_parquet_at_the_resolved_offline_uri(sagemaker_store, spark, tmp_path):
    name = f"ndr-acme-fg-c-{uuid.uuid4().hex[:6]}"
    target = FeatureGroupTarget(feature_group_name=name, offline_s3_uri="s3://ndr-acme-fs/offline")
    outcome = sagemaker_store.publish(spark.createDataFrame(_rows(6), WINDOW_SCHEMA), dataset="fg_c",
                                      config=FeatureStoreConfig(role_arn=ROLE), target=target)
    # moto resolves like SageMaker: <S3Uri>/<account>/<region>/offline-store/<group>-<created>/data
    assert outcome.offline_uri.startswith(f"s3://ndr-acme-fs/offline/123456789012/us-east-1/offline-store/{name}-")
    assert outcome.offline_uri.endswith("/data")
    assert (outcome.records, outcome.calls) == (6, 0)
    written = Path(tmp_path, outcome.offline_uri[len("s3://"):], "year=2026", "month=04", "day=01", "hour=00")
    assert spark.read.parquet(str(written)).count() == 6


# ---------------------------------------------------------------- PutRecord against a loopback peer


class FeatureStorePeer(ThreadingHTTPServer):
    """Speaks the PutRecord REST protocol (PUT /FeatureGroup/<name>, JSON body) and counts what arrives.

    ``mode``: "ok"; "throttle" (the first ``throttle_calls`` calls answer ThrottlingException); "down"
    (every call answers 503 ServiceUnavailable). Bodies are validated against botocore's model.
    """

    daemon_threads = True

    def __init__(self, mode: str = "ok", throttle_calls: int = 0, latency_seconds: float = 0.0):
        super().__init__(("127.0.0.1", 0), _PeerHandler)
        self.mode, self.throttle_calls, self.latency_seconds = mode, throttle_calls, latency_seconds
        self.lock = threading.Lock()
        self.calls = 0
        self.received: Counter[str] = Counter()
        self.records: dict[str, dict[str, str]] = {}
        self.invalid: list[str] = []
        self.groups: Counter[str] = Counter()
        self.target_stores: set[tuple[str, ...]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _PeerHandler(BaseHTTPRequestHandler):
    server: FeatureStorePeer

    def log_message(self, *args):  # one line per request otherwise
        pass

    def _answer(self, status: int, error_type: str | None = None, message: str = "") -> None:
        body = json.dumps({"message": message} if error_type else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        import time

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        peer = self.server
        if peer.latency_seconds:
            time.sleep(peer.latency_seconds)
        with peer.lock:
            peer.calls += 1
            call = peer.calls
        if not self.path.startswith("/FeatureGroup/") or "authorization" not in {k.lower() for k in self.headers}:
            return self._answer(400, "ValidationError", f"not a signed PutRecord: {self.path}")
        group = self.path[len("/FeatureGroup/"):]
        try:
            validate_parameters({"FeatureGroupName": group, **body}, RUNTIME.operation_model("PutRecord").input_shape)
        except Exception as exc:
            with peer.lock:
                peer.invalid.append(str(exc))
            return self._answer(400, "ValidationError", str(exc))
        if peer.mode == "down":
            return self._answer(503, "ServiceUnavailable", "try later")
        if peer.mode == "throttle" and call <= peer.throttle_calls:
            return self._answer(400, "ThrottlingException", "Rate exceeded")
        record = {f["FeatureName"]: f["ValueAsString"] for f in body["Record"]}
        with peer.lock:
            peer.received[record["record_id"]] += 1
            peer.records[record["record_id"]] = record
            peer.groups[group] += 1
            peer.target_stores.add(tuple(body.get("TargetStores", ())))
        return self._answer(200)


def start_peer(**kwargs) -> FeatureStorePeer:
    peer = FeatureStorePeer(**kwargs)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    return peer


@pytest.fixture(scope="module", autouse=True)
def executors_with_fake_aws(spark):
    """The fake credentials in the Python workers' environment too (boto3 signs there, not on the driver).

    Module-wide: Spark starts one Python worker daemon per distinct environment, so every test here
    shares one instead of paying for a second.
    """
    env = spark.sparkContext.environment
    saved = {k: env.get(k) for k in FAKE_AWS_ENV}
    env.update(FAKE_AWS_ENV)
    yield spark
    for key, value in saved.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


@pytest.fixture
def online_group(sagemaker_store):
    # Online and offline: moto 5.2.5's CreateFeatureGroup fails (500) without an OfflineStoreConfig.
    name = f"ndr-acme-fg-a-{uuid.uuid4().hex[:6]}"
    return FeatureGroupTarget(feature_group_name=name, offline=True, online=True, offline_s3_uri="s3://ndr-acme-fs/offline")


def _runtime_store(sagemaker_store, peer) -> SageMakerFeatureStore:
    return sagemaker_store.model_copy(update={"runtime_endpoint_url": peer.url})


def test_put_record_retries_throttling_and_delivers_every_record_exactly_once(executors_with_fake_aws, sagemaker_store, online_group):
    spark = executors_with_fake_aws
    peer = start_peer(mode="throttle", throttle_calls=5)
    try:
        df = spark.createDataFrame(spark.sparkContext.parallelize(_rows(40), 2), WINDOW_SCHEMA)  # 20 rows per partition
        config = FeatureStoreConfig(role_arn=ROLE, max_workers=4, records_per_batch=7, max_retries=5, backoff_seconds=0.01)
        outcome = _runtime_store(sagemaker_store, peer).publish(df, dataset="fg_a", config=config, target=online_group)
    finally:
        peer.shutdown()
    assert peer.invalid == []
    assert (outcome.records, outcome.failed_records) == (40, 0)
    assert outcome.batches == 6  # ceil(20 / 7) = 3 chunks per partition
    # every throttled call is retried once: 40 successes + 5 throttled = 45 calls, 5 retries
    assert (outcome.calls, outcome.retries, peer.calls) == (45, 5, 45)
    assert len(peer.received) == 40 and set(peer.received.values()) == {1}
    assert peer.groups == {online_group.feature_group_name: 40}
    assert peer.target_stores == {("OnlineStore", "OfflineStore")}  # SageMaker replicates into the offline store
    assert peer.records["10.0.0.1|2026-04-01T00:08:00Z|night"] == {
        "record_id": "10.0.0.1|2026-04-01T00:08:00Z|night",
        "event_time": "2026-04-01T00:08:00Z",
        "host_ip": "10.0.0.1",
        "window_label": "night",
        "window_end_ts": "2026-04-01T00:08:00Z",
        "sessions_cnt_w_15m": "9007199254740993",  # 2**53 + 1, exact
        "bytes_src_sum_w_15m": "1.5",
    }
    assert "bytes_src_sum_w_15m" not in peer.records["10.0.0.0|2026-04-01T00:08:00Z|night"]  # null: left out
    assert "bytes_src_sum_w_15m" not in peer.records["10.0.0.3|2026-04-01T00:08:00Z|night"]  # NaN: left out
    assert peer.records["10.0.0.39|2026-04-01T00:08:00Z|night"]["bytes_src_sum_w_15m"] == "58.5"


def test_a_peer_that_always_fails_is_reported_as_failed_records(executors_with_fake_aws, sagemaker_store, online_group):
    spark = executors_with_fake_aws
    peer = start_peer(mode="down")
    try:
        df = spark.createDataFrame(_rows(10), WINDOW_SCHEMA).coalesce(1)
        config = FeatureStoreConfig(role_arn=ROLE, max_workers=2, records_per_batch=4, max_retries=2, backoff_seconds=0.001)
        outcome = _runtime_store(sagemaker_store, peer).publish(df, dataset="fg_a", config=config, target=online_group)
    finally:
        peer.shutdown()
    assert (outcome.records, outcome.failed_records, outcome.batches) == (10, 10, 3)
    assert (outcome.calls, outcome.retries) == (30, 20)  # 1 + 2 retries per record
    assert "ServiceUnavailable" in outcome.first_error
    assert peer.received == Counter()

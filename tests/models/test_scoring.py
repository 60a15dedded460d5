"""score_windows on the shared Spark session: in process and through the loopback InvokeEndpoint peer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from ndr_assets.models import serving
from ndr_assets.models.scoring import score_windows
from ndr_resources.model_invokers import InProcessInvoker, SageMakerInvoker
from ndr_resources.model_specs import EndpointConfig
from tests.models.bundles import FEATURES, make_bundle, sklearn_scores, training_rows, write_bundle
from tests.models.sagemaker_peer import SageMakerPeer
from tests.moto_server import FAKE_AWS_ENV

ROWS = 30


@pytest.fixture(scope="module")
def bundle() -> dict:
    return make_bundle()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, bundle) -> str:
    return write_bundle(str(tmp_path_factory.mktemp("model")), bundle)


@pytest.fixture(scope="module")
def rows(bundle) -> pd.DataFrame:
    raw = training_rows(ROWS, seed=21)
    raw[4, 1] = bundle["baseline"][1] * 40  # one host far off on "sessions"
    raw[9, 2] = np.nan  # and a missing value
    frame = pd.DataFrame(raw, columns=FEATURES)
    frame.insert(0, "host_ip", [f"10.0.0.{i}" for i in range(ROWS)])
    frame.insert(1, "window_label", "w_15m")
    return frame


@pytest.fixture(scope="module")
def features(spark, rows):
    # Two partitions of 15 rows: with 4 records a payload, 4 payloads each (4, 4, 4, 3).
    return spark.createDataFrame(rows).coalesce(2)


def _config(**overrides) -> EndpointConfig:
    return EndpointConfig(**{"endpoint_name": "ndr-if", "max_records_per_payload": 4, "max_retries": 3,
                             "backoff_seconds": 0.01, "max_workers": 2, **overrides})


def _expected(spark, bundle, rows, drop: set[str] = frozenset()):
    keep = rows[~rows["host_ip"].isin(drop)]
    scores = sklearn_scores(bundle, keep[FEATURES].to_numpy())
    labels = (scores >= bundle["score_threshold"]).astype("int32")
    return spark.createDataFrame(
        pd.DataFrame({"record_id": keep["host_ip"], "prediction_score": scores, "prediction_label": labels}),
        "record_id string, prediction_score double, prediction_label int")


@pytest.mark.parametrize("wire", ["application/json", "text/csv"])
def test_in_process_scores_equal_the_models_own(spark, bundle, model_dir, rows, features, wire):
    result = score_windows(features, feature_columns=FEATURES, record_id_col="host_ip", invoker=InProcessInvoker(model_dir),
                           config=_config(content_type=wire, accept=wire), carry_columns=["window_label"])
    assert (result.payloads, result.calls, result.retries, result.failed_payload_count) == (8, 8, 0, 0)
    assert result.ok and result.failure_summary() == ""
    assertDataFrameEqual(result.scored.select("record_id", "prediction_score", "prediction_label"),
                         _expected(spark, bundle, rows), rtol=1e-15)

    [odd] = result.scored.where("record_id = '10.0.0.4'").collect()
    [reference] = serving.predict_fn(rows.iloc[[4]].rename(columns={"host_ip": "record_id"}), bundle)
    assert odd["window_label"] == "w_15m" and odd["model_version"] == "v-test-1"
    assert [t.asDict() for t in odd["top_features"]] == reference["top_features"]
    assert odd["top_features"][0]["feature"] == "sessions" and odd["top_features"][0]["contribution"] > 0
    [gap] = result.scored.where("record_id = '10.0.0.9'").collect()
    assert [t["value"] for t in gap["top_features"] if t["feature"] == "distinct_peers"] == [None]
    assert {p for (p,) in result.scored.select("payload_id").distinct().collect()} == {
        f"p{part:05d}-{n:06d}" for part in (0, 1) for n in range(4)}


def test_a_model_version_other_than_expected_fails_every_payload(features, model_dir):
    result = score_windows(features, feature_columns=FEATURES, record_id_col="host_ip", invoker=InProcessInvoker(model_dir),
                           config=_config(model_version="v-other"))
    assert (result.failed_payload_count, result.failed_records, result.scored.count()) == (8, ROWS, 0)
    assert result.failed_payloads[0].error == "endpoint served model_version ['v-test-1'], expected 'v-other'"
    assert result.failure_summary().startswith("8 of 8 payloads (30 records) failed: p00000-000000 (4 records from '10.0.0.0')")


def test_a_record_too_large_alone_fails_its_own_payload_without_a_call(spark, bundle, model_dir, rows):
    long_id = "10.9.9.9|" + "x" * 400
    frame = pd.concat([rows.iloc[:3], rows.iloc[[3]].assign(host_ip=long_id)], ignore_index=True)
    result = score_windows(spark.createDataFrame(frame).coalesce(1), feature_columns=FEATURES, record_id_col="host_ip",
                           invoker=InProcessInvoker(model_dir), config=_config(max_payload_mb=0.0004))  # 400 bytes: 3 records
    assert (result.payloads, result.calls, result.failed_payload_count) == (2, 1, 1)
    [failed] = result.failed_payloads
    assert (failed.payload_id, failed.records, failed.first_record_id) == ("p00000-000001", 1, long_id)
    assert failed.error.startswith(f"record {long_id!r} needs a ") and failed.error.endswith("over the limit of 400 bytes")
    assertDataFrameEqual(result.scored.select("record_id", "prediction_score", "prediction_label"),
                         _expected(spark, bundle, rows.iloc[:3]), rtol=1e-15)


@pytest.fixture(scope="module", autouse=True)
def fake_credentials(spark):
    """Fake credentials where boto3 looks for them: this process (the driver) and the Python workers Spark
    starts (``SparkContext.environment`` is handed to every worker). Module-wide, so every test here
    shares one set of workers: a changed environment would start new ones (seconds of imports)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENV.items():
            patch.setenv(name, value)
            patch.setitem(spark.sparkContext.environment, name, value)
        yield


@pytest.fixture
def peer(model_dir):
    server = SageMakerPeer(model_dir).start()
    yield server
    server.stop()


def test_over_http_throttling_and_5xx_are_retried_and_scores_match(spark, bundle, rows, features, peer):
    peer.script[:] = ["throttle", "500"]
    invoker = SageMakerInvoker("ndr-if", region="us-east-1", endpoint_url=peer.url, target_model="2026-04.tar.gz")
    result = score_windows(features, feature_columns=FEATURES, record_id_col="host_ip", invoker=invoker, config=_config())
    assert (result.payloads, result.calls, result.retries, result.failed_payload_count) == (8, 10, 2, 0)
    assert len(peer.requests) == 10 and {r.target_model for r in peer.requests} == {"2026-04.tar.gz"}
    assertDataFrameEqual(result.scored.select("record_id", "prediction_score", "prediction_label"),
                         _expected(spark, bundle, rows), rtol=1e-15)


def test_over_http_a_failing_payload_is_reported_by_id_and_the_rest_is_scored(spark, bundle, rows, features, peer):
    peer.poison = b'"10.0.0.21"'  # the second payload of the second partition: 10.0.0.19 .. 10.0.0.22
    invoker = SageMakerInvoker("ndr-if", region="us-east-1", endpoint_url=peer.url)
    result = score_windows(features, feature_columns=FEATURES, record_id_col="host_ip", invoker=invoker, config=_config())
    assert (result.payloads, result.calls, result.failed_payload_count, result.failed_records) == (8, 8, 1, 4)
    [failed] = result.failed_payloads
    assert (failed.payload_id, failed.records, failed.first_record_id) == ("p00001-000001", 4, "10.0.0.19")
    assert failed.error.startswith("endpoint 'ndr-if': ModelError (HTTP 424): Received client error (400) from model")
    assertDataFrameEqual(result.scored.select("record_id", "prediction_score", "prediction_label"),
                         _expected(spark, bundle, rows, drop={f"10.0.0.{i}" for i in range(19, 23)}), rtol=1e-15)

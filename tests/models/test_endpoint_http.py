"""The endpoint client against a loopback InvokeEndpoint peer, through the real boto3 client."""

from __future__ import annotations

import json
import pickle

import pytest

from ndr_assets.models import serving
from ndr_assets.models.payloads import build_payloads
from ndr_resources.model_endpoint import (
    InProcessInvoker,
    InProcessModelEndpoint,
    InvokeError,
    RetryableInvokeError,
    SageMakerInvoker,
    SageMakerModelEndpoint,
    invoke_with_retries,
)
from ndr_resources.model_specs import EndpointConfig
from tests.models.bundles import FEATURES, make_bundle, training_rows, write_bundle
from tests.models.sagemaker_peer import SageMakerPeer
from tests.moto_server import FAKE_AWS_ENV

JSON = "application/json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    return write_bundle(str(tmp_path_factory.mktemp("model")), make_bundle())


@pytest.fixture
def peer(model_dir, monkeypatch):
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    server = SageMakerPeer(model_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def body() -> bytes:
    import pandas as pd

    frame = pd.DataFrame(training_rows(5), columns=FEATURES)
    frame.insert(0, "record_id", [f"r{i}" for i in range(5)])
    [payload] = build_payloads(frame, record_id_col="record_id", feature_columns=FEATURES, content_type=JSON,
                               max_records=10, max_bytes=10**6)
    return payload.body


def _client(peer, **kwargs) -> SageMakerInvoker:
    return SageMakerInvoker("ndr-if", region="us-east-1", endpoint_url=peer.url, **kwargs)


def test_throttling_and_a_500_are_retried_then_scored(peer, model_dir, body):
    peer.script[:] = ["throttle", "500"]
    outcome = invoke_with_retries(_client(peer, target_model="2026-04/model.tar.gz"), body, JSON, JSON,
                                  max_retries=2, backoff_seconds=0.01)
    assert outcome.attempts == 3
    assert outcome.body == InProcessInvoker(model_dir).invoke(body, JSON, JSON)
    assert [p["record_id"] for p in serving.parse_predictions(outcome.body, JSON)] == [f"r{i}" for i in range(5)]
    assert len(peer.requests) == 3
    for request in peer.requests:
        assert request.path == "/endpoints/ndr-if/invocations"
        assert (request.content_type, request.accept) == (JSON, JSON)
        assert request.target_model == "2026-04/model.tar.gz"
        assert request.body_bytes == len(body)


def test_too_few_retries_fail_naming_the_endpoint_and_the_last_error(peer, body):
    peer.script[:] = ["throttle", "500", "throttle"]
    with pytest.raises(InvokeError, match=r"gave up after 2 attempt\(s\) \(max_retries=1\): endpoint 'ndr-if': "
                                          r"InternalFailure \(HTTP 500\): try again") as failure:
        invoke_with_retries(_client(peer), body, JSON, JSON, max_retries=1, backoff_seconds=0.01)
    assert failure.value.attempts == 2 and not isinstance(failure.value, RetryableInvokeError)
    assert peer.requests[0].target_model is None  # no TargetModel header unless one is set


def test_throttling_is_retryable_with_its_code(peer, body):
    peer.script[:] = ["throttle"]
    with pytest.raises(RetryableInvokeError, match=r"endpoint 'ndr-if': ThrottlingException \(HTTP 400\): Rate exceeded"):
        _client(peer).invoke(body, JSON, JSON)


def test_a_model_error_is_not_retried(peer, body):
    peer.poison = b'"r3"'
    with pytest.raises(InvokeError, match=r"endpoint 'ndr-if': ModelError \(HTTP 424\)") as failure:
        invoke_with_retries(_client(peer), body, JSON, JSON, max_retries=5, backoff_seconds=0.01)
    assert failure.value.attempts == 1 and len(peer.requests) == 1


def test_a_read_timeout_is_retryable(peer, body):
    peer.script[:] = ["slow"]
    peer.slow_seconds = 0.6
    with pytest.raises(RetryableInvokeError, match=r"ReadTimeoutError"):
        _client(peer, timeout_seconds=0.2).invoke(body, JSON, JSON)


def test_the_invoker_pickles_without_its_client_and_works_after(peer, body):
    invoker = _client(peer)
    invoker.invoke(body, JSON, JSON)
    assert invoker._client is not None
    shipped = pickle.loads(pickle.dumps(invoker))
    assert shipped._client is None and shipped.endpoint_name == "ndr-if"
    assert json.loads(shipped.invoke(body, JSON, JSON))["predictions"][0]["record_id"] == "r0"


class _Flaky:
    """An invoker that fails retryably ``failures`` times, then echoes."""

    def __init__(self, failures: int):
        self.failures = failures

    def invoke(self, body: bytes, content_type: str, accept: str) -> bytes:
        if self.failures:
            self.failures -= 1
            raise RetryableInvokeError("busy")
        return body


def test_backoff_is_exponential_with_full_jitter():
    waits: list[float] = []
    outcome = invoke_with_retries(_Flaky(3), b"x", JSON, JSON, max_retries=3, backoff_seconds=1.5,
                                  rng=lambda: 0.5, sleep=waits.append)
    assert (outcome.body, outcome.attempts) == (b"x", 4)
    assert waits == [0.75, 1.5, 3.0]  # 0.5 * 1.5 * 2**(n-1)
    waits.clear()
    invoke_with_retries(_Flaky(1), b"x", JSON, JSON, max_retries=1, backoff_seconds=100, rng=lambda: 1.0,
                        sleep=waits.append)
    assert waits == [30.0]  # capped at MAX_BACKOFF_SECONDS


def test_in_process_invoker_turns_a_bad_request_into_an_invoke_error(model_dir):
    with pytest.raises(InvokeError, match=r"refused the request: request lacks feature column\(s\) \['distinct_ports'\]"):
        InProcessInvoker(model_dir).invoke(b"record_id,bytes_out,sessions,distinct_peers\nr,1,2,3\n", "text/csv", JSON)


def test_resources_choose_and_configure_the_invoker(model_dir):
    config = EndpointConfig(endpoint_name="ndr-if", timeout_seconds=12, region="eu-west-1")
    assert InProcessModelEndpoint().invoker(config, model_dir=model_dir) == InProcessInvoker(model_dir)
    with pytest.raises(ValueError, match=r"in-process endpoint 'ndr-if' needs model_dir"):
        InProcessModelEndpoint().invoker(config)
    invoker = SageMakerModelEndpoint(endpoint_url="http://127.0.0.1:1").invoker(config, target_model="m.tar.gz")
    assert (invoker.endpoint_name, invoker.region, invoker.endpoint_url, invoker.timeout_seconds, invoker.target_model) == (
        "ndr-if", "eu-west-1", "http://127.0.0.1:1", 12, "m.tar.gz")
    assert SageMakerModelEndpoint(region_name="us-west-2").invoker(config).region == "us-west-2"

"""Calling a model: the invokers (in process, SageMaker runtime) and the retry policy.

No dagster import: Spark's Python workers unpickle these classes to score, and a worker that
imported dagster would pay seconds of start-up for nothing. The Dagster resources that hand
invokers out live in :mod:`ndr_resources.model_endpoint`.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ndr_resources.errors import NdrError

# Longest single wait between attempts, whatever the attempt number (keeps max_retries=20 sane).
MAX_BACKOFF_SECONDS = 30.0


class InvokeError(NdrError):
    """The endpoint refused or failed a request in a way retrying will not fix (4xx, ModelError),
    or every allowed attempt failed. ``attempts`` counts the calls made."""

    def __init__(self, message: str, *, attempts: int = 1):
        self.attempts = attempts
        super().__init__(message)


class RetryableInvokeError(InvokeError):
    """A failure that may pass on its own: throttling, a 5xx, a timeout, a dropped connection."""


@runtime_checkable
class Invoker(Protocol):
    def invoke(self, body: bytes, content_type: str, accept: str) -> bytes:
        """The response body, or :class:`InvokeError` / :class:`RetryableInvokeError`."""
        ...


@dataclass(frozen=True)
class InvokeOutcome:
    body: bytes
    attempts: int


def invoke_with_retries(invoker: Invoker, body: bytes, content_type: str, accept: str, *, max_retries: int,
                        backoff_seconds: float, rng: Callable[[], float] = random.random,
                        sleep: Callable[[float], None] = time.sleep) -> InvokeOutcome:
    """Call ``invoker`` up to ``1 + max_retries`` times while it raises :class:`RetryableInvokeError`.

    Before retry n (1-based) it waits ``rng() * min(MAX_BACKOFF_SECONDS, backoff_seconds * 2**(n-1))``:
    full jitter, so workers throttled together do not retry together. A non-retryable error is
    raised at once; when the retries run out an :class:`InvokeError` says how many attempts failed
    and why the last one did.
    """
    for attempt in range(1, max_retries + 2):
        try:
            return InvokeOutcome(invoker.invoke(body, content_type, accept), attempt)
        except RetryableInvokeError as exc:
            if attempt > max_retries:
                raise InvokeError(f"gave up after {attempt} attempt(s) (max_retries={max_retries}): {exc}",
                                  attempts=attempt) from exc
            sleep(rng() * min(MAX_BACKOFF_SECONDS, backoff_seconds * 2 ** (attempt - 1)))
        except InvokeError as exc:
            exc.attempts = attempt
            raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- in process

_BUNDLES: dict[str, dict] = {}
_BUNDLES_LOCK = threading.Lock()


def _cached_bundle(model_dir: str) -> dict:
    """The bundle of ``model_dir``, loaded once per process (the scoring threads share it)."""
    from ndr_assets.models import serving

    key = os.path.realpath(model_dir)
    with _BUNDLES_LOCK:
        if key not in _BUNDLES:
            _BUNDLES[key] = serving.model_fn(key)
        return _BUNDLES[key]


@dataclass(frozen=True)
class InProcessInvoker:
    """The serving functions called in this process, as SageMaker's container calls them."""

    model_dir: str

    def invoke(self, body: bytes, content_type: str, accept: str) -> bytes:
        from ndr_assets.models import serving

        bundle = _cached_bundle(self.model_dir)
        try:
            frame = serving.input_fn(body, content_type)
            response, _ = serving.output_fn(serving.predict_fn(frame, bundle), accept)
        except ValueError as exc:  # what the container answers with a 4xx: the request is wrong
            raise InvokeError(f"model in {self.model_dir} refused the request: {exc}") from exc
        return response.encode()


# ---------------------------------------------------------------- SageMaker runtime

# Error codes SageMaker runtime (or its front door) answers for a condition that passes on its own.
RETRYABLE_ERROR_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ModelNotReadyException",
    "ServiceUnavailable", "InternalFailure", "InternalDependencyException", "RequestTimeout",
})


@dataclass
class SageMakerInvoker:
    """SageMaker runtime ``InvokeEndpoint`` (``TargetModel`` set when the endpoint hosts many models).

    Credentials come from the default chain of whichever process calls (on SageMaker Processing
    executors: the job's role); they are never part of the pickled invoker.
    """

    endpoint_name: str
    region: str | None = None
    endpoint_url: str | None = None
    timeout_seconds: float = 60.0
    target_model: str | None = None
    _client: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        # The client and lock belong to one process; the receiving worker makes its own.
        state = dict(self.__dict__)
        state["_client"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=min(10.0, self.timeout_seconds),
                    read_timeout=self.timeout_seconds,
                    retries={"total_max_attempts": 1},  # invoke_with_retries counts and paces retries
                    max_pool_connections=64,  # one per scoring thread (EndpointConfig.max_workers <= 64)
                )
                self._client = boto3.session.Session().client(
                    "sagemaker-runtime", region_name=self.region, endpoint_url=self.endpoint_url, config=config)
            return self._client

    def invoke(self, body: bytes, content_type: str, accept: str) -> bytes:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        request = {"EndpointName": self.endpoint_name, "Body": body, "ContentType": content_type, "Accept": accept}
        if self.target_model:
            request["TargetModel"] = self.target_model
        where = f"endpoint {self.endpoint_name!r}" + (f" model {self.target_model!r}" if self.target_model else "")
        try:
            response = self.client().invoke_endpoint(**request)
            return response["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            message = f"{where}: {code or 'error'} (HTTP {status}): {error.get('Message', '')}".rstrip(": ")
            if code in RETRYABLE_ERROR_CODES or status == 429 or status >= 500:
                raise RetryableInvokeError(message) from exc
            raise InvokeError(message) from exc
        except (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError) as exc:
            raise RetryableInvokeError(f"{where}: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------- resources

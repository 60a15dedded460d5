"""The model endpoint: one call = one request body scored by a month's model.

- :class:`InProcessInvoker` (embedded default) runs the serving functions of
  :mod:`ndr_assets.models.serving` in this process on an extracted ``model.tar.gz``.
- :class:`SageMakerInvoker` (production) sends the body to SageMaker runtime ``InvokeEndpoint``;
  on a multi-model endpoint ``target_model`` picks the month's archive.

Invokers are small picklable values: Spark ships them to executors inside the scoring function,
and each Python worker builds its boto3 client or loads its bundle once, on first use. Retries are
ours, not botocore's (:func:`invoke_with_retries`, exponential backoff with full jitter), so a
payload's attempts are counted and reported. The Dagster resources (:class:`ModelEndpoint`) only
choose and configure an invoker per environment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg

from ndr_resources.model_invokers import (
    InProcessInvoker,
    InvokeError,
    InvokeOutcome,
    Invoker,
    RetryableInvokeError,
    SageMakerInvoker,
    invoke_with_retries,
)
from ndr_resources.model_specs import EndpointConfig

__all__ = [
    "InProcessInvoker",
    "InProcessModelEndpoint",
    "InvokeError",
    "InvokeOutcome",
    "Invoker",
    "ModelEndpoint",
    "RetryableInvokeError",
    "SageMakerInvoker",
    "SageMakerModelEndpoint",
    "invoke_with_retries",
]


class ModelEndpoint(dg.ConfigurableResource, ABC):
    """Chooses the invoker of a month's model for an ``inference_predictions`` endpoint config."""

    @abstractmethod
    def invoker(self, config: EndpointConfig, *, model_dir: str | None = None,
                target_model: str | None = None) -> Invoker:
        """``model_dir``: the extracted ``model.tar.gz`` (in process only); ``target_model``: the
        archive a multi-model endpoint serves (SageMaker only)."""


class InProcessModelEndpoint(ModelEndpoint):
    """Embedded default: the trained artifact scored in this process (no network)."""

    def invoker(self, config: EndpointConfig, *, model_dir: str | None = None,
                target_model: str | None = None) -> Invoker:
        if not model_dir:
            raise ValueError(f"in-process endpoint {config.endpoint_name!r} needs model_dir, the folder of an "
                             "extracted model.tar.gz (model.joblib)")
        return InProcessInvoker(model_dir)


class SageMakerModelEndpoint(ModelEndpoint):
    """Production: SageMaker runtime ``InvokeEndpoint`` on ``config.endpoint_name``."""

    region_name: str | None = None
    endpoint_url: str | None = None

    def invoker(self, config: EndpointConfig, *, model_dir: str | None = None,
                target_model: str | None = None) -> Invoker:
        return SageMakerInvoker(config.endpoint_name, region=self.region_name or config.region,
                                endpoint_url=self.endpoint_url, timeout_seconds=config.timeout_seconds,
                                target_model=target_model)

"""Model registry and deployment (spec 001 ``pipeline_model_publish`` / ``_attributes`` / ``_deploy``).

One interface, :class:`ModelRegistry`, two implementations:

- :class:`LocalModelRegistry` (embedded default): a registry table of JSON lines in the lake
  (``<registry_uri>/model_packages.jsonl``, one line per version) and an endpoint table
  (``<registry_uri>/endpoints.jsonl``, one line per deployment; the last line of an endpoint is its
  current state). The in-process endpoint asks :meth:`LocalModelRegistry.endpoint` which archive to
  serve.
- :class:`SageMakerModelRegistry`: model package groups and versioned model packages
  (InferenceSpecification = image + ModelDataUrl), then CreateModel, CreateEndpointConfig and
  CreateEndpoint, or UpdateEndpoint when the endpoint exists (strategy ``create_or_update``).

Attributes (training window, features, metrics, data hashes) are recorded in full as a JSON document
(SageMaker: ModelMetrics.ModelQuality.Statistics in S3 next to the archive; local: the registry line)
and summarised within SageMaker's CustomerMetadataProperties limits by :func:`model_package_metadata`:
nested maps flatten to dotted keys; scalars are stringified; a value longer than 256 characters, or
holding characters SageMaker refuses there (commas, brackets, quotes...), becomes
``sha256=<16 hex> count=<items>`` (lists) or ``sha256=<16 hex> chars=<length>`` (text), hashed over its
canonical JSON so it can be checked against the document; at most 50 entries, so the largest top-level
groups are summarised the same way until they fit.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import dagster as dg

from ndr_resources.errors import NdrError
from ndr_resources.lake import join_uri, local_path_for, split_s3_uri
from ndr_resources.model_specs import Deployment

MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 256
MAX_RESOURCE_NAME = 63  # ModelName, EndpointConfigName, EndpointName
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
_METADATA_PUNCTUATION = set("_.:/=+-@")
_RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class RegistryError(NdrError, ValueError):
    """A model cannot be registered or deployed; the message names project, item and key."""

    def __init__(self, project: str, item: str, key: str, problem: str):
        self.project, self.item, self.key, self.problem = project, item, key, problem
        super().__init__(f"project '{project}', item '{item}', key '{key}': {problem}")


@dataclass(frozen=True)
class RegisteredModel:
    project: str
    model_package_group: str
    version: int  # the registry's version within the group: 1, 2, ...
    package_arn: str  # SageMaker model package ARN, or ``local:model-package/<group>/<version>``
    model_version: str  # the training spec's model.version
    archive_uri: str
    image_uri: str
    approval_status: str
    metadata: dict[str, str]  # what CustomerMetadataProperties holds
    attributes_uri: str | None = None


@dataclass(frozen=True)
class DeploymentRecord:
    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    action: str  # created | updated | unchanged
    package_arn: str
    version: int
    instance_type: str
    initial_instance_count: int
    archive_uri: str
    image_uri: str


# ---------------------------------------------------------------- attributes within SageMaker's limits


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()[:16]


def _metadata_text_ok(text: str) -> bool:
    # CustomerMetadataProperties pattern: [\p{L}\p{Z}\p{N}_.:\/=+\-@]*
    return all(unicodedata.category(ch)[0] in "LNZ" or ch in _METADATA_PUNCTUATION for ch in text)


def _summary(value: Any) -> str:
    if isinstance(value, list | tuple | set | dict):
        return f"sha256={_digest(sorted(value) if isinstance(value, set) else value)} count={len(value)}"
    return f"sha256={_digest(value)} chars={len(str(value))}"


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, list | tuple | set):
        items = [_metadata_value(v) for v in value]
        text = " ".join(items)
        if any(" " in i for i in items):
            return _summary(list(value))
    else:
        text = str(value)
    if not text or len(text) > MAX_METADATA_VALUE or not _metadata_text_ok(text):
        return _summary(value)
    return text


def _metadata_key(key: str) -> str:
    if len(key) <= MAX_METADATA_KEY and key and _metadata_text_ok(key):
        return key
    cleaned = "".join(ch if _metadata_text_ok(ch) else "_" for ch in key)
    return f"{cleaned[:MAX_METADATA_KEY - 17]}.{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value, key=str):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    else:
        out[prefix] = value


def model_package_metadata(project: str, model_version: str, attributes: dict[str, Any]) -> dict[str, str]:
    """CustomerMetadataProperties for ``attributes`` (see the module doc for the rules)."""
    groups = dict(attributes)
    while True:
        flat: dict[str, Any] = {}
        _flatten("", groups, flat)
        entries = {"ndr.project": project, "ndr.model_version": model_version,
                   "ndr.attributes_sha256": _digest(attributes), **flat}
        if len(entries) <= MAX_METADATA_ENTRIES:
            break
        nested = [k for k, v in groups.items() if isinstance(v, dict) and v]
        if not nested:
            raise RegistryError(project, "pipeline_model_attributes", "attributes",
                                f"{len(entries)} top-level attributes exceed SageMaker's {MAX_METADATA_ENTRIES} metadata entries")
        # The group with most entries becomes one summary entry (its full content stays in the document).
        largest = max(nested, key=lambda k: (sum(1 for f in flat if f == k or f.startswith(f"{k}.")), k))
        groups[largest] = _summary(groups[largest])
    return {_metadata_key(k): _metadata_value(v) for k, v in entries.items()}


def resource_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` as a SageMaker model / endpoint config name (63 chars, letters, digits, '-')."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-")
    cleaned = cleaned[: MAX_RESOURCE_NAME - len(suffix) - 1].rstrip("-")
    name = f"{cleaned}-{suffix}" if cleaned else suffix
    if not _RESOURCE_NAME.match(name):
        raise ValueError(f"cannot make a SageMaker resource name of {base!r} + {suffix!r}")
    return name


def deployment_names(deployment: Deployment, registered: RegisteredModel, archive_uri: str, image_uri: str) -> tuple[str, str]:
    """(model name, endpoint config name): a new pair whenever what the endpoint would serve changes.

    The hash covers the package, archive, image and capacity, so redeploying the same thing reuses
    the same resources (idempotent) and any change gets a fresh config to update the endpoint to.
    """
    digest = _digest([registered.package_arn, archive_uri, image_uri, deployment.instance_type,
                      deployment.initial_instance_count])[:8]
    suffix = f"v{registered.version}-{digest}"
    model = resource_name(registered.model_package_group, suffix)
    config = resource_name(deployment.endpoint_config_name or deployment.endpoint_name or registered.model_package_group, suffix)
    return model, config


def _require_endpoint(project: str, deployment: Deployment) -> str:
    if not deployment.endpoint_name:
        raise RegistryError(project, "pipeline_model_deploy", "deployment.endpoint_name", "deploying needs an endpoint name")
    if not _RESOURCE_NAME.match(deployment.endpoint_name):
        raise RegistryError(project, "pipeline_model_deploy", "deployment.endpoint_name",
                            f"{deployment.endpoint_name!r} is not a valid SageMaker endpoint name (63 letters, digits, '-')")
    return deployment.endpoint_name


def _check_registration(project: str, group: str, archive_uri: str, approval_status: str) -> None:
    if not _RESOURCE_NAME.match(group):
        raise RegistryError(project, "pipeline_model_publish", "model_package_group",
                            f"{group!r} is not a valid model package group name (63 letters, digits, '-')")
    if not archive_uri.startswith("s3://") or not archive_uri.endswith(".tar.gz"):
        raise RegistryError(project, "pipeline_model_publish", "archive_uri", f"{archive_uri!r} is not an s3:// model.tar.gz")
    if approval_status not in APPROVAL_STATUSES:
        raise RegistryError(project, "pipeline_model_publish", "approval_status", f"{approval_status!r} not in {APPROVAL_STATUSES}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the interface


class ModelRegistry(dg.ConfigurableResource, ABC):
    """Registers trained model archives as versions of a package group and deploys them to endpoints."""

    @abstractmethod
    def register(self, *, project: str, model_package_group: str, model_version: str, archive_uri: str, image_uri: str,
                 attributes: dict[str, Any], approval_status: str = "Approved") -> RegisteredModel: ...

    @abstractmethod
    def versions(self, *, project: str, model_package_group: str) -> list[RegisteredModel]:
        """Every registered version of the group, oldest first."""

    @abstractmethod
    def attributes(self, registered: RegisteredModel) -> dict[str, Any]:
        """The full attributes recorded with ``registered``."""

    @abstractmethod
    def deploy(self, *, deployment: Deployment, registered: RegisteredModel, archive_uri: str, image_uri: str,
               execution_role_arn: str) -> DeploymentRecord: ...

    @abstractmethod
    def endpoint(self, endpoint_name: str) -> dict[str, Any] | None:
        """What the endpoint serves now (``EndpointConfigName``, ``EndpointStatus``...), or None if it does not exist."""


# ---------------------------------------------------------------- embedded default


class LocalModelRegistry(ModelRegistry):
    """Registry and endpoint tables as JSON lines under ``registry_uri`` in the local lake."""

    lake_root: str
    registry_uri: str  # s3:// prefix of the registry tables, e.g. s3://<models-bucket>/registry

    def _path(self, name: str) -> Any:
        return local_path_for(join_uri(self.registry_uri, name), self.lake_root)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Two runs registering at once must not both take version N: read-append under one file lock.
        lock = self._path(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = self._path(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _append(self, name: str, line: dict[str, Any]) -> None:
        with self._path(name).open("a") as handle:
            handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
            handle.flush()

    @staticmethod
    def _registered(line: dict[str, Any]) -> RegisteredModel:
        return RegisteredModel(**{k: line[k] for k in RegisteredModel.__dataclass_fields__})

    def register(self, *, project: str, model_package_group: str, model_version: str, archive_uri: str, image_uri: str,
                 attributes: dict[str, Any], approval_status: str = "Approved") -> RegisteredModel:
        _check_registration(project, model_package_group, archive_uri, approval_status)
        if not local_path_for(archive_uri, self.lake_root).is_file():
            raise RegistryError(project, "pipeline_model_publish", "archive_uri", f"{archive_uri} does not exist in the lake")
        metadata = model_package_metadata(project, model_version, attributes)
        with self._locked():
            version = 1 + sum(1 for line in self._lines("model_packages.jsonl") if line["model_package_group"] == model_package_group)
            registered = RegisteredModel(project, model_package_group, version, f"local:model-package/{model_package_group}/{version}",
                                         model_version, archive_uri, image_uri, approval_status, metadata,
                                         join_uri(self.registry_uri, "model_packages.jsonl"))
            self._append("model_packages.jsonl", {**asdict(registered), "attributes": attributes, "created_at": _now()})
        return registered

    def versions(self, *, project: str, model_package_group: str) -> list[RegisteredModel]:
        return [self._registered(line) for line in self._lines("model_packages.jsonl")
                if line["model_package_group"] == model_package_group and line["project"] == project]

    def attributes(self, registered: RegisteredModel) -> dict[str, Any]:
        for line in self._lines("model_packages.jsonl"):
            if line["package_arn"] == registered.package_arn:
                return line["attributes"]
        raise RegistryError(registered.project, "pipeline_model_attributes", "package_arn", f"{registered.package_arn} is not registered")

    def endpoint(self, endpoint_name: str) -> dict[str, Any] | None:
        current = None
        for line in self._lines("endpoints.jsonl"):
            if line["endpoint_name"] == endpoint_name:
                current = line
        return current

    def deploy(self, *, deployment: Deployment, registered: RegisteredModel, archive_uri: str, image_uri: str,
               execution_role_arn: str) -> DeploymentRecord:
        endpoint_name = _require_endpoint(registered.project, deployment)
        model_name, config_name = deployment_names(deployment, registered, archive_uri, image_uri)
        with self._locked():
            current = self.endpoint(endpoint_name)
            if current is None:
                action = "created"
            elif current["endpoint_config_name"] == config_name:
                action = "unchanged"
            else:
                action = "updated"
            record = DeploymentRecord(endpoint_name, config_name, model_name, action, registered.package_arn, registered.version,
                                      deployment.instance_type, deployment.initial_instance_count, archive_uri, image_uri)
            if action != "unchanged":
                self._append("endpoints.jsonl", {**asdict(record), "EndpointConfigName": config_name, "EndpointStatus": "InService",
                                                 "execution_role_arn": execution_role_arn, "deployed_at": _now()})
        return record


# ---------------------------------------------------------------- SageMaker


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _not_found(exc: Exception) -> bool:
    # SageMaker answers Describe* of a missing model / config / endpoint / group with ValidationException.
    return _error_code(exc) in ("ValidationException", "ResourceNotFound") and (
        "not find" in str(exc) or "not exist" in str(exc) or "not found" in str(exc))


class SageMakerModelRegistry(ModelRegistry):
    """SageMaker Model Registry and real-time endpoints through boto3."""

    region_name: str | None = None
    endpoint_url: str | None = None  # moto in tests
    s3_endpoint_url: str | None = None  # where the attributes document goes; defaults to endpoint_url (moto serves both)

    def _client(self, service: str = "sagemaker") -> Any:
        import boto3

        url = self.endpoint_url if service == "sagemaker" else (self.s3_endpoint_url or self.endpoint_url)
        return boto3.client(service, region_name=self.region_name, endpoint_url=url)

    def _ensure_group(self, client: Any, project: str, group: str) -> None:
        from botocore.exceptions import ClientError

        try:
            client.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            client.create_model_package_group(ModelPackageGroupName=group,
                                              ModelPackageGroupDescription=f"NDR models of project {project}"[:1024])

    def register(self, *, project: str, model_package_group: str, model_version: str, archive_uri: str, image_uri: str,
                 attributes: dict[str, Any], approval_status: str = "Approved") -> RegisteredModel:
        from botocore.exceptions import ClientError

        _check_registration(project, model_package_group, archive_uri, approval_status)
        s3 = self._client("s3")
        bucket, key = split_s3_uri(archive_uri)
        try:
            # A version whose archive is missing would only fail later, when an endpoint tries to load it.
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise RegistryError(project, "pipeline_model_publish", "archive_uri", f"{archive_uri} cannot be read: {exc}") from exc
        metadata = model_package_metadata(project, model_version, attributes)
        document = json.dumps({"project": project, "model_version": model_version, "attributes": attributes},
                              sort_keys=True, indent=1, default=str).encode("utf-8")
        attributes_uri = join_uri(archive_uri.rsplit("/", 1)[0], f"model_attributes-{hashlib.sha256(document).hexdigest()[:12]}.json")
        bucket, key = split_s3_uri(attributes_uri)
        s3.put_object(Bucket=bucket, Key=key, Body=document, ContentType="application/json")
        client = self._client()
        self._ensure_group(client, project, model_package_group)
        response = client.create_model_package(
            ModelPackageGroupName=model_package_group,
            ModelPackageDescription=f"{project} {model_version}"[:1024],
            InferenceSpecification={
                "Containers": [{"Image": image_uri, "ModelDataUrl": archive_uri}],
                "SupportedContentTypes": ["application/json", "text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=approval_status,
            CustomerMetadataProperties=metadata,
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": attributes_uri}}},
        )
        described = client.describe_model_package(ModelPackageName=response["ModelPackageArn"])
        return RegisteredModel(project, model_package_group, int(described["ModelPackageVersion"]), response["ModelPackageArn"],
                               model_version, archive_uri, image_uri, approval_status, metadata, attributes_uri)

    def versions(self, *, project: str, model_package_group: str) -> list[RegisteredModel]:
        client = self._client()
        out = []
        for page in client.get_paginator("list_model_packages").paginate(ModelPackageGroupName=model_package_group,
                                                                            SortBy="CreationTime", SortOrder="Ascending"):
            for summary in page["ModelPackageSummaryList"]:
                described = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
                container = described["InferenceSpecification"]["Containers"][0]
                metadata = described.get("CustomerMetadataProperties", {})
                if metadata.get("ndr.project", project) != project:
                    continue
                stats = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
                out.append(RegisteredModel(project, model_package_group, int(described["ModelPackageVersion"]),
                                           described["ModelPackageArn"], metadata.get("ndr.model_version", ""),
                                           container["ModelDataUrl"], container["Image"], described["ModelApprovalStatus"],
                                           metadata, stats.get("S3Uri")))
        return sorted(out, key=lambda r: r.version)

    def attributes(self, registered: RegisteredModel) -> dict[str, Any]:
        if not registered.attributes_uri:
            raise RegistryError(registered.project, "pipeline_model_attributes", "ModelMetrics",
                                f"{registered.package_arn} records no attributes document")
        bucket, key = split_s3_uri(registered.attributes_uri)
        return json.loads(self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())["attributes"]

    def endpoint(self, endpoint_name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._client().describe_endpoint(EndpointName=endpoint_name)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def deploy(self, *, deployment: Deployment, registered: RegisteredModel, archive_uri: str, image_uri: str,
               execution_role_arn: str) -> DeploymentRecord:
        from botocore.exceptions import ClientError

        endpoint_name = _require_endpoint(registered.project, deployment)
        model_name, config_name = deployment_names(deployment, registered, archive_uri, image_uri)
        client = self._client()
        try:
            client.describe_model(ModelName=model_name)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            client.create_model(ModelName=model_name, ExecutionRoleArn=execution_role_arn,
                                PrimaryContainer={"Image": image_uri, "ModelDataUrl": archive_uri})
        try:
            client.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            client.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": model_name, "InstanceType": deployment.instance_type,
                "InitialInstanceCount": deployment.initial_instance_count, "InitialVariantWeight": 1.0}])
        current = self.endpoint(endpoint_name)
        try:
            if current is None:
                client.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
                action = "created"
            elif current["EndpointConfigName"] == config_name:
                action = "unchanged"
            else:
                # SageMaker swaps configs blue/green: the old config serves until the new one is InService.
                client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
                action = "updated"
        except ClientError as exc:
            raise RegistryError(registered.project, "pipeline_model_deploy", "deployment.endpoint_name",
                                f"deploying {endpoint_name!r} to config {config_name!r} failed: {exc}") from exc
        return DeploymentRecord(endpoint_name, config_name, model_name, action, registered.package_arn, registered.version,
                                deployment.instance_type, deployment.initial_instance_count, archive_uri, image_uri)

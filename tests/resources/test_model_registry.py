"""One registry contract, two backends: JSON lines in the local lake and SageMaker (moto's server over HTTP)."""

from __future__ import annotations

import uuid

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters

from ndr_resources.model_registry import (
    LocalModelRegistry,
    ModelRegistry,
    RegistryError,
    SageMakerModelRegistry,
    model_package_metadata,
    resource_name,
)
from ndr_resources.model_specs import Deployment

PROJECT = "ndr-acme"
BUCKET = "ndr-acme-models"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/ndr-sagemaker-execution"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")

ATTRIBUTES = {
    "training_window": {"start": "2026-01-01", "end": "2026-04-30", "lookback_months": 4, "gap_months": 1},
    "features": [f"f{i}" for i in range(300)],  # "f0 f1 ... f299" is 1,389 characters: summarised
    "metrics": {"score_p99": 0.6172, "train_rows": 1_234_567},
    "data_hashes": {"fg_a": "3f2a9c", "fg_c": "77b0e1"},
    "threshold_rule": "score >= p99, per window (train)",  # commas and parentheses are refused by SageMaker
}


ARCHIVES = [f"if_training/{month}/model.tar.gz" for month in ("2026-05-01", "2026-06-01", "v1")]


def _moto_bucket(endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    for key in ARCHIVES:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"archive")


@pytest.fixture(params=["local", "sagemaker"])
def registry(request, tmp_path) -> ModelRegistry:
    if request.param == "local":
        for key in ARCHIVES:
            (tmp_path / BUCKET / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / BUCKET / key).write_bytes(b"archive")
        return LocalModelRegistry(lake_root=str(tmp_path), registry_uri=f"s3://{BUCKET}/registry")
    endpoint = request.getfixturevalue("moto_endpoint")
    _moto_bucket(endpoint)
    return SageMakerModelRegistry(region_name="us-east-1", endpoint_url=endpoint)


def _group() -> str:
    return f"ndr-acme-if-{uuid.uuid4().hex[:6]}"  # fresh per test on the shared moto server


def _register(registry, group, month):
    return registry.register(project=PROJECT, model_package_group=group, model_version=month,
                             archive_uri=f"s3://{BUCKET}/if_training/{month}/model.tar.gz", image_uri=IMAGE,
                             attributes=ATTRIBUTES)


def test_metadata_respects_sagemaker_limits():
    metadata = model_package_metadata(PROJECT, "2026-06-01", ATTRIBUTES)
    validate_parameters({"ModelPackageGroupName": "g", "CustomerMetadataProperties": metadata},
                        SAGEMAKER.operation_model("CreateModelPackage").input_shape)
    assert metadata["ndr.project"] == "ndr-acme"
    assert metadata["ndr.model_version"] == "2026-06-01"
    assert metadata["training_window.start"] == "2026-01-01"
    assert metadata["training_window.lookback_months"] == "4"
    assert metadata["metrics.score_p99"] == "0.6172"
    assert metadata["data_hashes.fg_c"] == "77b0e1"
    assert metadata["features"].startswith("sha256=") and metadata["features"].endswith(" count=300")
    assert metadata["threshold_rule"].endswith(" chars=32")
    assert len(metadata) == 3 + 4 + 1 + 2 + 2 + 1  # ndr.*, window, features, metrics, hashes, rule
    short = model_package_metadata(PROJECT, "v1", {"features": ["a", "b"]})
    assert short["features"] == "a b"


def test_too_many_metadata_entries_summarise_the_largest_group():
    wide = {"metrics": {f"m{i}": i for i in range(60)}, "data_hashes": {"fg_a": "3f2a9c"}}
    metadata = model_package_metadata(PROJECT, "v1", wide)
    assert metadata["metrics"].endswith(" count=60")
    assert metadata["data_hashes.fg_a"] == "3f2a9c"
    assert len(metadata) == 5
    with pytest.raises(RegistryError, match=r"project 'ndr-acme', item 'pipeline_model_attributes', key 'attributes'"):
        model_package_metadata(PROJECT, "v1", {f"k{i}": i for i in range(60)})


def test_resource_names_fit_sagemaker():
    assert resource_name("ndr_acme.if", "v2-0a1b2c3d") == "ndr-acme-if-v2-0a1b2c3d"
    long = resource_name("x" * 80, "v12-0a1b2c3d")
    assert long == "x" * 50 + "-v12-0a1b2c3d" and len(long) == 63


def test_register_twice_gives_two_versions_with_their_attributes(registry):
    group = _group()
    first = _register(registry, group, "2026-05-01")
    second = _register(registry, group, "2026-06-01")
    assert (first.version, second.version) == (1, 2)
    assert first.package_arn != second.package_arn
    assert [(v.version, v.model_version, v.archive_uri) for v in registry.versions(project=PROJECT, model_package_group=group)] == [
        (1, "2026-05-01", f"s3://{BUCKET}/if_training/2026-05-01/model.tar.gz"),
        (2, "2026-06-01", f"s3://{BUCKET}/if_training/2026-06-01/model.tar.gz"),
    ]
    assert registry.attributes(second) == ATTRIBUTES
    assert second.metadata["ndr.model_version"] == "2026-06-01"
    if isinstance(registry, SageMakerModelRegistry):
        assert second.package_arn == f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/2"


def test_invalid_registration_fails_naming_the_key(registry):
    with pytest.raises(RegistryError, match=r"item 'pipeline_model_publish', key 'archive_uri'.*not an s3:// model.tar.gz"):
        registry.register(project=PROJECT, model_package_group=_group(), model_version="v1",
                          archive_uri=f"s3://{BUCKET}/if/model.pkl", image_uri=IMAGE, attributes={})
    with pytest.raises(RegistryError, match=r"project 'ndr-acme', item 'pipeline_model_publish', key 'archive_uri': "
                                            r"s3://ndr-acme-models/if_training/2026-07-01/model.tar.gz"):
        _register(registry, _group(), "2026-07-01")  # no such archive
    with pytest.raises(RegistryError, match=r"key 'model_package_group'"):
        _register(registry, "ndr_acme_if", "v1")
    with pytest.raises(RegistryError, match=r"key 'deployment.endpoint_name'"):
        registry.deploy(deployment=Deployment(), registered=_register(registry, _group(), "v1"),
                        archive_uri=f"s3://{BUCKET}/if_training/v1/model.tar.gz", image_uri=IMAGE, execution_role_arn=ROLE)


def _deploy(registry, endpoint, registered):
    return registry.deploy(deployment=Deployment(deploy_on_success=True, endpoint_name=endpoint, instance_type="ml.m5.xlarge"),
                           registered=registered, archive_uri=registered.archive_uri, image_uri=IMAGE, execution_role_arn=ROLE)


def test_deploy_creates_the_endpoint_with_its_config(registry):
    group, endpoint = _group(), f"ndr-acme-if-{uuid.uuid4().hex[:6]}"
    first = _register(registry, group, "2026-05-01")
    assert registry.endpoint(endpoint) is None
    created = _deploy(registry, endpoint, first)
    assert created.action == "created"
    assert created.endpoint_config_name.startswith(f"{endpoint}-v1-")
    assert registry.endpoint(endpoint)["EndpointConfigName"] == created.endpoint_config_name
    assert _deploy(registry, endpoint, first).action == "unchanged"  # same package, same capacity: nothing to do
    if isinstance(registry, SageMakerModelRegistry):
        client = boto3.client("sagemaker", endpoint_url=registry.endpoint_url, region_name="us-east-1")
        variant = client.describe_endpoint_config(EndpointConfigName=created.endpoint_config_name)["ProductionVariants"][0]
        assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
            created.model_name, "ml.m5.xlarge", 1)
        container = client.describe_model(ModelName=created.model_name)["PrimaryContainer"]
        assert container["ModelDataUrl"] == f"s3://{BUCKET}/if_training/2026-05-01/model.tar.gz"


def _deploy_a_new_version(registry):
    group, endpoint = _group(), f"ndr-acme-if-{uuid.uuid4().hex[:6]}"
    created = _deploy(registry, endpoint, _register(registry, group, "2026-05-01"))
    updated = _deploy(registry, endpoint, _register(registry, group, "2026-06-01"))
    return endpoint, created, updated


def test_deploy_again_updates_the_endpoint_to_a_new_config(request, registry):
    if isinstance(registry, SageMakerModelRegistry):
        request.applymarker(pytest.mark.xfail(strict=True, raises=RegistryError,
                                              reason="moto 5.2.5 does not implement UpdateEndpoint (HTTP 500)"))
    endpoint, created, updated = _deploy_a_new_version(registry)
    assert updated.action == "updated"
    assert updated.endpoint_config_name.startswith(f"{endpoint}-v2-")
    assert updated.endpoint_config_name != created.endpoint_config_name
    assert registry.endpoint(endpoint)["EndpointConfigName"] == updated.endpoint_config_name


def test_sagemaker_update_sends_a_valid_update_endpoint_request(moto_endpoint):
    """What moto cannot answer, botocore can check: the UpdateEndpoint call made on a redeploy."""
    registry = SageMakerModelRegistry(region_name="us-east-1", endpoint_url=moto_endpoint)
    _moto_bucket(moto_endpoint)
    sent: list[tuple[str, dict]] = []
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION  # the registry's boto3.client() calls create their clients from it
    # botocore's own event on every call of this session's clients: records what is sent, changes nothing
    session.events.register("provide-client-params.sagemaker.UpdateEndpoint",
                            lambda params, model, **_: sent.append((model.name, dict(params))))
    try:
        with pytest.raises(RegistryError, match=r"deploying 'ndr-acme-if-.*' to config .* failed: .*UpdateEndpoint"):
            _deploy_a_new_version(registry)
    finally:
        session.events.unregister("provide-client-params.sagemaker.UpdateEndpoint")
    assert len(sent) == 1
    name, params = sent[0]
    validate_parameters(params, SAGEMAKER.operation_model(name).input_shape)
    assert params["EndpointConfigName"].startswith(params["EndpointName"] + "-v2-")

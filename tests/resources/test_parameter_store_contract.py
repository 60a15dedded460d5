"""One contract, two backends: SQLite (embedded) and DynamoDB (moto server over HTTP)."""

from __future__ import annotations

import uuid

import pytest

from ndr_resources.errors import SpecError
from ndr_resources.parameter_store import (
    DynamoDBParameterStore,
    ParameterStore,
    SqliteParameterStore,
    resolve_parameters_table_name,
    versioned_job_key,
)
from ndr_resources.specs import DeltaBuilderSpec, RoutingRecord

PROJECT = "ndr-acme"


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path) -> ParameterStore:
    if request.param == "sqlite":
        backend: ParameterStore = SqliteParameterStore(path=str(tmp_path / "nested" / "parameters.sqlite"))
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        suffix = uuid.uuid4().hex[:8]  # fresh tables per test on the shared server
        backend = DynamoDBParameterStore(
            table_name=f"params_{suffix}",
            routing_table_name=f"routing_{suffix}",
            region_name="us-east-1",
            endpoint_url=endpoint,
        )
    backend.create_tables()
    backend.create_tables()  # idempotent
    return backend


def _item(job_key: str, spec: dict, project: str = PROJECT, **extra) -> dict:
    return {"project_name": project, "job_name": job_key, "spec": spec, **extra}


def _delta_spec(version: str = "v1", **overrides) -> dict:
    spec = {
        "project_name": PROJECT,
        "job_name": "delta_builder",
        "feature_spec_version": version,
        "input": {"s3_prefix": "s3://lake/paloalto/acme/finance/", "format": "jsonl"},
        "output": {"s3_prefix": f"s3://lake/projects/{PROJECT}/versions/{version}/data/features/delta/"},
    }
    spec.update(overrides)
    return spec


def test_item_round_trips_exactly(store):
    item = _item(
        "fg_c_builder#v1",
        {
            "fg_a_input": {"s3_prefix": "s3://b/fg_a/"},
            "horizons": ["7d", "30d"],
            "eps": 1e-6,
            "z_max": 6.5,
            "rate": 0.05,
            "negative": -2.25,
            "support_min": 3,
            "big": 2**53 + 1,
            "flags": {"enabled": True, "dry_run": False},
            "nested": [{"a": [1, 2.5, {"b": "c"}]}, []],
            "empty": {},
        },
        owner="ndr-team",
        updated_at="2025-01-01T00:00:00Z",
    )
    store.put_item(item)
    got = store.get_item(PROJECT, "fg_c_builder#v1")
    assert got == item
    assert type(got["spec"]["support_min"]) is int
    assert type(got["spec"]["big"]) is int
    assert type(got["spec"]["z_max"]) is float
    assert type(got["spec"]["nested"][0]["a"][1]) is float
    assert store.get_item(PROJECT, "fg_c_builder#v2") is None
    assert store.get_item("other-project", "fg_c_builder#v1") is None


def test_load_job_spec_picks_the_requested_version(store):
    store.put_item(_item("delta_builder#v1", _delta_spec("v1")))
    store.put_item(_item("delta_builder#v2", _delta_spec("v2")))
    assert store.load_job_spec(PROJECT, "delta_builder", "v2")["feature_spec_version"] == "v2"
    typed = store.load_typed_spec(DeltaBuilderSpec, PROJECT, "delta_builder", "v1")
    assert typed.output.s3_prefix == f"s3://lake/projects/{PROJECT}/versions/v1/data/features/delta/"
    assert typed.input.format == "jsonl"


def test_legacy_unversioned_item_is_read_when_its_version_matches_or_is_absent(store):
    store.put_item(_item("fg_b_builder", {"horizons": ["7d"]}))
    assert store.load_job_spec(PROJECT, "fg_b_builder", "v1") == {"horizons": ["7d"]}

    store.put_item(_item("fg_c_builder", {"eps": 0.001}, feature_spec_version="v1"))
    assert store.load_job_spec(PROJECT, "fg_c_builder", "v1") == {"eps": 0.001}


def test_legacy_item_of_another_version_is_not_returned(store):
    store.put_item(_item("fg_c_builder", {"eps": 0.001}, feature_spec_version="v1"))
    store.put_item(_item("delta_builder", _delta_spec("v1")))  # version inside the spec payload
    with pytest.raises(SpecError) as err:
        store.load_job_spec(PROJECT, "fg_c_builder", "v2")
    assert err.value.item == "fg_c_builder#v2"
    with pytest.raises(SpecError):
        store.load_job_spec(PROJECT, "delta_builder", "v2")


def test_versioned_item_wins_over_legacy_item(store):
    store.put_item(_item("fg_b_builder", {"horizons": ["legacy"]}))
    store.put_item(_item("fg_b_builder#v1", {"horizons": ["7d", "30d"]}))
    assert store.load_job_spec(PROJECT, "fg_b_builder", "v1") == {"horizons": ["7d", "30d"]}


def test_list_versions_is_begins_with_on_the_job_and_delimiter(store):
    for key in ["fg_a_builder#v2", "fg_a_builder#v1", "fg_a_builder_extra#v1", "fg_a_builder", "fgXaXbuilder#v9"]:
        store.put_item(_item(key, {"k": key}))
    store.put_item(_item("fg_a_builder#v3", {}, project="other-project"))
    store.put_item(_item("fg_a_builder#v7", {}, project=PROJECT + "-2"))

    assert store.list_versions(PROJECT, "fg_a_builder") == ["v1", "v2"]
    assert [i["job_name"] for i in store.list_job_specs(PROJECT, "fg_a_builder")] == [
        "fg_a_builder#v1",
        "fg_a_builder#v2",
    ]
    assert store.list_versions(PROJECT, "fg_a_builder_extra") == ["v1"]
    # '_' and '%' are literal characters of the prefix, never wildcards.
    assert store.query_prefix(PROJECT, "fg%") == []
    assert [i["job_name"] for i in store.query_prefix(PROJECT, "fg")] == [
        "fgXaXbuilder#v9",
        "fg_a_builder",
        "fg_a_builder#v1",
        "fg_a_builder#v2",
        "fg_a_builder_extra#v1",
    ]


def test_put_replaces_the_whole_item(store):
    store.put_item(_item("fg_b_builder#v1", {"horizons": ["7d"], "support_min": 3}, owner="a"))
    store.put_item(_item("fg_b_builder#v1", {"horizons": ["30d"]}))
    assert store.get_item(PROJECT, "fg_b_builder#v1") == _item("fg_b_builder#v1", {"horizons": ["30d"]})
    assert store.list_versions(PROJECT, "fg_b_builder") == ["v1"]


def test_put_refuses_items_without_key_attributes(store):
    with pytest.raises(SpecError) as err:
        store.put_item({"project_name": PROJECT, "spec": {}})
    assert err.value.key == "job_name"
    with pytest.raises(SpecError) as err:
        store.put_routing({"project_name": PROJECT})
    assert err.value.key == "org_key"


def test_project_parameters_payload_under_spec_or_parameters(store):
    defaults = {"ProjectName": PROJECT, "FeatureSpecVersion": "v1", "Org1": "acme", "Org2": "finance"}
    store.put_item(
        _item("project_parameters#v1", {"defaults": defaults, "ip_machine_mapping_s3_prefix": "s3://b/map/"})
    )
    store.put_item(
        {
            "project_name": "ndr-legacy",
            "job_name": "project_parameters#v1",
            "parameters": {"ip_machine_mapping_s3_prefix": "s3://b/legacy-map/"},
        }
    )
    params = store.load_project_parameters(PROJECT, "v1")
    assert params.defaults.Org2 == "finance"
    assert params.defaults.WindowFloorMinutes == [8, 23, 38, 53]
    assert params.ip_machine_mapping_s3_prefix == "s3://b/map/"
    assert store.load_project_parameters("ndr-legacy", "v1").ip_machine_mapping_s3_prefix == "s3://b/legacy-map/"


def test_routing_records(store):
    records = [
        {"org_key": "zeta#ops", "project_name": "ndr-zeta", "ingestion_prefix": "s3://in/paloalto/zeta/ops"},
        {
            "org_key": "acme#finance",
            "project_name": "ndr-acme",
            "ingestion_prefix": "s3://in/paloalto/acme/finance",
            "feature_spec_version": "v2",
        },
        {
            "org_key": "acme#hr",
            "project_name": "ndr-acme-hr",
            "ingestion_prefix": "s3://in/paloalto/acme/hr",
            "enabled": False,
        },
    ]
    for record in records:
        store.put_routing(record)

    assert store.get_routing("acme#finance") == records[1]
    assert store.get_routing("nobody#none") is None
    assert [r["org_key"] for r in store.scan_routing()] == ["acme#finance", "acme#hr", "zeta#ops"]
    assert [r.org_key for r in store.enabled_routes()] == ["acme#finance", "zeta#ops"]
    assert store.load_routing("acme#finance") == RoutingRecord(
        org_key="acme#finance",
        project_name="ndr-acme",
        ingestion_prefix="s3://in/paloalto/acme/finance",
        feature_spec_version="v2",
    )

    store.put_routing({**records[1], "enabled": False})
    assert [r.org_key for r in store.enabled_routes()] == ["zeta#ops"]
    with pytest.raises(SpecError) as err:
        store.load_routing("nobody#none")
    assert err.value.item == "nobody#none"


def test_missing_item_names_project_item_and_key(store):
    with pytest.raises(SpecError) as err:
        store.load_typed_spec(DeltaBuilderSpec, PROJECT, "delta_builder", "v1")
    assert (err.value.project, err.value.item, err.value.key) == (PROJECT, "delta_builder#v1", "job_name")
    assert PROJECT in str(err.value) and "delta_builder#v1" in str(err.value)


def test_bad_payload_names_project_item_and_key_path(store):
    spec = _delta_spec("v1", input={"format": "jsonl", "compression": "gzip"})
    store.put_item(_item("delta_builder#v1", spec))
    with pytest.raises(SpecError) as err:
        store.load_typed_spec(DeltaBuilderSpec, PROJECT, "delta_builder", "v1")
    message = str(err.value)
    assert err.value.key == "input.s3_prefix"
    assert PROJECT in message and "delta_builder#v1" in message and "input.s3_prefix" in message


def test_versioned_job_key():
    assert versioned_job_key("delta_builder", "v1") == "delta_builder#v1"
    with pytest.raises(ValueError):
        versioned_job_key("delta_builder#v1", "v1")


def test_parameters_table_name_resolution(monkeypatch):
    assert resolve_parameters_table_name({}) == "ml_projects_parameters"
    assert resolve_parameters_table_name({"JOB_SPEC_DDB_TABLE_NAME": "legacy_t"}) == "legacy_t"
    both = {"ML_PROJECTS_PARAMETERS_TABLE_NAME": "new_t", "JOB_SPEC_DDB_TABLE_NAME": "legacy_t"}
    assert resolve_parameters_table_name(both) == "new_t"
    empty_new = {"ML_PROJECTS_PARAMETERS_TABLE_NAME": "", "JOB_SPEC_DDB_TABLE_NAME": "legacy_t"}
    assert resolve_parameters_table_name(empty_new) == "legacy_t"

    monkeypatch.delenv("ML_PROJECTS_PARAMETERS_TABLE_NAME", raising=False)
    monkeypatch.setenv("JOB_SPEC_DDB_TABLE_NAME", "legacy_env")
    assert DynamoDBParameterStore().parameters_table_name == "legacy_env"
    monkeypatch.setenv("ML_PROJECTS_PARAMETERS_TABLE_NAME", "env_t")
    assert DynamoDBParameterStore().parameters_table_name == "env_t"
    assert DynamoDBParameterStore(table_name="explicit").parameters_table_name == "explicit"
    assert DynamoDBParameterStore().routing_table_name == "ml_projects_routing"


def test_dynamodb_missing_table_says_what_to_run(moto_endpoint):
    store = DynamoDBParameterStore(table_name="never_created", region_name="us-east-1", endpoint_url=moto_endpoint)
    with pytest.raises(SpecError) as err:
        store.load_job_spec(PROJECT, "delta_builder", "v1")
    assert err.value.key == "table" and "ndr seed provision" in str(err.value)


def test_update_spec_writes_the_change_and_a_new_revision(store):
    store.put_item(_item("inference_predictions#v1", {"model": {"endpoint_name": "e"}}, updated_at="2026-01-01T00:00:00Z"))
    written = store.update_spec(
        PROJECT, "inference_predictions", "v1",
        lambda spec: {**spec, "model": {**spec["model"], "model_version": "7"}}, updated_at="2026-06-01T00:00:00Z",
    )
    got = store.get_item(PROJECT, "inference_predictions#v1")
    assert got == written
    assert got["spec"] == {"model": {"endpoint_name": "e", "model_version": "7"}}
    assert got["updated_at"] == "2026-06-01T00:00:00Z"
    again = store.update_spec(PROJECT, "inference_predictions", "v1", lambda spec: spec, updated_at="2026-06-02T00:00:00Z")
    assert again["revision"] != written["revision"]


def test_conditional_write_fails_on_a_concurrent_edit_and_writes_nothing(store):
    from ndr_resources.errors import ConcurrentUpdateError

    store.put_item(_item("inference_predictions#v1", {"model": {"endpoint_name": "e"}}, updated_at="t0"))
    read = store.get_item(PROJECT, "inference_predictions#v1")
    # Someone edits the item between our read and our write (provisioning re-renders it).
    store.put_item(_item("inference_predictions#v1", {"model": {"endpoint_name": "other"}}, updated_at="t1"))
    ours = {**read, "spec": {"model": {"endpoint_name": "e", "model_version": "7"}}, "revision": "r1", "updated_at": "t2"}
    with pytest.raises(ConcurrentUpdateError, match="changed by someone else.*nothing was written"):
        store.put_item_if(ours, {"revision": read.get("revision"), "updated_at": read.get("updated_at")})
    assert store.get_item(PROJECT, "inference_predictions#v1")["spec"] == {"model": {"endpoint_name": "other"}}
    # Two writers from the same read: the first wins, the second fails.
    current = store.get_item(PROJECT, "inference_predictions#v1")
    expected = {"revision": current.get("revision"), "updated_at": current.get("updated_at")}
    store.put_item_if({**current, "revision": "a", "updated_at": "t3"}, expected)
    with pytest.raises(ConcurrentUpdateError):
        store.put_item_if({**current, "revision": "b", "updated_at": "t4"}, expected)
    assert store.get_item(PROJECT, "inference_predictions#v1")["revision"] == "a"


def test_update_spec_of_a_missing_item_names_it(store):
    with pytest.raises(SpecError, match="inference_predictions#v1.*not found"):
        store.update_spec(PROJECT, "inference_predictions", "v1", lambda spec: spec, updated_at="t")


def test_feature_store_map_is_found_where_the_project_parameters_are(store):
    from ndr_resources.projects import feature_store_map

    # A legacy unversioned item serves the map as it serves the parameters; no map is None.
    store.put_item(_item("project_parameters", {"defaults": {}}, feature_store={"groups": {}}))
    assert feature_store_map(store, PROJECT, "v1") == {"groups": {}}
    store.put_item(_item("project_parameters#v1", {"defaults": {}}))
    assert feature_store_map(store, PROJECT, "v1") is None
    with pytest.raises(SpecError) as err:
        feature_store_map(store, PROJECT + "-absent", "v1")
    assert err.value.item == "project_parameters#v1"

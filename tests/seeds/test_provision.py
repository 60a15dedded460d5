"""Seed templates, their validation, provisioning into the stores, and the ``ndr seed`` CLI."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import date

import pytest
from typer.testing import CliRunner

from ndr_resources.lake import LocalLake
from ndr_resources.parameter_store import DynamoDBParameterStore, SqliteParameterStore
from ndr_resources.specs import (
    DEFAULT_ROLES,
    JOB_NAMES,
    DeltaBuilderSpec,
    FgABuilderSpec,
    PairCountsBuilderSpec,
    ProjectParameters,
    RoutingRecord,
    parse_spec,
)
from seeds.cli import seed_app
from seeds.provision import (
    PORT_SETS_FILE,
    SEEDED_JOBS,
    TEMPLATES_DIR,
    ProvisioningError,
    month_start,
    provision,
    render_templates,
    validate_items,
)

PROJECT, BUCKET, VERSION, ORG1, ORG2, START = "ndr-acme-finance", "ndr-demo", "v1", "acme", "finance", "2026-01-01"
ROOT = f"s3://{BUCKET}/projects/{PROJECT}/versions/{VERSION}"
DATA = f"{ROOT}/data"
INGEST = f"s3://{BUCKET}/paloalto/{ORG1}/{ORG2}/"
ARGS = {"project_name": PROJECT, "bucket": BUCKET, "feature_spec_version": VERSION, "org1": ORG1, "org2": ORG2, "start_date": START}
DEFAULT_FIELD_MAPPING = {
    "source_ip": "src", "destination_ip": "dst", "source_port": "sport", "destination_port": "dport",
    "protocol": "proto", "action": "action", "source_bytes": "bytes_sent", "destination_bytes": "bytes_received",
    "packets": "packets", "event_start": "start", "event_end": "time_generated", "duration_s": "elapsed",
    "application": "app", "rule": "rule", "source_zone": "from", "destination_zone": "to",
    "session_end_reason": "session_end_reason", "log_type": "type", "log_subtype": "subtype",
    "device_serial": "serial", "session_id": "sessionid",
}  # fmt: skip
SEGMENTS = [
    ("workstations", "10.10.0.0/16"),
    ("vdi", "10.20.0.0/16"),
    ("servers", "10.30.0.0/16"),
    ("databases", "10.40.0.0/16"),
    ("domain_controllers", "10.50.0.0/24"),
    ("dmz", "172.16.0.0/16"),
]


def _rendered() -> dict[str, dict]:
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START)
    return {item.get("job_name") or item["org_key"]: item for item in items}


def _spec(job: str) -> dict:
    return _rendered()[f"{job}#{VERSION}"]["spec"]


def _stores(tmp_path):
    return SqliteParameterStore(path=str(tmp_path / "parameters.sqlite")), LocalLake(root=str(tmp_path / "lake"))


def _broken_templates(tmp_path, edit):
    """A copy of the shipped templates with ``edit(name -> template)`` applied."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    templates = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    edit(templates)
    for name, template in templates.items():
        (folder / name).write_text(json.dumps(template))
    return folder


# ---------------------------------------------------------------- rendering and typed parses


def test_rendered_delta_builder_parses_with_the_documented_values():
    spec = parse_spec(DeltaBuilderSpec, _spec("delta_builder"), project=PROJECT, item="delta_builder#v1")
    assert (spec.project_name, spec.job_name, spec.feature_spec_version) == (PROJECT, "delta_builder", VERSION)
    assert spec.input.s3_prefix == INGEST
    assert (spec.input.format, spec.input.compression) == ("jsonl", "gzip")
    assert spec.input.field_mapping == DEFAULT_FIELD_MAPPING
    dq = spec.dq
    assert all([dq.drop_malformed_ip, dq.duration_non_negative, dq.bytes_non_negative, dq.filter_null_bytes_ports])
    assert dq.emit_metrics and dq.max_rejection_rate == 0.05
    assert dq.quarantine_s3_prefix == f"{DATA}/quarantine/delta/"
    assert spec.enrichment.vdi_hostname_prefixes == ["VDI-"]
    assert spec.enrichment.port_sets_location == f"{DATA}/reference/port_sets/port_sets.json"
    assert [(s.segment_id, s.cidr) for s in spec.enrichment.segment_mapping.segments] == SEGMENTS
    assert spec.enrichment.segment_mapping.default_segment == "external"
    assert spec.roles == DEFAULT_ROLES
    assert [(o.type, o.params) for o in spec.operators] == [
        ("short_session", {"max_duration_s": 1.0}),
        ("max_sessions_per_minute", {}),
    ]
    assert spec.output.s3_prefix == f"{DATA}/features/delta/"
    assert spec.output.partition_keys == ["dt", "window"]


def test_rendered_fg_a_and_pair_counts_parse():
    fg_a = parse_spec(FgABuilderSpec, _spec("fg_a_builder"), project=PROJECT, item="fg_a_builder#v1")
    assert fg_a.delta_input.s3_prefix == f"{DATA}/features/delta/"
    assert fg_a.fg_a_output.s3_prefix == f"{DATA}/features/fg_a/"
    assert (fg_a.lookback30d.days, fg_a.lookback30d.rare_thresholds) == (30, {"peer_days": 3, "port_days": 3})
    assert fg_a.high_risk_segments == ["domain_controllers", "databases"]
    assert [(s.segment_id, s.cidr) for s in fg_a.segment_mapping.segments] == SEGMENTS

    pairs = parse_spec(PairCountsBuilderSpec, _spec("pair_counts_builder"), project=PROJECT, item="x")
    assert pairs.traffic_input.s3_prefix == INGEST
    assert (pairs.traffic_input.format, pairs.traffic_input.compression) == ("jsonl", "gzip")
    assert pairs.traffic_input.field_mapping == DEFAULT_FIELD_MAPPING
    assert pairs.pair_counts_output.s3_prefix == f"{DATA}/features/pair_counts/"


def test_rendered_project_parameters_and_routing():
    items = _rendered()
    params = parse_spec(ProjectParameters, items["project_parameters#v1"]["spec"], project=PROJECT, item="p")
    d = params.defaults
    assert (d.ProjectName, d.FeatureSpecVersion, d.Org1, d.Org2, d.VendorPrefix) == (
        PROJECT, VERSION, ORG1, ORG2, "paloalto",
    )  # fmt: skip
    assert d.WindowCronExpression == "8-59/15 * * * ? *" and d.WindowFloorMinutes == [8, 23, 38, 53]
    assert d.IngestionBasePrefix == INGEST and d.HistoricalInputS3Prefix == INGEST
    assert d.MiniBatchS3Prefix == INGEST + "<required:MiniBatchId>/"
    assert d.HistoricalWindowsOutputS3Prefix == f"{DATA}/backfill/historical_windows/"
    assert d.StartDate == START
    assert params.ip_machine_mapping_s3_prefix == f"{DATA}/reference/machine_inventory/"
    # The machine inventory job writes where FG-B's project parameter says the mapping is.
    inventory = items["machine_inventory_unload#v1"]["spec"]["output"]
    assert inventory["s3_prefix"] == params.ip_machine_mapping_s3_prefix
    assert inventory["partitioning"] == ["snapshot_month"]

    route = parse_spec(RoutingRecord, items["acme#finance"], project=PROJECT, item="acme#finance")
    assert route == RoutingRecord(
        org_key="acme#finance", project_name=PROJECT, ingestion_prefix=INGEST.rstrip("/"), feature_spec_version="v1"
    )


def test_validation_regexes_accept_runtime_values_and_reject_others():
    rules = {k: re.compile(v["regex"]) for k, v in _spec("project_parameters")["validation"].items()}
    accepted = {
        "ProjectName": ["ndr-acme-finance"],
        "FeatureSpecVersion": ["v1", "v12"],
        "MiniBatchId": ["20260105T081500Z", "20260105T081500Z-fw01"],
        "BatchStartTsIso": ["2026-01-05T08:08:00Z", "2026-01-05T23:53:00Z"],
        "BatchEndTsIso": ["2026-01-05T08:22:59Z", "2026-01-05T08:22:59.123Z"],
        "ReferenceMonthIso": ["2026-06", "2026-06-01"],
        "StartDate": ["2026-01-01"],
    }
    rejected = {
        "ProjectName": ["Ndr_Acme"],
        "FeatureSpecVersion": ["1"],
        "MiniBatchId": ["2026-01-05T08:15:00Z", "20260105T0815Z"],
        "BatchStartTsIso": ["2026-01-05T08:10:00Z"],
        "ReferenceMonthIso": ["2026-06-15"],
    }
    for name, values in accepted.items():
        assert all(rules[name].match(v) for v in values), name
    for name, values in rejected.items():
        assert not any(rules[name].match(v) for v in values), name


def test_every_job_has_a_template_and_all_rendered_items_validate():
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START)
    report = validate_items(items)
    assert report.ok, report.format()
    assert {i.item.split("#")[0] for i in report.items if i.kind == "job"} == set(SEEDED_JOBS)
    assert set(JOB_NAMES) <= set(SEEDED_JOBS)
    assert [i.item for i in report.items if i.kind == "routing"] == ["acme#finance"]
    pipelines = {i.item: i.steps for i in report.items if i.item.startswith("pipeline_")}
    assert len(pipelines) == 7 and all(len(steps) == 1 for steps in pipelines.values())


def test_rendered_paths_follow_the_canonical_hierarchy():
    data_re = re.compile(rf"^{re.escape(DATA)}/[a-z_]+/[a-z_0-9]+/")
    code_re = re.compile(rf"^{re.escape(ROOT)}/code/pipelines/[a-z_]+/[A-Za-z]+Step/$")
    uris = []

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.startswith("s3://"):
            uris.append(value)

    for item in render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START):
        walk(item)
    project_uris = [u for u in uris if not u.startswith(INGEST.rstrip("/"))]
    assert len(project_uris) > 40
    for uri in project_uris:
        assert data_re.match(uri) or code_re.match(uri), uri
    for item in render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START):
        for step in item.get("spec", {}).get("scripts", {}).get("steps", {}).values():
            assert code_re.match(step["code_prefix_s3"]) and step["entry_script"].endswith(".py")


def test_runtime_placeholders_remain_and_match_the_declared_parameters():
    spec = _spec("pipeline_prediction_feature_join")
    assert spec["required_runtime_params"] == [
        "ProjectName", "FeatureSpecVersion", "MiniBatchId", "BatchStartTsIso", "BatchEndTsIso",
    ]  # fmt: skip
    assert spec["runtime_params"]["ProjectName"] == PROJECT
    assert spec["runtime_params"]["BatchStartTsIso"] == "<required:BatchStartTsIso>"


def test_start_date_defaults_to_the_first_day_of_the_month():
    assert month_start(date(2026, 3, 17)) == "2026-03-01"
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2)
    (params,) = [i for i in items if i.get("job_name") == "project_parameters#v1"]
    assert params["spec"]["defaults"]["StartDate"] == month_start()


def test_port_sets_reference_holds_the_port_classes():
    assert json.loads(PORT_SETS_FILE.read_text()) == {
        "high_risk": [21, 23, 135, 139, 445, 1433, 3389, 5900, 4444, 6667],
        "admin": [22, 23, 3389, 5985, 5986, 5900],
        "fileshare": [139, 445, 2049, 21],
        "directory": [53, 88, 389, 636, 3268, 3269],
        "db": [1433, 1521, 3306, 5432, 27017, 6379],
    }


# ---------------------------------------------------------------- validation findings


def test_missing_keys_and_placeholders_are_reported_per_item():
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START)
    by_key = {i.get("job_name") or i["org_key"]: i for i in items}
    del by_key["delta_builder#v1"]["spec"]["input"]["s3_prefix"]
    del by_key["fg_a_builder#v1"]["spec"]["delta_input"]
    by_key["fg_c_builder#v1"]["spec"]["fg_b_input"]["s3_prefix"] = "s3://<features_bucket>/fg_b/"
    del by_key["pipeline_model_deploy#v1"]["spec"]["scripts"]["steps"]["ModelDeployStep"]["entry_script"]
    by_key["pipeline_model_publish#v1"]["spec"]["runtime_params"]["ReferenceMonthIso"] = "<required:Undeclared>"
    by_key["acme#finance"].pop("ingestion_prefix")

    report = validate_items(items)
    assert not report.ok
    findings = {i.item: i.lines() for i in report.items if not i.ok}
    assert findings == {
        "delta_builder#v1": ["missing key spec.input.s3_prefix"],
        "fg_a_builder#v1": ["missing key spec.delta_input.s3_prefix | delta_s3_prefix"],
        "fg_c_builder#v1": ["unresolved placeholder spec.fg_b_input.s3_prefix: <features_bucket>"],
        "pipeline_model_deploy#v1": ["missing key spec.scripts.steps.ModelDeployStep.entry_script"],
        "pipeline_model_publish#v1": [
            "<required:...> placeholders name undeclared runtime parameters: ['Undeclared']"
        ],
        "acme#finance": ["missing key ingestion_prefix"],
    }
    text = report.format()
    assert "delta_builder#v1: missing key spec.input.s3_prefix" in text


def test_typed_parse_failures_and_set_level_problems_are_reported():
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START)
    (delta,) = [i for i in items if i.get("job_name") == "delta_builder#v1"]
    delta["spec"]["input"]["format"] = "xml"
    items = [i for i in items if i.get("job_name") != "if_training#v1"] + [dict(delta)]
    report = validate_items(items)
    delta_reports = [i for i in report.items if i.item == "delta_builder#v1"]
    assert len(delta_reports) == 2
    assert all(
        "project 'ndr-acme-finance', item 'delta_builder#v1', key 'input.format'" in r.problems[0]
        for r in delta_reports
    )
    assert "duplicate items: ['delta_builder#v1']" in report.problems
    assert "no item for job(s): ['if_training']" in report.problems


def test_bad_arguments_are_refused_before_rendering():
    with pytest.raises(ProvisioningError) as err:
        render_templates("Bad_Project", BUCKET, "1", "ac#me", ORG2, "2026-13-01")
    problems = err.value.report.problems
    assert len(problems) == 4
    assert any("project_name='Bad_Project'" in p for p in problems)
    assert any("start_date='2026-13-01'" in p for p in problems)


# ---------------------------------------------------------------- provisioning


def test_provision_into_sqlite_then_load_typed_specs(tmp_path):
    store, lake = _stores(tmp_path)
    result = provision(store, lake, **ARGS)
    assert len(result.items) == len(SEEDED_JOBS) and result.routing_key == "acme#finance"

    delta = store.load_typed_spec(DeltaBuilderSpec, PROJECT, "delta_builder", VERSION)
    assert delta.output.s3_prefix == f"{DATA}/features/delta/"
    fg_a = store.load_typed_spec(FgABuilderSpec, PROJECT, "fg_a_builder", VERSION)
    assert fg_a.fg_a_output.s3_prefix == f"{DATA}/features/fg_a/"
    pairs = store.load_typed_spec(PairCountsBuilderSpec, PROJECT, "pair_counts_builder", VERSION)
    assert pairs.traffic_input.field_mapping["event_end"] == "time_generated"
    params = store.load_project_parameters(PROJECT, VERSION)
    assert params.defaults.StartDate == START
    assert [r.project_name for r in store.enabled_routes()] == [PROJECT]
    assert store.list_versions(PROJECT, "delta_builder") == [VERSION]

    assert lake.read_bytes(delta.enrichment.port_sets_location) == PORT_SETS_FILE.read_bytes()
    assert result.port_sets_uri == delta.enrichment.port_sets_location


def test_reprovisioning_is_idempotent(tmp_path):
    store, lake = _stores(tmp_path)
    provision(store, lake, **ARGS)

    def snapshot():
        items = store.query_prefix(PROJECT, "")
        return [{k: v for k, v in i.items() if k != "updated_at"} for i in items], store.scan_routing()

    first_items, _first_routes = snapshot()
    provision(store, lake, **ARGS)
    second_items, second_routes = snapshot()
    assert second_items == first_items and len(second_items) == len(SEEDED_JOBS)
    assert [r["org_key"] for r in second_routes] == ["acme#finance"]

    provision(store, lake, **{**ARGS, "start_date": "2026-02-01"})  # a changed value replaces the item
    assert store.load_project_parameters(PROJECT, VERSION).defaults.StartDate == "2026-02-01"
    assert len(store.query_prefix(PROJECT, "")) == len(SEEDED_JOBS)


def test_provision_writes_nothing_when_a_template_lacks_a_required_key(tmp_path):
    def edit(templates):
        del templates["delta_builder.json"]["spec"]["input"]["s3_prefix"]
        templates["machine_inventory_unload.json"]["spec"]["redshift"]["region"] = "<region>"

    folder = _broken_templates(tmp_path, edit)
    store, lake = _stores(tmp_path)
    with pytest.raises(ProvisioningError) as err:
        provision(store, lake, **ARGS, templates_dir=folder)
    message = str(err.value)
    assert "delta_builder#v1: missing key spec.input.s3_prefix" in message
    assert "machine_inventory_unload#v1: unresolved placeholder spec.redshift.region: <region>" in message
    assert store.query_prefix(PROJECT, "") == [] and store.scan_routing() == []
    assert lake.list_objects(f"s3://{BUCKET}/") == []


def test_provision_refuses_raw_input_settings_that_disagree(tmp_path):
    """Delta and pair counts read the same mini-batches: a format set in one item only is refused."""
    store, lake = _stores(tmp_path)
    with pytest.raises(ProvisioningError) as err:
        provision(store, lake, **ARGS, spec_overrides={"delta_builder": {"input": {"format": "parquet"}}})
    assert (
        "delta_builder#v1 input.format='parquet' but pair_counts_builder#v1 traffic_input.format='jsonl': "
        "both read the same raw mini-batches, so they must agree"
    ) in str(err.value)
    assert store.query_prefix(PROJECT, "") == []

    both = {"delta_builder": {"input": {"format": "parquet"}},
            "pair_counts_builder": {"traffic_input": {"format": "parquet"}}}
    provision(store, lake, **ARGS, spec_overrides=both)
    assert store.load_typed_spec(PairCountsBuilderSpec, PROJECT, "pair_counts_builder", VERSION).traffic_input.format == "parquet"


def test_raw_input_field_mappings_must_agree_on_shared_fields():
    items = render_templates(PROJECT, BUCKET, VERSION, ORG1, ORG2, START)
    (pairs,) = [i for i in items if i.get("job_name") == "pair_counts_builder#v1"]
    pairs["spec"]["traffic_input"]["field_mapping"]["event_start"] = "receive_time"
    assert validate_items(items).problems == [
        "delta_builder#v1 input.field_mapping.event_start='start' but pair_counts_builder#v1 "
        "traffic_input.field_mapping.event_start='receive_time': both read the same raw columns"
    ]


# ---------------------------------------------------------------- CLI

CLI_ARGS = ["--project", PROJECT, "--bucket", BUCKET, "--org1", ORG1, "--org2", ORG2, "--start-date", START]


def test_cli_help_on_every_command():
    runner = CliRunner()
    for command in ([], ["provision"], ["validate"], ["show"]):
        result = runner.invoke(seed_app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_cli_validate(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(seed_app, ["validate", *CLI_ARGS])
    assert ok.exit_code == 0, ok.output
    assert f"{len(SEEDED_JOBS) + 1} item(s) valid." in ok.output

    folder = _broken_templates(tmp_path, lambda t: t["pair_counts_builder.json"]["spec"].pop("pair_counts_output"))
    bad = runner.invoke(seed_app, ["validate", *CLI_ARGS, "--templates-dir", str(folder)])
    assert bad.exit_code == 1
    assert "pair_counts_builder#v1: missing key spec.pair_counts_output.s3_prefix" in bad.output


def test_cli_provision_and_show_sqlite(tmp_path):
    runner = CliRunner()
    db, lake_root = tmp_path / "state" / "parameters.sqlite", tmp_path / "lake"
    result = runner.invoke(
        seed_app, ["provision", *CLI_ARGS, "--sqlite-path", str(db), "--lake-root", str(lake_root)]
    )
    assert result.exit_code == 0, result.output
    assert "delta_builder#v1" in result.output and "acme#finance" in result.output
    assert (lake_root / BUCKET / "projects" / PROJECT / "versions/v1/data/reference/port_sets/port_sets.json").is_file()

    shown = runner.invoke(
        seed_app, ["show", "--project", PROJECT, "--job", "delta_builder", "--sqlite-path", str(db)]
    )
    assert shown.exit_code == 0, shown.output
    item = json.loads(shown.output)
    assert item["job_name"] == "delta_builder#v1" and item["spec"]["input"]["s3_prefix"] == INGEST

    missing = runner.invoke(seed_app, ["show", "--project", PROJECT, "--job", "fg_z", "--sqlite-path", str(db)])
    assert missing.exit_code == 1
    assert "fg_z#v1" in missing.output


def test_cli_provision_dynamodb(tmp_path, moto_endpoint, monkeypatch):
    table = f"params_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ML_PROJECTS_PARAMETERS_TABLE_NAME", table)
    args = ["provision", *CLI_ARGS, "--backend", "dynamodb", "--endpoint-url", moto_endpoint, "--region", "us-east-1"]
    result = CliRunner().invoke(seed_app, [*args, "--lake-root", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output

    store = DynamoDBParameterStore(region_name="us-east-1", endpoint_url=moto_endpoint)
    assert store.parameters_table_name == table
    delta = store.load_typed_spec(DeltaBuilderSpec, PROJECT, "delta_builder", VERSION)
    assert delta.dq.max_rejection_rate == 0.05
    assert delta.operators[0].params == {"max_duration_s": 1.0}
    assert store.load_routing("acme#finance").project_name == PROJECT

"""``ndr seed provision --input-format``: both readers of the raw mini-batches get the format in one flag."""

from typer.testing import CliRunner

from ndr_jobs.cli import app
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from tests.cli.conftest import BUCKET, PROJECT

PROVISION = ["seed", "provision", "--project", PROJECT, "--bucket", BUCKET, "--org1", "acme", "--org2", "finance"]


def _input_specs(home):
    store = SqliteParameterStore(path=str(home / "parameters.sqlite"))
    return (store.get_item(PROJECT, "delta_builder#v1")["spec"]["input"],
            store.get_item(PROJECT, "pair_counts_builder#v1")["spec"]["traffic_input"])


def test_parquet_in_one_flag(scratch):
    _, home = scratch
    result = CliRunner().invoke(app, [*PROVISION, "--input-format", "parquet"])
    assert result.exit_code == 0, result.output
    delta_input, pair_input = _input_specs(home)
    assert delta_input["format"] == "parquet" and pair_input["format"] == "parquet"
    # Only the format changes: the rest of each input stays the template's.
    assert delta_input["s3_prefix"] == pair_input["s3_prefix"] == f"s3://{BUCKET}/paloalto/acme/finance/"
    assert delta_input["field_mapping"]["source_ip"] == "src" and pair_input["layout"] == "batch_folder"


def test_without_the_flag_the_templates_format_stays(scratch):
    _, home = scratch
    assert CliRunner().invoke(app, PROVISION).exit_code == 0
    assert [spec["format"] for spec in _input_specs(home)] == ["jsonl", "jsonl"]


def test_an_unknown_format_is_refused_before_anything_is_written(scratch):
    _, home = scratch
    result = CliRunner().invoke(app, [*PROVISION, "--input-format", "csv"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "'csv' is not one of json, jsonl, parquet, panos_csv" in result.output
    assert not (home / "parameters.sqlite").exists()

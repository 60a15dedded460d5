"""``ndr catalog`` through typer's CliRunner: counts, written files, specs from a provisioned project."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ndr_assets.catalog import build_catalog, counts_by_group, read_parquet, to_markdown
from ndr_jobs.catalog_cli import catalog_app
from ndr_resources.lake import LocalLake
from ndr_resources.parameter_store import SqliteParameterStore
from seeds.provision import provision

PROJECT, BUCKET = "ndr-acme-finance", "ndr-demo"
ROOT = f"s3://{BUCKET}/projects/{PROJECT}/versions/v1/data"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An NDR_HOME with one provisioned project: the seed templates with a second FG-C horizon, one
    extra FG-C metric and two FG-B baseline metrics."""
    folder = tmp_path_factory.mktemp("ndr_home")
    store = SqliteParameterStore(path=str(folder / "parameters.sqlite"))
    overrides = {
        "fg_c_builder": {"horizons": ["30d", "7d"], "metrics": ["tcp_cnt_w_15m"]},
        "fg_b_builder": {"baseline_metrics": ["sessions_cnt_w_15m", "bytes_src_sum_w_15m"]},
    }
    provision(store, LocalLake(root=str(folder / "lake")), project_name=PROJECT, bucket=BUCKET,
              feature_spec_version="v1", org1="acme", org2="finance", start_date="2026-01-01",
              spec_overrides=overrides)
    return folder


def invoke(*args: str):
    return CliRunner().invoke(catalog_app, list(args))


def test_help_of_every_command():
    for command in ([], ["show"], ["write"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_show_prints_the_counts_per_group():
    result = invoke("show")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (fg_a,) = [line for line in lines if "│ fg_a " in line]
    assert [cell.strip() for cell in fg_a.split("│")[2:4]] == ["253", "493"]  # model inputs: the outbound features
    (fg_c,) = [line for line in lines if "│ fg_c " in line]
    assert [cell.strip() for cell in fg_c.split("│")[2:4]] == ["693", "1,359"]
    assert "= 1,320 transform features + 39 suspicion/rare-pair features = 1,359" in result.output


def test_write_puts_markdown_and_parquet_in_the_folder(tmp_path):
    result = invoke("write", "--out", str(tmp_path / "catalog"))
    assert result.exit_code == 0, result.output
    entries = build_catalog()
    assert (tmp_path / "catalog" / "feature_catalog.md").read_text() == to_markdown(entries)
    assert read_parquet(tmp_path / "catalog" / "feature_catalog.parquet") == entries

    only_md = invoke("write", "--out", str(tmp_path / "md"), "--no-parquet")
    assert only_md.exit_code == 0 and not (tmp_path / "md" / "feature_catalog.parquet").exists()


def test_project_specs_and_locations_come_from_the_parameter_store(tmp_path, home):
    shown = invoke("show", "--project", PROJECT, "--home", str(home))
    assert shown.exit_code == 0, shown.output
    # FG-C: (440 curated + tcp_cnt_w_15m) x 3 transforms x 2 horizons = 2,646, + 39 suspicion features.
    assert "441 metric columns x 3 transforms" in shown.output
    assert "x 2 horizon(s) = 2,646 transform features + 39 suspicion/rare-pair features = 2,685" in shown.output

    written = invoke("write", "--out", str(tmp_path), "--project", PROJECT, "--home", str(home))
    assert written.exit_code == 0, written.output
    entries = read_parquet(tmp_path / "feature_catalog.parquet")
    counts = counts_by_group(entries)
    assert (counts["fg_c"], counts["fg_b_host"], counts["fg_b_segment"]) == (2685, 2 * 8, 2 * 8)
    paths = {e.feature_group: e.s3_storage_path for e in entries}
    assert paths["fg_a"] == f"{ROOT}/features/fg_a/"
    assert paths["delta_peer_slices"] == f"{ROOT}/features/delta/peer_slices/"
    assert paths["pair_rarity_segment"] == f"{ROOT}/features/fg_b/pair_rarity/segment/"
    assert paths["machine_inventory"] == f"{ROOT}/reference/machine_inventory/"


def test_missing_items_fall_back_to_defaults_and_bad_specs_fail_by_key(tmp_path, home):
    empty = invoke("show", "--project", "ndr-nobody", "--home", str(tmp_path))
    assert empty.exit_code == 0, empty.output
    assert "no item delta_builder#v1" in empty.output and "1,359" in empty.output

    store = SqliteParameterStore(path=str(home / "parameters.sqlite"))
    item = store.get_item(PROJECT, "fg_c_builder#v1")
    try:
        store.put_item({**item, "spec": {**item["spec"], "metrics": ["nope_w_15m"]}})
        bad = invoke("show", "--project", PROJECT, "--home", str(home))
    finally:
        store.put_item(item)
    assert bad.exit_code == 1
    assert "fg_c_builder#v1" in bad.output and "'metrics'" in bad.output and "nope_w_15m" in bad.output


def test_write_to_an_s3_prefix_goes_to_the_lake(tmp_path):
    result = invoke("write", "--out", "s3://ndr-demo/catalog/v1/", "--home", str(tmp_path))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "lake" / "ndr-demo" / "catalog" / "v1"
    assert (folder / "feature_catalog.md").read_text() == to_markdown(build_catalog())
    assert len(read_parquet(folder / "feature_catalog.parquet")) == len(build_catalog())

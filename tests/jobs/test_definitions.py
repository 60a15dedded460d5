"""The code location loads from the parameter store: one asset group per routed project."""

from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from ndr_jobs.cli import app
from ndr_resources.environments import LocalPaths
from ndr_resources.lake import LocalLake
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from seeds.provision import provision


@pytest.fixture
def ndr_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    monkeypatch.setenv("NDR_ENV", "local")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored after the test; commands set it
    return LocalPaths.from_env()


def _provision(paths, project, org1, org2, start_date):
    provision(SqliteParameterStore(path=str(paths.parameters_db)), LocalLake(root=str(paths.lake_root)),
              project_name=project, bucket="ndr-test", feature_spec_version="v1", org1=org1, org2=org2,
              start_date=start_date)


def test_each_routed_project_gets_its_own_group_partitions_and_job(ndr_home):
    from ndr_jobs.definitions import build_definitions

    _provision(ndr_home, "ndr-acme-finance", "acme", "finance", "2026-01-05")
    _provision(ndr_home, "ndr-globex-retail", "globex", "retail", "2026-03-01")
    # Only globex publishes to the Feature Store (even with fg_a's group absent, both assets exist and say so).
    store = SqliteParameterStore(path=str(ndr_home.parameters_db))
    item = store.get_item("ndr-globex-retail", "project_parameters#v1")
    store.put_item({**item, "feature_store": {"groups": {"fg_c": {"feature_group_name": "ndr-globex-retail-fg-c"}}}})
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    common = ("delta", "pair_counts", "fg_a", "machine_inventory", "fg_b_host", "fg_b_segment", "fg_b_ip_metadata",
              "pair_rarity", "fg_c", "training_data_verification", "if_model", "predictions", "prediction_feature_join")
    assert keys == {*(f"ndr-acme-finance/{a}" for a in common),
                    *(f"ndr-globex-retail/{a}" for a in (*common, "fg_a_feature_store", "fg_c_feature_store"))}
    job_assets = {
        (project, kind): sorted(k.path[-1] for k in defs.resolve_job_def(f"{project}__{kind}").asset_layer.selected_asset_keys)
        for project in ("ndr_acme_finance", "ndr_globex_retail") for kind in ("traffic_15m", "fg_c_15m")
    }
    assert job_assets == {
        ("ndr_acme_finance", "traffic_15m"): ["delta", "fg_a", "pair_counts"],
        ("ndr_acme_finance", "fg_c_15m"): ["fg_c"],
        ("ndr_globex_retail", "traffic_15m"): ["delta", "fg_a", "fg_a_feature_store", "pair_counts"],
        ("ndr_globex_retail", "fg_c_15m"): ["fg_c", "fg_c_feature_store"],
    }
    fg_a = graph.get(dg.AssetKey(["ndr-globex-retail", "fg_a"]))
    assert fg_a.group_name == "ndr_globex_retail"
    # Each project's windows start at its own start date, on the 08/23/38/53 grid; its monthly
    # partitions (the month of use) and FG-C start the month after.
    first_keys = {
        (project, kind): defs.resolve_job_def(f"{project.replace('-', '_')}__{kind}").partitions_def.get_first_partition_key()
        for project in ("ndr-acme-finance", "ndr-globex-retail")
        for kind in ("traffic_15m", "baselines_monthly", "fg_c_15m", "models_monthly", "scoring_15m")
    }
    assert first_keys == {
        ("ndr-acme-finance", "traffic_15m"): "2026-01-04-23:53",
        ("ndr-acme-finance", "baselines_monthly"): "2026-02-01",
        ("ndr-acme-finance", "fg_c_15m"): "2026-02-01-00:08",
        ("ndr-acme-finance", "models_monthly"): "2026-02-01",
        ("ndr-acme-finance", "scoring_15m"): "2026-02-01-00:08",
        ("ndr-globex-retail", "traffic_15m"): "2026-02-28-23:53",
        ("ndr-globex-retail", "baselines_monthly"): "2026-04-01",
        ("ndr-globex-retail", "fg_c_15m"): "2026-04-01-00:08",
        ("ndr-globex-retail", "models_monthly"): "2026-04-01",
        ("ndr-globex-retail", "scoring_15m"): "2026-04-01-00:08",
    }
    # The model's checks, and the missing-feature job a user launches from the UI.
    assert defs.resolve_job_def("ndr_globex_retail__missing_feature_creation").partitions_def is None
    checks = {c.to_user_string() for c in graph.asset_check_keys if c.asset_key.path[0] == "ndr-globex-retail"}
    assert {c for c in checks if "/fg_a:" in c} == {
        "ndr-globex-retail/fg_a:schema_matches_contract", "ndr-globex-retail/fg_a:keys_unique",
        "ndr-globex-retail/fg_a:row_count_sane",
    }
    assert {
        "ndr-globex-retail/fg_b_segment:segment_host_schema_parity", "ndr-globex-retail/fg_b_host:baseline_support",
        "ndr-globex-retail/fg_b_ip_metadata:cold_start_share", "ndr-globex-retail/fg_c:null_rate_zero",
        "ndr-globex-retail/fg_c:schema_matches_contract", "ndr-globex-retail/pair_rarity:schema_matches_contract",
        "ndr-globex-retail/training_data_verification:training_windows_complete",
        "ndr-globex-retail/if_model:model_features_match_catalog", "ndr-globex-retail/if_model:trained_on_claimed_window",
        "ndr-globex-retail/if_model:score_distribution_sane", "ndr-globex-retail/predictions:every_fg_c_row_scored",
        "ndr-globex-retail/predictions:score_distribution_sane",
        "ndr-globex-retail/prediction_feature_join:join_rows_match_predictions",
        "ndr-globex-retail/fg_c_feature_store:every_record_ingested",
    } <= checks
    assert {c for c in checks if "/delta:" in c} == {
        f"ndr-globex-retail/delta:{name}" for name in (
            "schema_matches_contract", "keys_unique", "row_count_sane", "dq_rejection_rate_under_threshold",
            "input_complete", "monitored_hosts_present")
    }
    assert "ndr-globex-retail/pair_counts:dq_rejection_rate_under_threshold" in checks
    # The UI links every asset to the code that builds it.
    for key in graph.get_all_asset_keys():
        references = graph.get(key).metadata["dagster/code_references"].code_references
        assert references and all(Path(r.file_path).is_file() for r in references), key
    # FG-B reads the previous month's windows; FG-C the same month's baselines.
    fg_b_host = graph.get(dg.AssetKey(["ndr-globex-retail", "fg_b_host"]))
    assert dg.AssetKey(["ndr-globex-retail", "fg_a"]) in fg_b_host.parent_keys
    assert dg.AssetKey(["ndr-globex-retail", "fg_b_host"]) in graph.get(dg.AssetKey(["ndr-globex-retail", "fg_c"])).parent_keys

def test_empty_store_loads_an_empty_code_location(ndr_home):
    from ndr_jobs.definitions import build_definitions

    defs = build_definitions()
    assert list(defs.resolve_asset_graph().get_all_asset_keys()) == []


def test_workspace_module_exposes_defs(ndr_home):
    import importlib

    import ndr_jobs.definitions as module

    module = importlib.reload(module)
    assert isinstance(module.defs, dg.Definitions)


@pytest.mark.parametrize("command", [[], ["demo"], ["backfill"], ["dev"], ["generate"], ["seed"], ["seed", "provision"],
                                     ["seed", "validate"], ["seed", "show"], ["catalog"], ["catalog", "show"],
                                     ["catalog", "write"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_backfill_of_an_unknown_project_is_a_clear_error(ndr_home, tmp_path):
    _provision(ndr_home, "ndr-acme-finance", "acme", "finance", "2026-01-05")
    result = CliRunner().invoke(app, ["backfill", "--project", "ndr-nope", "--start", "2026-01-05",
                                      "--end", "2026-01-05", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "ndr-nope" in result.output and "Traceback" not in result.output

"""A month partition end to end through Dagster: inventory + FG-B for April, April's FG-C windows, the
April model (trained on April's first half hour) and the scores and join of the windows after it.

One small synthetic tenant starts on 2026-03-31; its 15-minute graph runs to 2026-04-01 00:38. The
demo-style spec values shorten both horizons to the one day of history there is: the same code
path as a real month, with less data. FG-C asked for before FG-B exists must fail
and say which month to materialize; afterwards every FG-A row of the scored windows gets one FG-C
row, cold-start hosts (the VDI machines, non-persistent by the inventory) read segment baselines.
"""

from datetime import UTC, datetime

import dagster as dg
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.baselines.datasets import baseline_partition, fg_b_table_uri
from ndr_assets.models.artifacts import load_bundle
from ndr_assets.models.schemas import PREDICTIONS_SCHEMA
from ndr_assets.models.scoring_asset import versioned_uri
from ndr_assets.naming import missing_features_job_name
from ndr_assets.transforms.fg_c import resolve_fg_c_lists
from ndr_assets.transforms.schemas import FG_B_IP_METADATA_SCHEMA, fg_a_schema
from ndr_jobs.backfill import backfill_project
from ndr_jobs.definitions import build_definitions
from ndr_jobs.evaluation import evaluate_detection
from ndr_jobs.synthetic.generate import generate_traffic
from ndr_jobs.synthetic.scenario_files import parse_scenarios
from ndr_jobs.synthetic.writers import ground_truth_uri, warehouse_tables_uri
from ndr_resources.environments import DEFAULT_LOCAL_REGISTRY_URI, LocalPaths
from ndr_resources.lake import LocalLake, join_uri
from ndr_resources.model_registry import LocalModelRegistry
from ndr_resources.model_specs import InferencePredictionsSpec
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from ndr_resources.specs import FgABuilderSpec, FgBBuilderSpec, FgCBuilderSpec
from seeds.provision import provision
from tests.models.bundles import sklearn_scores

PROJECT = "ndr-acme-finance"
BUCKET = "ndr-test"
MONTH = datetime(2026, 4, 1, tzinfo=UTC)
OVERRIDES = {
    "fg_b_builder": {"horizon_days": {"7d": 1, "30d": 1}, "support_min": 4},
    # The model learns from April's first 30 minutes (FG-C windows 00:08 and 00:23) with two trials.
    "if_training": {"window": {"in_month_days": 1 / 48}, "tuning": {"max_trials": 2}},
}
# Attacks only in the held-out windows the April model scores (after its training half hour).
ATTACKS_FROM = datetime(2026, 4, 1, 0, 38, tzinfo=UTC)
SCENARIOS = parse_scenarios([
    {"kind": "internal_port_scan", "name": "scan", "duration": "30m", "targets": 40, "ports": 6},
    {"kind": "bulk_exfiltration", "name": "exfil", "duration": "30m", "total_bytes": 400_000_000, "sessions": 6},
], "test scenarios")
# 2026-03-30 23:53 .. 2026-04-01 01:23 (window starts): 104 windows.
WINDOWS = 104
FG_C_WINDOWS = ("2026-04-01-00:08", "2026-04-01-00:23", "2026-04-01-00:38", "2026-04-01-00:53", "2026-04-01-01:08",
                "2026-04-01-01:23")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("ndr_monthly")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NDR_HOME", str(home))
        mp.setenv("NDR_ENV", "local")
        mp.setenv("NDR_WAREHOUSE_TABLES_URI", warehouse_tables_uri(BUCKET))
        paths = LocalPaths.from_env()
        lake = LocalLake(root=str(paths.lake_root))
        store = SqliteParameterStore(path=str(paths.parameters_db))
        provision(store, lake, project_name=PROJECT, bucket=BUCKET, feature_spec_version="v1", org1="acme",
                  org2="finance", start_date="2026-03-31", spec_overrides=OVERRIDES)
        # FG-C (not FG-A) windows go to the embedded Feature Store's offline table.
        item = store.get_item(PROJECT, "project_parameters#v1")
        store.put_item({**item, "feature_store": {"groups": {"fg_c": {"feature_group_name": "ndr-acme-finance-fg-c"}}}})
        generate_traffic(lake, bucket=BUCKET, tenants=[("acme", "finance")], start=datetime(2026, 3, 31, tzinfo=UTC),
                         days=WINDOWS / 96, seed=3, scale=0.3, hosts_per_tenant=30, scenarios=SCENARIOS,
                         attacks_from=ATTACKS_FROM)
        with dg.DagsterInstance.ephemeral() as instance:
            out = {
                "traffic": backfill_project(PROJECT, "2026-03-30-23:53", "2026-04-01-01:23", instance=instance),
                "fg_c_too_early": backfill_project(PROJECT, "2026-04-01-00:08", "2026-04-01-00:23", instance=instance,
                                                   kind="fg_c"),
                "fg_b_without_inventory": backfill_project(
                    PROJECT, "2026-04", "2026-04", instance=instance, kind="baselines",
                    asset_selection=["fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "pair_rarity"],
                ),
                "baselines": backfill_project(PROJECT, "2026-04", "2026-04", instance=instance, kind="baselines"),
            }
            # April's model lacks FG-C for its two training windows: the fill job backfills exactly those.
            fill_job = build_definitions().resolve_job_def(missing_features_job_name(PROJECT))
            out["fill"] = fill_job.execute_in_process(
                instance=instance, raise_on_error=False,
                run_config={"ops": {f"{missing_features_job_name(PROJECT)}__fill": {"config": {"model_month": "2026-04"}}}},
            )
            out["fg_c_after_fill"] = instance.get_materialized_partitions(dg.AssetKey([PROJECT, "fg_c"]))
            out |= {
                "fg_c": backfill_project(PROJECT, "2026-04-01-00:08", "2026-04-01-01:23", instance=instance, kind="fg_c"),
                "scoring_without_model": backfill_project(PROJECT, "2026-04-01-00:38", "2026-04-01-00:38",
                                                          instance=instance, kind="scoring"),
                "models": backfill_project(PROJECT, "2026-04", "2026-04", instance=instance, kind="models"),
                "models_without_features": backfill_project(PROJECT, "2026-05", "2026-05", instance=instance,
                                                            kind="models"),
                "scoring": backfill_project(PROJECT, "2026-04-01-00:38", "2026-04-01-01:23", instance=instance,
                                            kind="scoring"),
                "regular_two_months": backfill_project(
                    PROJECT, "2026-04", "2026-05", instance=instance, kind="baselines",
                    asset_selection=["fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "pair_rarity"],
                    run_config={"ops": {"ndr_acme_finance__fg_b": {"config": {"baseline_mode": "REGULAR"}}}},
                ),
                "unknown_horizon": backfill_project(
                    PROJECT, "2026-04", "2026-04", instance=instance, kind="baselines",
                    asset_selection=["fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "pair_rarity"],
                    run_config={"ops": {"ndr_acme_finance__fg_b": {"config": {"baseline_horizon": "90d"}}}},
                ),
            }
            out["materialized"] = {
                name: instance.get_materialized_partitions(dg.AssetKey([PROJECT, name]))
                for name in ("machine_inventory", "fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "pair_rarity", "fg_c",
                             "training_data_verification", "if_model", "predictions", "prediction_feature_join")
            }
        yield out, lake, store


def test_fg_c_before_its_baselines_fails_naming_the_month(runs):
    out, _, _ = runs
    assert out["traffic"].error is None
    assert out["fg_c_too_early"].error is not None
    assert "FG-B" in out["fg_c_too_early"].error and "2026-04" in out["fg_c_too_early"].error


def test_fg_b_without_the_months_inventory_snapshot_fails_naming_it(runs):
    out, _, _ = runs
    error = out["fg_b_without_inventory"].error
    assert error is not None and "machine_inventory" in error and "snapshot_month=2026-04" in error


def test_run_parameters_are_checked_before_any_work(runs):
    out, _, _ = runs
    assert "REGULAR computes one month, the run has 2" in out["regular_two_months"].error
    unknown = out["unknown_horizon"].error
    assert "fg_b_builder#v1" in unknown and "'90d'" in unknown and "['7d', '30d']" in unknown


def test_month_partition_materializes_every_monthly_asset_with_passing_checks(runs):
    out, _, _ = runs
    baselines = out["baselines"].raise_on_failure()
    assert baselines.failed_checks in ((), ("fg_b_ip_metadata.cold_start_share",))
    for name in ("machine_inventory", "fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "pair_rarity"):
        assert out["materialized"][name] == {"2026-04-01"}, name
    host = baselines.materializations["fg_b_host"]
    assert host["baseline_mode"] == "REGULAR"
    assert host["horizons"] == "7d=1d, 30d=1d"
    assert host["rows_out"] > 0
    assert baselines.materializations["machine_inventory"]["rows_out"] > 0


def test_ip_metadata_flags_vdi_machines_non_persistent_and_cold(runs, spark):
    _, lake, store = runs
    spec = store.load_typed_spec(FgBBuilderSpec, PROJECT, "fg_b_builder", "v1")
    uri = join_uri(fg_b_table_uri(spec.fg_b_output.s3_prefix, "ip_metadata"), baseline_partition("v1", "30d", MONTH).path())
    meta = spark.read.schema(FG_B_IP_METADATA_SCHEMA).parquet(lake.spark_uri(uri))
    vdi = meta.where(F.col("host_ip").startswith("10.20."))
    assert vdi.count() > 0
    # Every VDI host-label is non-persistent (inventory name VDI-...) and therefore cold, whatever its support.
    assertDataFrameEqual(
        vdi.select("is_non_persistent_machine", "is_cold_start").distinct(),
        spark.createDataFrame([(1, 1)], "is_non_persistent_machine int, is_cold_start int"),
    )
    # Elsewhere cold start means exactly: support below support_min (4).
    others = meta.where(~F.col("host_ip").startswith("10.20."))
    assert others.where((F.col("support_count") < 4) != (F.col("is_cold_start") == 1)).count() == 0


def test_fg_c_scores_every_fg_a_row_with_the_right_baseline(runs, spark):
    out, lake, store = runs
    fg_c_outcome = out["fg_c"].raise_on_failure()
    assert fg_c_outcome.failed_checks == ()
    assert out["materialized"]["fg_c"] == set(FG_C_WINDOWS)
    spec = store.load_typed_spec(FgCBuilderSpec, PROJECT, "fg_c_builder", "v1")
    fg_a_rows = spark.read.schema(fg_a_schema()).parquet(lake.spark_uri(join_uri(spec.fg_a_input.s3_prefix, "dt=2026-04-01")))
    fg_c = spark.read.parquet(lake.spark_uri(join_uri(spec.fg_c_output.s3_prefix, "dt=2026-04-01")))
    assertDataFrameEqual(fg_c.select("host_ip", "window_end_ts"), fg_a_rows.select("host_ip", "window_end_ts"))
    metadata = fg_c_outcome.materializations["fg_c"]
    assert metadata["rows_out"] == fg_a_rows.count()
    # VDI hosts are cold (non-persistent): never on their own baseline.
    assert fg_c.where(F.col("host_ip").startswith("10.20.") & (F.col("baseline_source") == "host")).count() == 0
    imputation = metadata["imputation"]
    assert imputation["host_windows"] == metadata["rows_out"]
    assert imputation["host_baseline"] + imputation["segment_cold_start"] + imputation["segment_no_history"] == (
        imputation["host_windows"]
    )


# ---------------------------------------------------------------- the month's model, its scores and the join


def test_scoring_before_the_months_model_fails_naming_it(runs):
    out, _, _ = runs
    error = out["scoring_without_model"].error
    assert error is not None and "no model for 2026-04" in error and "if_model for 2026-04-01" in error


def test_a_model_without_its_training_windows_is_blocked_by_the_coverage_check(runs):
    out, _, _ = runs
    blocked = out["models_without_features"]
    assert blocked.blocking_failed_checks == ("training_data_verification.training_windows_complete",)
    assert "2026-05-01" not in out["materialized"]["if_model"]


def test_month_model_is_trained_on_its_window_and_written_back(runs, spark):
    out, lake, store = runs
    models = out["models"].raise_on_failure()
    assert models.failed_checks == ()
    assert out["materialized"]["if_model"] == {"2026-04-01"}
    meta = models.materializations["if_model"]
    assert meta["model_version"] == "1-202604"
    assert meta["training_windows"] == 2  # 00:08 and 00:23 (the 23:53 window starts in March: no FG-C)
    fg_c = store.load_typed_spec(FgCBuilderSpec, PROJECT, "fg_c_builder", "v1")
    fg_c_rows = spark.read.parquet(lake.spark_uri(join_uri(fg_c.fg_c_output.s3_prefix, "dt=2026-04-01"))).where(
        F.col("window_end_ts") <= datetime(2026, 4, 1, 0, 38)).count()
    assert meta["rows"] == fg_c_rows > 0
    assert meta["features_in"] == meta["features_kept"] + meta["features_dropped"]
    item = store.get_item(PROJECT, "inference_predictions#v1")
    trained = item["spec"]["model"]["trained_models"]["2026-04"]
    assert trained["model_version"] == "1-202604" and lake.exists(trained["artifact_uri"])
    assert item["spec"]["model"]["model_version"] == "1-202604"
    bundle = load_bundle(lake.read_bytes(trained["artifact_uri"]))
    assert item["spec"]["preprocessing"]["features"] == bundle["features"]
    assert len(bundle["features"]) == meta["features_kept"]
    # Registered once in the embedded registry, with its training window, features and hashes.
    registry = LocalModelRegistry(lake_root=lake.root, registry_uri=DEFAULT_LOCAL_REGISTRY_URI)
    versions = registry.versions(project=PROJECT, model_package_group="ndr-acme-finance-isolation-forest")
    assert [(v.version, v.model_version, v.archive_uri) for v in versions] == [(1, "1-202604", trained["artifact_uri"])]
    attributes = registry.attributes(versions[0])
    assert attributes["features"] == bundle["features"]
    assert attributes["training_window"]["rows"] == meta["rows"]
    assert set(attributes["data_hashes"]) == {"features_sha256_16", "sample_sha256_16", "archive_sha256_16"}


def test_held_out_windows_are_scored_with_explanations_and_joined(runs, spark):
    out, lake, store = runs
    scoring = out["scoring"].raise_on_failure()
    assert scoring.failed_checks == ()
    assert out["materialized"]["predictions"] == set(FG_C_WINDOWS[2:])
    assert out["materialized"]["prediction_feature_join"] == set(FG_C_WINDOWS[2:])
    spec = store.load_typed_spec(InferencePredictionsSpec, PROJECT, "inference_predictions", "v1")
    predictions = spark.read.schema(PREDICTIONS_SCHEMA).parquet(
        lake.spark_uri(versioned_uri(spec.output.s3_prefix, "v1")))
    fg_c_spec = store.load_typed_spec(FgCBuilderSpec, PROJECT, "fg_c_builder", "v1")
    fg_c = spark.read.parquet(lake.spark_uri(join_uri(fg_c_spec.fg_c_output.s3_prefix, "dt=2026-04-01"))).where(
        F.col("window_end_ts") > datetime(2026, 4, 1, 0, 38))
    # Every FG-C host-window of the held-out windows has exactly one prediction, by the April model.
    assertDataFrameEqual(predictions.select("host_ip", "window_label", "window_end_ts"),
                         fg_c.select("host_ip", "window_label", "window_end_ts"))
    assert predictions.select("model_version", "in_sample", "feature_spec_version").distinct().collect() == [
        ("1-202604", False, "v1")]
    assert predictions.where(F.size("top_features") < 3).count() == 0
    # The stored score is the model's own score of the row's features (the in-process endpoint changed nothing).
    bundle = load_bundle(lake.read_bytes(spec.model.trained_models["2026-04"]["artifact_uri"]))
    fg_a_spec = store.load_typed_spec(FgABuilderSpec, PROJECT, "fg_a_builder", "v1")
    fg_a = spark.read.schema(fg_a_schema()).parquet(lake.spark_uri(join_uri(fg_a_spec.fg_a_output.s3_prefix, "dt=2026-04-01")))
    keys = ["host_ip", "window_label", "window_end_ts"]
    rows = (predictions.join(fg_a, keys).join(fg_c.drop(*[c for c in fg_a.columns if c not in keys]), keys)
            .orderBy("host_ip", "window_end_ts").limit(5).toPandas())
    expected = sklearn_scores(bundle, rows[bundle["features"]].to_numpy(float))
    assert rows["prediction_score"].to_numpy() == pytest.approx(expected, rel=1e-12)
    join = scoring.materializations["prediction_feature_join"]
    assert join["rows_out"] == join["prediction_rows"] == predictions.count()


def test_missing_feature_creation_fills_exactly_the_training_windows_without_fg_c(runs):
    out, _, _ = runs
    fill = out["fill"]
    assert fill.success
    [event] = [e for e in fill.all_events if e.event_type_value == "STEP_OUTPUT"]
    backfills = event.event_specific_data.metadata["backfills"].value
    assert [(b["kind"], b["first"], b["last"], b["windows"], b["ok"]) for b in backfills] == [
        ("fg_c", "2026-04-01-00:08", "2026-04-01-00:23", 2, True)]
    assert out["fg_c_after_fill"] == {"2026-04-01-00:08", "2026-04-01-00:23"}


def test_fg_c_windows_reach_the_offline_feature_store_and_fg_a_publication_is_off(runs, spark):
    out, lake, _ = runs
    fg_c = out["fg_c"].raise_on_failure().materializations
    published = fg_c["fg_c_feature_store"]
    assert published["enabled"] is True and published["failed_records"] == 0
    assert published["records"] == fg_c["fg_c"]["rows_out"]
    offline = spark.read.parquet(lake.spark_uri(published["offline_uri"]))
    # The offline store appends, as SageMaker's does: the fill job's earlier FG-C run of the first two
    # windows is there too, and readers keep the latest write_time per record.
    assert offline.select("record_id").distinct().count() == published["records"]
    assert offline.count() > published["records"]
    assert {"record_id", "event_time"} <= set(offline.columns)
    fg_a = out["traffic"].materializations["fg_a_feature_store"]
    assert fg_a == {"enabled": False, "reason": "feature_store has no enabled group for fg_a"}


def test_the_injected_attacks_rank_above_normal_host_windows(runs, spark):
    _, lake, store = runs
    spec = store.load_typed_spec(InferencePredictionsSpec, PROJECT, "inference_predictions", "v1")
    fg_c_spec = store.load_typed_spec(FgCBuilderSpec, PROJECT, "fg_c_builder", "v1")
    starts = [datetime.strptime(k, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC) for k in FG_C_WINDOWS[2:]]
    report = evaluate_detection(
        spark, lake, predictions_uri=versioned_uri(spec.output.s3_prefix, "v1"),
        fg_c_uri=fg_c_spec.fg_c_output.s3_prefix, fg_c_schema=resolve_fg_c_lists(fg_c_spec).schema(),
        ground_truth_uri=ground_truth_uri(BUCKET, "acme", "finance"), org1="acme", org2="finance", window_starts=starts,
    )
    by_name = {s.scenario: s for s in report.scenarios}
    assert {"scan", "exfil"} <= set(by_name)
    assert by_name["scan"].positives > 0 and by_name["exfil"].positives > 0
    # A model that learnt from two windows of 30 hosts: the scan stands out; the exfiltration's single
    # window ranks ahead of the largest-|z_mad| baseline (the demo prints the figures on a real day).
    assert by_name["scan"].model.roc_auc >= 0.9, by_name["scan"]
    assert by_name["exfil"].model.roc_auc > by_name["exfil"].baseline.roc_auc, by_name["exfil"]


def test_a_window_whose_payloads_keep_failing_is_not_published_and_the_run_names_them(runs, spark, tmp_path):
    from ndr_assets.models.artifacts import extract_archive
    from ndr_resources.environments import resources_for
    from ndr_resources.model_endpoint import SageMakerModelEndpoint
    from tests.models.sagemaker_peer import SageMakerPeer
    from tests.moto_server import FAKE_AWS_ENV

    _, lake, store = runs
    spec = store.load_typed_spec(InferencePredictionsSpec, PROJECT, "inference_predictions", "v1")
    model_dir = extract_archive(lake.read_bytes(spec.model.trained_models["2026-04"]["artifact_uri"]), tmp_path / "model")
    window_uri = join_uri(versioned_uri(spec.output.s3_prefix, "v1"), "dt=2026-04-01/window=0038") + "/"
    published_before = sorted(lake.list_objects(window_uri))
    # Every call is an InternalFailure: the payloads fail after model.max_retries retries.
    peer = SageMakerPeer(str(model_dir), script=["500"] * 500).start()
    asset = build_definitions().get_assets_def(dg.AssetKey([PROJECT, "predictions"]))
    resources = {**resources_for("local"),
                 "model_endpoint": SageMakerModelEndpoint(region_name="us-east-1", endpoint_url=peer.url)}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in FAKE_AWS_ENV.items():
                mp.setenv(name, value)
                mp.setitem(spark.sparkContext.environment, name, value)
            with dg.DagsterInstance.ephemeral() as instance:
                result = dg.materialize([asset], partition_key="2026-04-01-00:38", resources=resources,
                                        instance=instance, raise_on_error=False)
    finally:
        peer.stop()
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "predictions of 2026-04 not published (nothing was written)" in message
    assert "payloads" in message and "p0000" in message and "InternalFailure" in message
    assert sorted(lake.list_objects(window_uri)) == published_before  # the earlier version is still there
    # Each payload was tried once plus max_retries times, no more.
    assert peer.requests and len(peer.requests) % (spec.model.max_retries + 1) == 0

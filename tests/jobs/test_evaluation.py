"""``ndr_jobs.evaluation``: the metrics on hand-checked tiny frames, and one evaluation over a tiny lake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.datasets import window_partitions, with_partitions_of_window_end
from ndr_assets.models.schemas import PREDICTIONS_SCHEMA
from ndr_jobs.evaluation import (
    OVERALL,
    EvaluationInputError,
    baseline_score,
    evaluate_detection,
    ranking_metrics,
    read_ground_truth,
    worst_day_ranks,
)
from ndr_jobs.synthetic.writers import write_ground_truth
from ndr_resources.lake import LocalLake

LABELLED = "score double, scenarios array<string>"


def _metrics(spark, rows, k_values=(1, 2, 3)):
    frame = spark.createDataFrame(rows, LABELLED)
    return {r["group"]: r.asDict() for r in ranking_metrics(frame, "score", k_values).collect()}


def test_a_perfect_ranking_scores_one_and_a_reversed_one_zero(spark):
    perfect = _metrics(spark, [(4.0, ["a"]), (3.0, ["a"]), (2.0, []), (1.0, [])])["a"]
    assert (perfect["roc_auc"], perfect["pr_auc"], perfect["p_at_2"]) == (1.0, 1.0, 1.0)
    assert (perfect["positives"], perfect["negatives"]) == (2, 2)
    reversed_ = _metrics(spark, [(1.0, ["a"]), (2.0, ["a"]), (3.0, []), (4.0, [])])["a"]
    assert reversed_["roc_auc"] == 0.0 and reversed_["p_at_2"] == 0.0
    # Positives at ranks 3 and 4: precisions 1/3 and 2/4.
    assert reversed_["pr_auc"] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_ties_count_one_half_and_share_the_top_k_pro_rata(spark):
    tied = _metrics(spark, [(1.0, ["a"]), (1.0, ["a"]), (1.0, []), (1.0, [])])["a"]
    assert tied["roc_auc"] == 0.5
    assert tied["pr_auc"] == 0.5  # one threshold: precision 2/4 at recall 1
    assert tied["p_at_1"] == 0.5 and tied["p_at_3"] == 0.5


def test_a_hand_computed_case_with_two_scenarios(spark):
    rows = [
        (0.9, ["beacon"]), (0.6, ["beacon"]), (0.6, ["beacon", "scan"]),
        (0.2, ["scan"]),
        (0.8, []), (0.6, []), (0.3, []), (0.1, []),
    ]
    m = _metrics(spark, rows)
    beacon, scan, overall = m["beacon"], m["scan"], m[OVERALL]
    # beacon: 0.9 beats 4 negatives; each 0.6 beats 0.3 and 0.1 and ties 0.6: 4 + 2 x 2.5 = 9 of 3 x 4 pairs.
    assert beacon["roc_auc"] == pytest.approx(9 / 12)
    # Thresholds 0.9 (precision 1, recall +1/3) and 0.6 (precision 3/5, recall +2/3).
    assert beacon["pr_auc"] == pytest.approx(1 / 3 + 2 / 3 * 3 / 5)
    assert beacon["p_at_2"] == pytest.approx(1 / 2)  # 0.9 (positive), 0.8 (negative)
    assert beacon["p_at_3"] == pytest.approx((1 + 2 / 3) / 3)  # one of the 0.6 tie of three, 2 of them positive
    # scan: 0.6 ties one negative (0.5) and beats two; 0.2 beats one: 3.5 of 2 x 4.
    assert scan["roc_auc"] == pytest.approx(3.5 / 8)
    # Descending: 0.8 n, 0.6 tie (1 scan positive of 2) -> precision 1/3 at the tie; 0.3 n, 0.2 p -> 2/5.
    assert scan["pr_auc"] == pytest.approx((1 / 3 + 2 / 5) / 2)
    # overall: four positives (the shared one once) against four negatives: 4 + 2.5 + 2.5 + 1 = 10 of 16.
    assert (overall["positives"], overall["negatives"]) == (4, 4)
    assert overall["roc_auc"] == pytest.approx(10 / 16)
    assert overall["p_at_1"] == 1.0


def test_worst_day_rank_is_the_worst_days_best_rank_and_ties_count_against(spark):
    frame = spark.createDataFrame(
        [
            (date(2026, 4, 1), 0.5, ["beacon"]), (date(2026, 4, 1), 0.9, []), (date(2026, 4, 1), 0.5, []),
            (date(2026, 4, 1), 0.1, []),
            (date(2026, 4, 2), 0.95, ["beacon"]), (date(2026, 4, 2), 0.2, ["beacon"]), (date(2026, 4, 2), 0.7, ["scan"]),
            (date(2026, 4, 2), 0.8, []),
        ],
        "day date, score double, scenarios array<string>",
    )
    ranks = {r["group"]: r["worst_day_rank"] for r in worst_day_ranks(frame, "score").collect()}
    # beacon: April 1st its 0.5 ties a negative below 0.9: rank 3; April 2nd its 0.95 is first.
    # scan: 0.7 below 0.95 and 0.8: rank 3. overall: rank 3 on both days.
    assert ranks == {"beacon": 3, "scan": 3, OVERALL: 3}


def test_the_baseline_is_the_largest_absolute_z_mad(spark):
    frame = spark.createDataFrame(
        [(-4.0, 1.0, 99.0), (None, 2.5, 0.0), (None, None, 7.0)], "z_mad_a double, z_mad_b double, other double"
    )
    assert [r[0] for r in frame.select(baseline_score(frame)).collect()] == [4.0, 2.5, 0.0]
    with pytest.raises(EvaluationInputError, match="no z_mad_"):
        baseline_score(frame.select("other"))


def test_ground_truth_files_from_before_scenario_names_still_read(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    old = "s3://ndr-eval/synthetic/acme/finance/ground_truth.csv"
    lake.write_bytes(old, b"org1,org2,host_ip,window_start,scenario\nacme,finance,10.0.0.1,2026-04-01T00:08:00+00:00,c2_beaconing\n")
    row = read_ground_truth(spark, lake, old).collect()[0]
    assert (row["scenario_name"], row["window_end_ts"]) == ("c2_beaconing", datetime(2026, 4, 1, 0, 23))
    with pytest.raises(EvaluationInputError, match="no ground truth at s3://ndr-eval/nowhere.csv"):
        read_ground_truth(spark, lake, "s3://ndr-eval/nowhere.csv")


# ---------------------------------------------------------------- one evaluation over a tiny lake

WINDOWS = [datetime(2026, 4, 1, 0, 8, tzinfo=UTC), datetime(2026, 4, 1, 0, 23, tzinfo=UTC)]
PREDICTIONS_URI = "s3://ndr-eval/predictions/feature_spec_version=v1/"
FG_C_URI = "s3://ndr-eval/fg_c/"
TRUTH_URI = "s3://ndr-eval/synthetic/acme/finance/ground_truth.csv"
FG_C_SCHEMA = T.StructType([
    T.StructField("host_ip", T.StringType()), T.StructField("window_end_ts", T.TimestampType()),
    T.StructField("z_mad_bytes", T.DoubleType()), T.StructField("z_mad_peers", T.DoubleType()),
])
# (host, window index, model score, z_mad_bytes, z_mad_peers)
HOST_WINDOWS = [
    ("10.10.0.1", 0, 0.90, 1.0, 0.5),   # beacon
    ("10.10.0.1", 1, 0.80, 0.2, 0.1),   # beacon
    ("10.10.0.2", 0, 0.70, -9.0, 1.0),  # scan (a negative z: abs)
    ("10.10.0.3", 0, 0.75, 3.0, None),
    ("10.10.0.3", 1, 0.10, 0.0, 0.0),
    ("10.10.0.4", 0, 0.20, 5.0, 2.0),
    ("10.10.0.4", 1, 0.30, 0.5, 8.0),
]


@pytest.fixture(scope="module")
def tiny_lake(spark, tmp_path_factory):
    lake = LocalLake(root=str(tmp_path_factory.mktemp("evaluation")))
    _publish(spark, lake, PREDICTIONS_URI, FG_C_URI, TRUTH_URI, WINDOWS)
    return lake


def _publish(spark, lake, predictions_uri, fg_c_uri, truth_uri, windows, z_columns=("z_mad_bytes", "z_mad_peers")):
    """HOST_WINDOWS as predictions and FG-C rows (``z_columns``) of the two WINDOWS, publishing every window of ``windows``."""
    ends = [w + timedelta(minutes=15) for w in WINDOWS]
    rows = [(h, ends[i].replace(tzinfo=None), s, b, p) for h, i, s, b, p in HOST_WINDOWS]
    base = spark.createDataFrame(rows, "host_ip string, window_end_ts timestamp, score double, zb double, zp double")
    predictions = base.select(
        "host_ip", F.lit("night").alias("window_label"), "window_end_ts", F.lit("v1").alias("feature_spec_version"),
        F.col("score").alias("prediction_score"), F.lit(0).alias("prediction_label"), F.lit("1").alias("model_version"),
        F.lit("if").alias("model_name"), F.col("window_end_ts").alias("inference_ts"), F.lit("mb").alias("mini_batch_id"),
        F.concat_ws("#", "host_ip", "window_end_ts").alias("record_id"), F.lit(False).alias("in_sample"),
        F.array().cast(PREDICTIONS_SCHEMA["top_features"].dataType).alias("top_features"),
    )
    lake.publish_partitions(with_partitions_of_window_end(predictions, "window_end_ts"), predictions_uri,
                            window_partitions(windows))
    fg_c = base.select("host_ip", "window_end_ts", F.col("zb").alias(z_columns[0]), F.col("zp").alias(z_columns[1]))
    lake.publish_partitions(with_partitions_of_window_end(fg_c, "window_end_ts"), fg_c_uri, window_partitions(windows))
    truth = pd.DataFrame(
        [
            ("acme", "finance", "10.10.0.1", "2026-04-01T00:08:00+00:00", "c2_beaconing", "beacon"),
            ("acme", "finance", "10.10.0.1", "2026-04-01T00:23:00+00:00", "c2_beaconing", "beacon"),
            ("acme", "finance", "10.10.0.2", "2026-04-01T00:08:00+00:00", "internal_port_scan", "scan"),
            ("acme", "finance", "10.10.0.2", "2026-04-02T00:08:00+00:00", "internal_port_scan", "scan"),  # not evaluated
            ("globex", "retail", "10.10.0.4", "2026-04-01T00:08:00+00:00", "bulk_exfiltration", "exfil"),  # other tenant
        ],
        columns=["org1", "org2", "host_ip", "window_start", "scenario", "scenario_name"],
    )
    write_ground_truth(lake, truth_uri, truth)


def _evaluate(spark, lake, windows=WINDOWS, predictions_uri=PREDICTIONS_URI):
    return evaluate_detection(
        spark, lake, predictions_uri=predictions_uri, fg_c_uri=FG_C_URI, fg_c_schema=FG_C_SCHEMA,
        ground_truth_uri=TRUTH_URI, org1="acme", org2="finance", window_starts=windows, k_values=(1, 3),
    )


def test_evaluation_scores_model_and_baseline_per_scenario(spark, tiny_lake):
    report = _evaluate(spark, tiny_lake)
    assert (report.windows, report.host_windows) == (2, 7)
    assert [s.scenario for s in report.scenarios] == ["beacon", "scan", OVERALL]
    beacon, scan, overall = (report.row(n) for n in ("beacon", "scan", OVERALL))
    assert (beacon.kind, beacon.positives, beacon.negatives) == ("c2_beaconing", 2, 4)
    # Model: negatives 0.75, 0.10, 0.20, 0.30. Beacon 0.9 and 0.8 beat all; scan 0.7 beats three.
    assert beacon.model.roc_auc == 1.0 and beacon.model.pr_auc == 1.0
    assert scan.model.roc_auc == pytest.approx(3 / 4)
    assert overall.model.roc_auc == pytest.approx((4 + 4 + 3) / 12)
    assert overall.model.precision_at == {1: 1.0, 3: pytest.approx(2 / 3)}
    # Baseline (largest |z_mad|): beacon 1.0 and 0.2; scan 9.0; negatives 3.0, 0.0, 5.0, 8.0.
    assert beacon.baseline.roc_auc == pytest.approx((1 + 1) / 8)
    assert scan.baseline.roc_auc == 1.0 and scan.baseline.precision_at[1] == 1.0
    # Day ranks (one day, 7 host-windows): model beacon 1st, scan 4th (0.9, 0.8, 0.75 above);
    # baseline beacon's best 1.0 is 5th (9, 8, 5, 3 above), scan first.
    assert (beacon.model.worst_day_rank, scan.model.worst_day_rank, overall.model.worst_day_rank) == (1, 4, 4)
    assert (beacon.baseline.worst_day_rank, scan.baseline.worst_day_rank) == (5, 1)
    assert report.as_rows()[0]["roc_auc_model"] == 1.0
    assert "| beacon (c2_beaconing) | 2 | 1.000 / 0.250 |" in report.markdown()


def test_missing_predictions_name_the_windows(spark, tiny_lake):
    later = [*WINDOWS, datetime(2026, 4, 1, 0, 38, tzinfo=UTC)]
    with pytest.raises(EvaluationInputError) as raised:
        _evaluate(spark, tiny_lake, windows=later)
    assert str(raised.value) == (
        f"no published predictions for 1 of 3 window(s) at {PREDICTIONS_URI}: 2026-04-01/0038; "
        "materialize the predictions of these windows first (the project's predictions asset)"
    )


def test_a_projects_evaluation_resolves_its_specs_and_is_recorded_on_its_model(spark, tmp_path, monkeypatch):
    import dagster as dg
    from typer.testing import CliRunner

    from ndr_assets.naming import IF_MODEL, asset_key
    from ndr_assets.transforms.fg_c import resolve_fg_c_lists
    from ndr_assets.transforms.windows import window_starts
    from ndr_jobs.backfill import use_home
    from ndr_jobs.cli import app
    from ndr_jobs.evaluation import evaluate_project
    from ndr_resources.environments import HOME_ENV
    from ndr_resources.parameter_store.sqlite import SqliteParameterStore
    from ndr_resources.specs import FgCBuilderSpec
    from seeds.provision import provision

    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    paths = use_home(tmp_path)
    lake, store = LocalLake(root=str(paths.lake_root)), SqliteParameterStore(path=str(paths.parameters_db))
    project = "ndr-acme-finance"
    provision(store, lake, project_name=project, bucket="ndr-eval", feature_spec_version="v1", org1="acme",
              org2="finance", start_date="2026-03-28")
    predictions_uri = f"s3://ndr-eval/projects/{project}/versions/v1/data/inference/predictions/feature_spec_version=v1/"

    result = CliRunner().invoke(app, ["evaluate", "--project", project, "--start", "2026-04-01", "--end", "2026-04-01"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert (f"error: {project}: no published predictions for 96 of 96 window(s) at {predictions_uri}: 2026-03-31/2353, "
            "2026-04-01/0008") in message
    assert "materialize the predictions of these windows first" in message

    fg_c_spec = store.load_typed_spec(FgCBuilderSpec, project, "fg_c_builder", "v1")
    z_columns = [c for c in resolve_fg_c_lists(fg_c_spec).schema().names if c.startswith("z_mad_")][:2]
    day = window_starts(datetime(2026, 3, 31, 23, 53, tzinfo=UTC), datetime(2026, 4, 1, 23, 53, tzinfo=UTC))
    _publish(spark, lake, predictions_uri, fg_c_spec.fg_c_output.s3_prefix,
             "s3://ndr-eval/synthetic/acme/finance/ground_truth.csv", list(day), z_columns)
    outcome = evaluate_project(project, "2026-04-01", "2026-04-01", spark=spark, k_values=(1, 3))
    assert (outcome.report.windows, outcome.report.host_windows) == (96, 7)
    assert outcome.report.row("beacon").model.roc_auc == 1.0
    assert outcome.report.row("scan").baseline.worst_day_rank == 1
    assert outcome.recorded_months == ("2026-04-01",)
    instance = dg.DagsterInstance.get()
    try:
        records = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=asset_key(project, IF_MODEL)), limit=5).records
    finally:
        instance.dispose()
    assert len(records) == 1
    observation = records[0].asset_observation
    assert observation.partition == "2026-04-01"
    assert observation.metadata["roc_auc_overall_model"].value == pytest.approx(11 / 12)
    assert "| beacon (c2_beaconing) | 2 | 1.000 / 0.250 |" in observation.metadata["evaluation_table"].value

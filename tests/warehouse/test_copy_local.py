"""LocalWarehouse.copy_parquet_into end to end with Spark: staged Parquet appended to a lake table
that the local warehouse then SELECTs from; DELETE pre_sql applied by rewriting the table."""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import types as T

from ndr_resources.errors import SpecError
from ndr_resources.lake import LocalLake
from ndr_resources.warehouse import LocalWarehouse, WarehouseError, with_window_delete
from tests.warehouse.test_copy_sql import ITEM, PROJECT, STAGING, destination

TABLES = "s3://ndr-test/warehouse/"
COLUMNS = ["host_ip", "window_label", "window_end_ts", "prediction_score"]
SCHEMA = T.StructType(
    [
        T.StructField("host_ip", T.StringType()),
        T.StructField("window_label", T.StringType()),
        T.StructField("window_end_ts", T.TimestampType()),
        T.StructField("prediction_score", T.DoubleType()),
    ]
)
END_A, END_B = datetime(2026, 1, 5, 0, 23), datetime(2026, 1, 5, 0, 38)


@pytest.fixture
def lake(tmp_path):
    return LocalLake(root=str(tmp_path))


@pytest.fixture
def warehouse(tmp_path):
    return LocalWarehouse(lake_root=str(tmp_path), tables_uri=TABLES)


def stage(spark, lake, run: str, rows: list[tuple], schema=SCHEMA) -> str:
    uri = f"{STAGING}{run}/"
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(lake.spark_uri(uri))
    return uri


def load(spark, warehouse, staged: str, dest=None, window_end: datetime | None = None, columns=COLUMNS):
    dest = dest or destination()
    if window_end is not None:
        dest = with_window_delete(dest, start=window_end, end=window_end)
    return warehouse.copy_parquet_into(
        destination=dest, staged_uri=staged, columns=columns, project=PROJECT, item=ITEM, spark=spark
    )


def table_rows(spark, warehouse) -> list[tuple]:
    warehouse.register_tables(spark)
    rows = spark.sql(
        "SELECT host_ip, window_label, window_end_ts, prediction_score FROM ndr_join.prediction_features "
        "ORDER BY window_end_ts, host_ip"
    ).collect()
    return [tuple(r) for r in rows]


def test_windows_append_and_a_rerun_with_the_window_delete_replaces_its_rows(spark, lake, warehouse):
    first = stage(spark, lake, "a1", [("10.0.0.1", "15m", END_A, 0.91), ("10.0.0.2", "15m", END_A, 0.12)])
    outcome = load(spark, warehouse, first, window_end=END_A)
    assert outcome.rows_loaded == 2
    assert outcome.statements == (
        'DELETE FROM "ndr_join"."prediction_features" WHERE "window_end_ts" '
        "BETWEEN TIMESTAMP '2026-01-05 00:23:00' AND TIMESTAMP '2026-01-05 00:23:00'",
        'COPY "ndr_join"."prediction_features" ("host_ip", "window_label", "window_end_ts", "prediction_score") '
        "FROM 's3://ndr-test/join/_staging/a1/part-' FORMAT AS PARQUET",
    )
    assert outcome.seconds > 0

    assert load(spark, warehouse, stage(spark, lake, "b1", [("10.0.0.1", "15m", END_B, 0.55)]), window_end=END_B).rows_loaded == 1
    assert table_rows(spark, warehouse) == [
        ("10.0.0.1", "15m", END_A, 0.91), ("10.0.0.2", "15m", END_A, 0.12), ("10.0.0.1", "15m", END_B, 0.55),
    ]  # fmt: skip

    rerun = stage(spark, lake, "a2", [("10.0.0.1", "15m", END_A, 0.95), ("10.0.0.2", "15m", END_A, 0.10)])
    assert load(spark, warehouse, rerun, window_end=END_A).rows_loaded == 2
    assert table_rows(spark, warehouse) == [
        ("10.0.0.1", "15m", END_A, 0.95), ("10.0.0.2", "15m", END_A, 0.10), ("10.0.0.1", "15m", END_B, 0.55),
    ]  # fmt: skip
    # The rewrite leaves no hidden folders behind, so the schema holds exactly the one table.
    assert lake.list_children(TABLES + "ndr_join/") == ["prediction_features"]

    # Without a DELETE of the window in pre_sql, a re-run appends its rows again (the documented rule).
    assert load(spark, warehouse, rerun).rows_loaded == 2
    assert len(table_rows(spark, warehouse)) == 5


def test_create_if_not_exists_and_analyze_are_no_ops_and_post_sql_delete_runs_after_the_append(spark, lake, warehouse):
    staged = stage(spark, lake, "c1", [("10.0.0.1", "15m", END_A, 0.91), ("10.0.0.2", "15m", END_A, None)])
    dest = destination(
        pre_sql=["CREATE TABLE IF NOT EXISTS ndr_join.prediction_features (host_ip VARCHAR(64))"],
        post_sql=["DELETE FROM ndr_join.prediction_features WHERE prediction_score IS NULL",
                  "ANALYZE ndr_join.prediction_features"],
    )  # fmt: skip
    outcome = load(spark, warehouse, staged, dest=dest)
    assert outcome.rows_loaded == 2  # what the COPY appended; post_sql then removed one
    assert [s.split(" ", 1)[0] for s in outcome.statements] == ["CREATE", "COPY", "DELETE", "ANALYZE"]
    assert table_rows(spark, warehouse) == [("10.0.0.1", "15m", END_A, 0.91)]


def test_statements_the_lake_cannot_run_are_refused_before_anything_is_written(spark, lake, warehouse):
    staged = stage(spark, lake, "d1", [("10.0.0.1", "15m", END_A, 0.91)])
    for key, dest in (
        ("post_sql[0]", destination(post_sql=["INSERT INTO ndr_join.audit SELECT count(*) FROM ndr_join.prediction_features"])),
        ("pre_sql[0]", destination(pre_sql=["UPDATE ndr_join.prediction_features SET prediction_score = 0"])),
        ("pre_sql[1]", destination(pre_sql=["ANALYZE ndr_join.x", "DELETE FROM ndr_join.x USING ndr_join.y WHERE x.a = y.a"])),
    ):  # fmt: skip
        with pytest.raises(SpecError) as caught:
            load(spark, warehouse, staged, dest=dest)
        assert caught.value.key == f"destination.redshift.{key}"
        assert "cannot run on the embedded warehouse (Parquet tables in the lake)" in str(caught.value)
    assert not lake.exists(TABLES + "ndr_join/prediction_features/")


def test_staged_files_must_match_the_column_list_and_the_table(spark, lake, warehouse):
    load(spark, warehouse, stage(spark, lake, "e1", [("10.0.0.1", "15m", END_A, 0.91)]))

    reordered = stage(spark, lake, "e2", [("15m", "10.0.0.1", END_A, 0.5)],
                      T.StructType([SCHEMA["window_label"], SCHEMA["host_ip"], SCHEMA["window_end_ts"], SCHEMA["prediction_score"]]))  # fmt: skip
    with pytest.raises(WarehouseError, match=r"columns \['window_label', 'host_ip', 'window_end_ts', 'prediction_score'\] "
                       r"are not the COPY column list \['host_ip', 'window_label', 'window_end_ts', 'prediction_score'\]"):
        load(spark, warehouse, reordered)

    as_text = T.StructType([*SCHEMA.fields[:3], T.StructField("prediction_score", T.StringType())])
    with pytest.raises(WarehouseError) as caught:
        load(spark, warehouse, stage(spark, lake, "e3", [("10.0.0.1", "15m", END_A, "0.5")], as_text))
    assert str(caught.value) == (
        "project 'ndr-acme-finance', item 'prediction_feature_join': COPY into ndr_join.prediction_features: "
        "table ndr_join.prediction_features and the staged files differ in type: prediction_score double vs string"
    )
    assert table_rows(spark, warehouse) == [("10.0.0.1", "15m", END_A, 0.91)]


def test_missing_files_a_bad_condition_and_no_spark_name_project_and_item(spark, lake, warehouse):
    with pytest.raises(WarehouseError, match="item 'prediction_feature_join': COPY into ndr_join.prediction_features: "
                       "no part-\\*.parquet files under the staged URI s3://ndr-test/join/_staging/none/"):
        load(spark, warehouse, f"{STAGING}none/")

    staged = stage(spark, lake, "f1", [("10.0.0.1", "15m", END_A, 0.91)])
    load(spark, warehouse, staged)
    bad = destination(pre_sql=["DELETE FROM ndr_join.prediction_features WHERE no_such_column = 1"])
    with pytest.raises(WarehouseError, match=r"destination.redshift.pre_sql\[0\] failed on the local warehouse: .*no_such_column"):
        load(spark, warehouse, staged, dest=bad)
    assert table_rows(spark, warehouse) == [("10.0.0.1", "15m", END_A, 0.91)]

    with pytest.raises(WarehouseError, match="the local warehouse needs the Spark session"):
        warehouse.copy_parquet_into(destination=destination(), staged_uri=staged, columns=COLUMNS, project=PROJECT, item=ITEM)

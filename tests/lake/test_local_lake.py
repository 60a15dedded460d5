"""The local lake: URI mapping, hostile keys, atomic partition publish and published-only reads."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from ndr_resources.errors import InputDataError
from ndr_resources.lake import SUCCESS_MARKER, LocalLake, PartitionSpec, join_uri, local_path_for

SCHEMA = T.StructType([T.StructField("host_ip", T.StringType()), T.StructField("n", T.LongType())])
DAY1 = PartitionSpec((("dt", "2026-01-05"),))
DAY2 = PartitionSpec((("dt", "2026-01-06"),))
DATASET = "s3://bkt/projects/p/data/features/x/"


def test_uri_maps_onto_root(tmp_path):
    assert local_path_for("s3://bkt/a/b.json", tmp_path) == tmp_path / "bkt" / "a" / "b.json"
    assert join_uri("s3://bkt/a/", "dt=1/", "f") == "s3://bkt/a/dt=1/f"


@pytest.mark.parametrize(
    "uri", ["s3://bkt/../etc/passwd", "s3://bkt/a/./b", "s3:///key", "file:///etc", "s3://bkt//abs", "s3://bkt/a\\b"]
)
def test_hostile_uris_are_refused(tmp_path, uri):
    with pytest.raises(InputDataError):
        local_path_for(uri, tmp_path)


def _frame(spark, rows):
    return spark.createDataFrame(rows, "host_ip string, n long, dt string")


def test_publish_replaces_exactly_the_listed_partitions(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    counts = lake.publish_partitions(
        _frame(spark, [("a", 1, "2026-01-05"), ("b", 2, "2026-01-06")]), DATASET, [DAY1, DAY2]
    )
    assert counts == {"2026-01-05": 1, "2026-01-06": 1}
    # Re-publishing day 1 alone leaves day 2 untouched and does not duplicate day 1.
    lake.publish_partitions(_frame(spark, [("c", 3, "2026-01-05")]), DATASET, [DAY1])
    df, missing = lake.read_partitions(spark, DATASET, [DAY1, DAY2], SCHEMA)
    assert missing == []
    assertDataFrameEqual(df, spark.createDataFrame([("c", 3), ("b", 2)], SCHEMA))
    assert lake.read_json(join_uri(DATASET, DAY1.path(), SUCCESS_MARKER))["rows"] == 1
    assert lake.list_children(DATASET) == ["dt=2026-01-05", "dt=2026-01-06"]


def test_empty_partition_is_published_and_reads_empty(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    lake.publish_partitions(_frame(spark, [("a", 1, "2026-01-05")]), DATASET, [DAY1])
    lake.publish_partitions(_frame(spark, [("a", 1, "2026-01-05")]).limit(0), DATASET, [DAY1])
    df, missing = lake.read_partitions(spark, DATASET, [DAY1], SCHEMA)
    assert missing == [] and df.count() == 0


def test_rows_outside_the_published_partitions_are_refused(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    with pytest.raises(InputDataError, match="outside the partitions"):
        lake.publish_partitions(_frame(spark, [("a", 1, "2026-01-07")]), DATASET, [DAY1])
    assert lake.list_objects(DATASET) == []


def test_counts_given_by_the_caller_are_the_markers_and_a_row_outside_fails_before_writing(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    frame = _frame(spark, [("a", 1, "2026-01-05"), ("b", 2, "2026-01-05")])
    assert lake.publish_partitions(frame, DATASET, [DAY1, DAY2], rows={"2026-01-05": 2}) == {
        "2026-01-05": 2, "2026-01-06": 0}
    assert lake.read_json(join_uri(DATASET, DAY1.path(), SUCCESS_MARKER))["rows"] == 2
    assert lake.read_json(join_uri(DATASET, DAY2.path(), SUCCESS_MARKER))["rows"] == 0
    with pytest.raises(InputDataError, match=r"outside the partitions being published: \['2026-01-07'\]"):
        lake.publish_partitions(_frame(spark, [("c", 3, "2026-01-07")]), DATASET, [DAY1], rows={"2026-01-07": 1})
    assert not any("_staging" in uri for uri in lake.list_objects(DATASET))


def test_unpublished_partition_is_reported_missing(spark, tmp_path):
    lake = LocalLake(root=str(tmp_path))
    lake.publish_partitions(_frame(spark, [("a", 1, "2026-01-05")]), DATASET, [DAY1])
    # A partition folder without _SUCCESS (a crashed writer) is not read.
    lake.write_bytes(join_uri(DATASET, DAY2.path(), "part-0.parquet"), b"garbage")
    df, missing = lake.read_partitions(spark, DATASET, [DAY1, DAY2], SCHEMA)
    assert missing == [DAY2]
    assertDataFrameEqual(df, spark.createDataFrame([("a", 1)], SCHEMA))

"""The S3 lake's primitives over HTTP against moto's server (listing, markers, moves, deletes)."""

import boto3
import pytest

from ndr_resources.errors import InputDataError
from ndr_resources.lake import S3Lake

BUCKET = "ndr-lake-test"


@pytest.fixture
def lake(moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield S3Lake(region_name="us-east-1", endpoint_url=moto_endpoint)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_write_read_list_and_children(lake):
    lake.write_bytes(f"s3://{BUCKET}/raw/20260105T002200Z/part-0.json.gz", b"a")
    lake.write_bytes(f"s3://{BUCKET}/raw/20260105T003700Z/part-0.json.gz", b"b")
    lake.write_json(f"s3://{BUCKET}/raw/20260105T003700Z/_meta.json", {"n": 1})
    assert lake.list_children(f"s3://{BUCKET}/raw/") == ["20260105T002200Z", "20260105T003700Z"]
    assert lake.list_objects(f"s3://{BUCKET}/raw/20260105T003700Z") == [
        f"s3://{BUCKET}/raw/20260105T003700Z/_meta.json",
        f"s3://{BUCKET}/raw/20260105T003700Z/part-0.json.gz",
    ]
    assert lake.read_bytes(f"s3://{BUCKET}/raw/20260105T002200Z/part-0.json.gz") == b"a"
    assert lake.read_json(f"s3://{BUCKET}/raw/20260105T003700Z/_meta.json") == {"n": 1}
    assert lake.spark_uri(f"s3://{BUCKET}/raw/x") == f"s3a://{BUCKET}/raw/x"


def test_exists_move_and_delete(lake):
    lake.write_bytes(f"s3://{BUCKET}/ds/_staging/u1/dt=2026-01-05/part-0.parquet", b"p")
    lake.move_prefix(f"s3://{BUCKET}/ds/_staging/u1/dt=2026-01-05/", f"s3://{BUCKET}/ds/dt=2026-01-05/")
    assert lake.exists(f"s3://{BUCKET}/ds/dt=2026-01-05/part-0.parquet")
    assert lake.exists(f"s3://{BUCKET}/ds/dt=2026-01-05")
    assert not lake.exists(f"s3://{BUCKET}/ds/_staging/u1/dt=2026-01-05/part-0.parquet")
    lake.delete_prefix(f"s3://{BUCKET}/ds/")
    assert lake.list_objects(f"s3://{BUCKET}/ds/") == []


def test_missing_object_is_a_clear_error(lake):
    with pytest.raises(InputDataError, match="cannot read object"):
        lake.read_bytes(f"s3://{BUCKET}/nope.json")

"""The generator writes through the Lake interface: S3 (moto) receives the same bytes as the local lake."""

from __future__ import annotations

import boto3

from ndr_jobs.synthetic.generate import generate_traffic
from ndr_resources.lake import S3Lake
from tests.synthetic.conftest import SMALL_RUN, run_generator


def test_s3_lake_receives_the_same_objects_as_the_local_lake(tmp_path, moto_endpoint):
    args = {**SMALL_RUN, "days": 1 / 24, "scale": 0.1}
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=args["bucket"])
    s3 = S3Lake(endpoint_url=moto_endpoint, region_name="us-east-1")
    summary = generate_traffic(s3, **args)
    local = run_generator(tmp_path, **args)

    bucket = f"s3://{args['bucket']}/"
    objects = s3.list_objects(bucket)
    assert objects == local.lake.list_objects(bucket)
    assert len(objects) == 4 + 2  # four mini-batches, ground truth, inventory
    assert all(s3.read_bytes(uri) == local.lake.read_bytes(uri) for uri in objects)
    assert summary.tenants[0].sessions == local.summary.tenants[0].sessions > 0

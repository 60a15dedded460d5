"""The generator's start logs, respelled actions and redeliveries, read back: exactly the counted ones."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.transforms.readers import PANOS_FIELD_MAPPING, read_traffic
from ndr_assets.transforms.sessions import SESSION_KEY_SCHEMA, flag_redelivered_sessions
from ndr_assets.transforms.windows import slice_start_col
from ndr_resources.specs import DeltaInput
from tests.synthetic.conftest import run_generator


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "panos_csv"])
def test_generated_batches_read_as_one_row_per_session(spark, tmp_path, fmt):
    run = run_generator(tmp_path, fmt=fmt, days=1 / 24, redelivery_rate=0.05)
    tenant = run.summary.tenants[0]
    files = [str(run.root / uri[len("s3://") :]) for uri in run.lake.list_objects(tenant.raw_prefix)]
    spec = DeltaInput(s3_prefix=tenant.raw_prefix, format=fmt, field_mapping=PANOS_FIELD_MAPPING)

    read = read_traffic(spark, files, spec)

    counters = read.counters()
    assert counters["start_logs_skipped"] == tenant.start_logs > 0
    assert counters["traffic_rows"] == tenant.sessions + tenant.redelivered
    assert counters["non_traffic_lines"] == tenant.non_traffic_lines
    assert (counters["unknown_action"], counters["unknown_subtype"], counters["unparseable_lines"]) == (0, 0, 0)
    # Every delivery is in its mini-batch's arrival window; the copies in the next one are flagged.
    landing = F.to_timestamp(F.substring("mini_batch_id", 1, 16), "yyyyMMdd'T'HHmmss'Z'")
    traffic = read.traffic.withColumn("window_start", slice_start_col(landing))
    flagged = flag_redelivered_sessions(traffic, spark.createDataFrame([], SESSION_KEY_SCHEMA))
    assert tenant.redelivered > 0
    expected = [(False, tenant.sessions), (True, tenant.redelivered)]
    assertDataFrameEqual(
        flagged.groupBy("redelivered").count(), spark.createDataFrame(expected, "redelivered boolean, count long")
    )

"""Mini-batches onto windows: landing times at the 08/23/38/53 edges, sessions straddling an edge, lateness."""

from datetime import UTC, datetime

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.traffic.raw_input import SkippedObject, lateness_counts, list_mini_batches, with_arrival_window
from ndr_resources.lake import LocalLake

W_0008 = datetime(2026, 1, 5, 0, 8, tzinfo=UTC)
W_0023 = datetime(2026, 1, 5, 0, 23, tzinfo=UTC)
W_0038 = datetime(2026, 1, 5, 0, 38, tzinfo=UTC)
PREFIX = "s3://raw/paloalto/acme/finance/"


def test_mini_batches_belong_to_the_window_containing_their_landing_time(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    for name in ["20260105T000800Z", "20260105T002259Z-a", "20260105T002300Z", "20260105T003759Z", "not-a-batch"]:
        lake.write_bytes(f"{PREFIX}{name}/part-00000.json.gz", b"x")
    lake.write_bytes(f"{PREFIX}20260105T002300Z/_SUCCESS", b"")
    first = list_mini_batches(lake, PREFIX, W_0008, W_0023, "jsonl")
    assert first.batches == ["20260105T000800Z", "20260105T002259Z-a"]
    assert first.unrecognised_folders == [SkippedObject(
        f"{PREFIX}not-a-batch/", "folder name carries no landing time (expected %Y%m%dT%H%M%SZ[-suffix])")]
    second = list_mini_batches(lake, PREFIX, W_0023, W_0038, "jsonl")
    assert second.batches == ["20260105T002300Z", "20260105T003759Z"]
    # Marker files are not data, and not a loss either: counted apart.
    assert [f.rsplit("/", 2)[-2] for f in second.files] == ["20260105T002300Z", "20260105T003759Z"]
    assert second.skipped == [] and second.bookkeeping_objects == 1


def test_sessions_straddling_an_edge_count_where_they_arrived_and_lateness_is_counted(spark):
    rows = [
        # started before 00:23, ended after it, delivered by the 00:37 batch: window 00:23, on time
        ("20260105T003700Z", datetime(2026, 1, 5, 0, 20), datetime(2026, 1, 5, 0, 25)),
        # ended 00:22:59 but delivered by the 00:37 batch: window 00:23, late
        ("20260105T003700Z", datetime(2026, 1, 5, 0, 15), datetime(2026, 1, 5, 0, 22, 59)),
        # ended exactly at the 00:23 edge, delivered at 00:23:30: window 00:23, on time
        ("20260105T002330Z", datetime(2026, 1, 5, 0, 22), datetime(2026, 1, 5, 0, 23)),
        # ends after its window (a skewed clock): counted as early
        ("20260105T002200Z", datetime(2026, 1, 5, 0, 21), datetime(2026, 1, 5, 0, 24)),
    ]
    traffic = spark.createDataFrame(rows, "mini_batch_id string, event_start timestamp, event_end timestamp")
    windows = with_arrival_window(traffic).select("mini_batch_id", "event_end", "window_start")
    expected = spark.createDataFrame(
        [(mb, end, start) for (mb, _, end), start in zip(rows, [
            datetime(2026, 1, 5, 0, 23), datetime(2026, 1, 5, 0, 23), datetime(2026, 1, 5, 0, 23),
            datetime(2026, 1, 5, 0, 8)], strict=False)],
        "mini_batch_id string, event_end timestamp, window_start timestamp",
    )
    assertDataFrameEqual(windows, expected)
    assert lateness_counts(with_arrival_window(traffic)) == {"late_sessions": 1, "early_sessions": 1}
    assert with_arrival_window(traffic).where(F.col("window_start").isNull()).count() == 0

"""A backfill checks the upstream windows it reads but does not produce before any work starts."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from typer.testing import CliRunner

from ndr_assets.transforms.windows import partition_values
from ndr_jobs.backfill import MissingInputsError, backfill_project
from ndr_jobs.cli import app
from ndr_resources.lake import SUCCESS_MARKER, LocalLake, PartitionSpec, join_uri
from tests.cli.conftest import BUCKET, PROJECT, provision_project

FEATURES = f"s3://{BUCKET}/projects/{PROJECT}/versions/v1/data/features"
HOST_SLICES = f"{FEATURES}/delta/host_slices/"


@pytest.fixture
def home(scratch):
    _, home = scratch
    provision_project(home)  # start 2026-01-05: the first partition is 2026-01-04-23:53
    return home


def _publish_markers(home, dataset_uri, first: datetime, count: int) -> None:
    """What a publish leaves for an empty window: its ``_SUCCESS`` marker."""
    lake = LocalLake(root=str(home / "lake"))
    for i in range(count):
        partition = PartitionSpec(partition_values(first + timedelta(minutes=15 * i)))
        lake.write_json(join_uri(dataset_uri, partition.path(), SUCCESS_MARKER), {"rows": 0})


def test_fg_a_without_the_previous_days_delta_fails_before_any_run(home):
    with dg.DagsterInstance.ephemeral() as instance:
        with pytest.raises(MissingInputsError) as raised:
            backfill_project(PROJECT, "2026-01-06", "2026-01-06", instance=instance)
        assert instance.get_runs() == []
    # Day 2026-01-06 starts with the 2026-01-05-23:53 window; FG-A's 24 h reach back 95 windows.
    assert str(raised.value) == (
        "ndr-acme-finance: fg_a needs delta for 95 window(s) before 2026-01-05-23:53 that are not published "
        "(2026-01-05-00:08 .. 2026-01-05-23:38); run first: ndr backfill --project ndr-acme-finance "
        "--assets delta,pair_counts --start 2026-01-05-00:08 --end 2026-01-05-23:38 "
        "(or extend the range to start at 2026-01-05-00:08)"
    )


def test_the_trailing_windows_stop_at_the_projects_first_partition_and_only_unpublished_ones_are_named(home):
    # Range from 2026-01-05-06:08: the trailing 24 h are clamped to 2026-01-04-23:53 .. 05:53 (25 windows);
    # 23 of them are published.
    _publish_markers(home, HOST_SLICES, datetime(2026, 1, 4, 23, 53, tzinfo=UTC), 23)
    with pytest.raises(MissingInputsError, match=r"for 2 window\(s\) before 2026-01-05-06:08 .*"
                       r"\(2026-01-05-05:38 \.\. 2026-01-05-05:53\)"):
        backfill_project(PROJECT, "2026-01-05-06:08", "2026-01-05-06:08")


def test_fg_a_alone_needs_delta_of_its_own_windows_too(home):
    with pytest.raises(MissingInputsError, match=r"fg_a needs delta for 2 window\(s\) that are not published "
                       r"\(2026-01-04-23:53 \.\. 2026-01-05-00:08\)"):
        backfill_project(PROJECT, "2026-01-04-23:53", "2026-01-05-00:08", asset_selection=["fg_a"])


def test_fg_c_needs_fg_a_and_pair_counts_of_its_windows(home):
    _publish_markers(home, f"{FEATURES}/fg_a/", datetime(2026, 2, 1, 0, 8, tzinfo=UTC), 1)
    with pytest.raises(MissingInputsError) as raised:
        backfill_project(PROJECT, "2026-02-01-00:08", "2026-02-01-00:23", kind="fg_c")
    assert str(raised.value).splitlines() == [
        "ndr-acme-finance: fg_c needs fg_a for 1 window(s) that are not published (2026-02-01-00:23 .. "
        "2026-02-01-00:23); run first: ndr backfill --project ndr-acme-finance --start 2026-02-01-00:23 "
        "--end 2026-02-01-00:23",
        "ndr-acme-finance: fg_c needs pair_counts for 2 window(s) that are not published (2026-02-01-00:08 .. "
        "2026-02-01-00:23); run first: ndr backfill --project ndr-acme-finance --assets pair_counts "
        "--start 2026-02-01-00:08 --end 2026-02-01-00:23",
    ]


def test_the_cli_prints_the_missing_windows_and_the_command(home):
    result = CliRunner().invoke(app, ["backfill", "--project", PROJECT, "--start", "2026-01-06", "--end", "2026-01-06"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ndr-acme-finance: fg_a needs delta for 95 window(s)")
    assert "run first: ndr backfill --project ndr-acme-finance --assets delta,pair_counts" in result.output


def test_assets_are_validated_against_the_kinds_job(home):
    result = CliRunner().invoke(app, ["backfill", "--project", PROJECT, "--start", "2026-01-05", "--end", "2026-01-05",
                                      "--assets", "delta, fg_b_host"])
    assert result.exit_code == 1
    assert "ndr-acme-finance: the traffic backfill has no asset(s) ['fg_b_host']; its assets: delta, fg_a, " \
           "pair_counts" in result.output

"""``ndr backfill`` of the project's first day, in a subprocess: the day's 96 windows, a quiet terminal."""

import dagster as dg
import pytest

from ndr_jobs.instance import instance_config
from tests.cli.conftest import PROJECT, START_DATE, provision_project, run_ndr

# What Dagster and Spark print on a first run unless told otherwise.
FIRST_RUN_NOISE = ("Telemetry", "dagster.yaml", "resolves to a loopback address", "NativeCodeLoader",
                   "log4j", "Setting default log level", "Using incubator modules")


@pytest.fixture(scope="module")
def first_day(tmp_path_factory):
    home, cwd = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("cwd")
    provision_project(home)
    result = run_ndr(["backfill", "--project", PROJECT, "--start", START_DATE, "--end", START_DATE],
                     home=home, cwd=cwd)
    return result, home, cwd


def test_a_day_is_the_96_windows_from_the_first_partition(first_day):
    result, home, _ = first_day
    assert result.returncode == 0, result.stdout
    assert f"{PROJECT}: 96 partition(s) 2026-01-04-23:53 .. 2026-01-05-23:38" in result.stdout
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for asset in ("delta", "pair_counts", "fg_a"):
            keys = instance.get_materialized_partitions(dg.AssetKey([PROJECT, asset]))
            assert len(keys) == 96 and min(keys) == "2026-01-04-23:53" and max(keys) == "2026-01-05-23:38", asset


def test_a_first_run_prints_no_dagster_or_spark_noise(first_day):
    result, home, cwd = first_day
    assert [noise for noise in FIRST_RUN_NOISE if noise in result.stdout] == [], result.stdout
    assert (home / "dagster" / "dagster.yaml").read_text() == instance_config(home / "dagster")
    assert not (cwd / ".ndr").exists()
    # What the JVM itself still writes goes to a file in the home, not to the terminal.
    assert "Using incubator modules" in (home / "logs" / "spark-driver.log").read_text()

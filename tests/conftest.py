"""Shared fixtures: one local Spark session for the whole test session."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from ndr_resources.spark import build_spark_session

    session = build_spark_session("local[2]", app_name="ndr-tests", conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


from tests.moto_server import moto_endpoint  # noqa: E402,F401  (one moto server per test session)

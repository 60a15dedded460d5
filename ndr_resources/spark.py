"""Spark sessions: local mode on the embedded defaults, the processing container's session on AWS."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

# Settings that make small local jobs fast and deterministic on a 2-core machine.
LOCAL_SPARK_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.compression.codec": "snappy",
    "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR",
}


def build_spark_session(master: str = "local[2]", app_name: str = "ndr", conf: dict[str, str] | None = None) -> Any:
    """One SparkSession per process (``getOrCreate``), configured for UTC and small shuffles."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**LOCAL_SPARK_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkResource(dg.ConfigurableResource):
    """Gives assets a SparkSession: ``local[N]`` here, the container's cluster on SageMaker."""

    master: str = "local[2]"
    shuffle_partitions: int = 4
    driver_memory: str = "4g"

    def session(self) -> Any:
        return build_spark_session(
            self.master,
            conf={"spark.sql.shuffle.partitions": str(self.shuffle_partitions), "spark.driver.memory": self.driver_memory},
        )

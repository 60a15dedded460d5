"""Spark sessions: local mode on the embedded defaults, the processing container's session on AWS."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from ndr_resources.jvm import LOCAL_FILE_SYSTEM_CONF

# Shipped with the package: quiets the driver's log4j before the JVM writes its first line.
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")

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
    # A read of a range of 15-minute partitions names hundreds of folders; above this threshold Spark
    # lists them with a Spark job of one task per folder (10 s for 384 local folders), below it on the
    # driver (milliseconds on a local disk).
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    # Task commit moves a task's files to the job's output at once (version 1 renames them twice, at
    # task and at job commit). Every write here goes to a private staging prefix that is published
    # afterwards, so the job output is never read half-committed.
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()}",
    # file: through java.nio permissions, not a forked chmod per file and folder (ndr_resources.jvm).
    **LOCAL_FILE_SYSTEM_CONF,
}


def build_spark_session(
    master: str = "local[2]", app_name: str = "ndr", conf: dict[str, str] | None = None, driver_log: str | None = None
) -> Any:
    """One SparkSession per process (``getOrCreate``), configured for UTC and small shuffles.

    ``driver_log``: a local driver JVM started here writes its stderr to this file instead of the
    terminal (see :func:`_started_with_stderr_to`).
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    # Python workers (mapInPandas scoring, Feature Store calls) must run this interpreter: the `python3`
    # on PATH is not the virtualenv's when `.venv/bin/ndr` runs without an activated venv.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        # Without it Spark warns that the hostname resolves to a loopback address and binds to
        # another interface; a local session only ever talks to itself.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**LOCAL_SPARK_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    if driver_log and master.startswith("local") and SparkContext._active_spark_context is None:
        session = _started_with_stderr_to(Path(driver_log), builder.getOrCreate)
    else:
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _started_with_stderr_to(log: Path, start: Callable[[], Any]) -> Any:
    """Start the driver JVM with its stderr on ``log``; this process's stderr is restored at once.

    The JVM inherits file descriptor 2 from this process for its whole life. Spark's launcher always
    adds ``--add-modules=jdk.incubator.vector``, for which the JVM prints "WARNING: Using incubator
    modules" and no option turns that off; the log4j configuration keeps the rest quiet, but what
    the JVM still writes (that line, a crash) belongs in a file the user can read, not in the
    command's output. Python's own errors keep reaching the terminal.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log.open("ab") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                return start()
            except Exception as exc:  # e.g. no java: the reason is in the log, not on the terminal
                raise RuntimeError(f"Spark did not start ({exc}); the driver's output is in {log}") from exc
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class SparkResource(dg.ConfigurableResource):
    """Gives assets a SparkSession: ``local[N]`` here, the container's cluster on SageMaker."""

    master: str = "local[2]"
    shuffle_partitions: int = 4
    driver_memory: str = "4g"
    driver_log: str | None = None  # where a local driver JVM's stderr goes (None: the terminal)

    def session(self) -> Any:
        return build_spark_session(
            self.master,
            conf={"spark.sql.shuffle.partitions": str(self.shuffle_partitions), "spark.driver.memory": self.driver_memory},
            driver_log=self.driver_log,
        )

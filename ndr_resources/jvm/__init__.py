"""A small JVM library for local Spark: Hadoop's ``file:`` file system without a forked ``chmod``.

Hadoop without its native library (pip's pyspark ships none) sets the permissions of every file
and directory it creates on a local disk by running ``chmod`` in a child process. A write of a
range of 15-minute partitions creates four objects per partition (folder, data file, checksum,
commit rename), so on the embedded lake most of a 385-partition write was spent forking (host
slices of four demo days: 7.5 s, 3.2 s with this). :data:`LOCAL_FILE_SYSTEM_CONF` makes the
``file:`` scheme use ``ndr.hadoop.NioLocalFileSystem``, which sets the same mode through java.nio.

The jar is built from ``src/`` and shipped prebuilt, so a machine with only a Java runtime runs it;
rebuild after editing the sources with ``python -m ndr_resources.jvm`` (needs ``javac``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

JVM_DIR = Path(__file__).parent
SOURCES = JVM_DIR / "src"
JAR = JVM_DIR / "ndr-hadoop.jar"
LOCAL_FILE_SYSTEM_CLASS = "ndr.hadoop.NioLocalFileSystem"
# The release the classes are compiled for: the oldest Java that Spark 4 runs on.
JAVA_RELEASE = "17"

LOCAL_FILE_SYSTEM_CONF: dict[str, str] = {
    # The driver's classpath, so Hadoop's Configuration (driver and local executors) finds the class.
    "spark.driver.extraClassPath": str(JAR),
    "spark.hadoop.fs.file.impl": LOCAL_FILE_SYSTEM_CLASS,
}


def hadoop_api_jar() -> Path:
    """The Hadoop client API jar of the installed pyspark: what the sources compile against."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise FileNotFoundError(f"no hadoop-client-api jar under {Path(pyspark.__file__).parent / 'jars'}")
    return jars[-1]


def build_jar(target: Path = JAR) -> Path:
    """Compile ``src/`` with ``javac --release 17`` against pyspark's Hadoop API and write ``target``."""
    javac, jar = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar:
        raise FileNotFoundError("building the jar needs a JDK (javac and jar on PATH)")
    sources = sorted(str(p) for p in SOURCES.rglob("*.java"))
    with tempfile.TemporaryDirectory() as classes:
        subprocess.run([javac, "--release", JAVA_RELEASE, "-cp", str(hadoop_api_jar()), "-d", classes, *sources],
                       check=True)
        subprocess.run([jar, "--create", "--file", str(target), "-C", classes, "."], check=True)
    return target

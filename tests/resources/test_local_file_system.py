"""The ``file:`` file system of local Spark: java.nio permissions instead of a forked chmod, same modes."""

import os
import stat
import zipfile

import pytest

from ndr_resources.jvm import JAR, LOCAL_FILE_SYSTEM_CLASS, SOURCES


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_shipped_jar_holds_a_class_for_every_source():
    with zipfile.ZipFile(JAR) as jar:
        classes = {name for name in jar.namelist() if name.endswith(".class") and "$" not in name}
    sources = {str(p.relative_to(SOURCES).with_suffix(".class")) for p in SOURCES.rglob("*.java")}
    assert classes == sources == {"ndr/hadoop/NioLocalFileSystem.class", "ndr/hadoop/NioRawLocalFileSystem.class"}


def test_spark_writes_local_files_through_the_nio_file_system(spark, tmp_path):
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI(tmp_path.as_uri()), conf)
    assert fs.getClass().getName() == LOCAL_FILE_SYSTEM_CLASS

    out = tmp_path / "out"
    spark.createDataFrame([(1, "a"), (2, "b")], "n int, part string").write.partitionBy("part").parquet(out.as_uri())
    umask = os.umask(0)
    os.umask(umask)
    data = sorted((out / "part=a").glob("*.parquet"))
    assert len(data) == 1
    # What Hadoop's own local file system gives: 0666 files and 0777 folders, less the umask.
    assert _mode(data[0]) == 0o666 & ~umask
    assert _mode(out / "part=a") == 0o777 & ~umask
    assert sorted(r.n for r in spark.read.parquet(out.as_uri()).collect()) == [1, 2]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o711, 0o755, 0o777, 0o000, 0o1755])
def test_set_permission_sets_the_same_mode_as_hadoop(spark, tmp_path, mode):
    jvm = spark.sparkContext._jvm
    ours = jvm.ndr.hadoop.NioRawLocalFileSystem()
    theirs = jvm.org.apache.hadoop.fs.RawLocalFileSystem()
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for fs in (ours, theirs):
        fs.initialize(jvm.java.net.URI("file:///"), conf)
    permission = jvm.org.apache.hadoop.fs.permission.FsPermission(mode)
    for name, fs in (("ours", ours), ("theirs", theirs)):
        target = tmp_path / name
        target.write_text("x")
        fs.setPermission(jvm.org.apache.hadoop.fs.Path(target.as_uri()), permission)
    assert _mode(tmp_path / "ours") == _mode(tmp_path / "theirs") == mode

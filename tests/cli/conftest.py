"""The ``ndr`` command as a user runs it: a subprocess in a scratch folder, state under a tmp NDR_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ndr_resources.lake import LocalLake
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from seeds.provision import provision

REPO = Path(__file__).resolve().parents[2]
PROJECT = "ndr-acme-finance"
BUCKET = "ndr-test"
START_DATE = "2026-01-05"


def run_ndr(args: list[str], *, home: Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m ndr_jobs.cli ARGS`` with NDR_HOME=home, run in ``cwd``; stdout and stderr in one stream.

    This checkout comes first on PYTHONPATH; SPARK_LOCAL_IP and DAGSTER_HOME are left for the command
    to choose, as on a newcomer's machine.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_LOCAL_IP", "DAGSTER_HOME")}
    env.update(NDR_HOME=str(home), NDR_ENV="local", PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
               COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ndr_jobs.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def provision_project(home: Path, *, start_date: str = START_DATE) -> None:
    provision(SqliteParameterStore(path=str(home / "parameters.sqlite")), LocalLake(root=str(home / "lake")),
              project_name=PROJECT, bucket=BUCKET, feature_spec_version="v1", org1="acme", org2="finance",
              start_date=start_date)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working folder and, elsewhere, an NDR_HOME: ``(cwd, home)``."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NDR_HOME", str(home))
    monkeypatch.setenv("NDR_ENV", "local")
    # Commands point DAGSTER_HOME at the home they use; setting it here restores it after the test.
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return cwd, home

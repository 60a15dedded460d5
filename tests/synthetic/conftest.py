"""A few small generated lakes shared by the synthetic-generator tests (no Spark needed)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from ndr_jobs.synthetic.generate import GenerationSummary, generate_traffic
from ndr_resources.lake import LocalLake

BUCKET = "ndr-test"
TENANT = ("acme", "finance")
MONDAY_MIDNIGHT = datetime(2026, 1, 5, 0, 8, tzinfo=UTC)  # a window start
SMALL_RUN = {
    "bucket": BUCKET,
    "tenants": [TENANT],
    "start": MONDAY_MIDNIGHT,
    "days": 0.5,  # 48 windows: the quiet night and a busy working morning
    "seed": 11,
    "scale": 0.3,
    "late_rate": 0.02,
    "malformed_rate": 0.01,
    "non_traffic_rate": 0.01,
}


@dataclass
class Run:
    root: Path
    lake: LocalLake
    summary: GenerationSummary


def run_generator(root: Path, **overrides) -> Run:
    lake = LocalLake(root=str(root))
    summary = generate_traffic(lake, **{**SMALL_RUN, **overrides})
    return Run(root, lake, summary)


def read_jsonl_batches(run: Run) -> pd.DataFrame:
    """Every record of the run's JSON-lines mini-batches, with the mini_batch_id of its folder."""
    tenant = run.summary.tenants[0]
    rows = []
    for uri in run.lake.list_objects(tenant.raw_prefix):
        mini_batch_id = uri[len(tenant.raw_prefix) :].split("/")[0]
        for line in gzip.decompress(run.lake.read_bytes(uri)).decode().splitlines():
            rows.append({**json.loads(line), "mini_batch_id": mini_batch_id})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def jsonl_run(tmp_path_factory) -> Run:
    return run_generator(tmp_path_factory.mktemp("jsonl"), fmt="jsonl")


@pytest.fixture(scope="session")
def jsonl_records(jsonl_run) -> pd.DataFrame:
    return read_jsonl_batches(jsonl_run)


@pytest.fixture(scope="session")
def parquet_run(tmp_path_factory) -> Run:
    return run_generator(tmp_path_factory.mktemp("parquet"), fmt="parquet")


@pytest.fixture(scope="session")
def csv_run(tmp_path_factory) -> Run:
    return run_generator(tmp_path_factory.mktemp("csv"), fmt="panos_csv")

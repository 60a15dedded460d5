"""Hand-made canonical traffic rows for transform tests (TRAFFIC_SCHEMA plus ``window_start``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ndr_assets.transforms.schemas import TRAFFIC_SCHEMA

# Two consecutive windows on the 08/23/38/53 grid.
W1 = datetime(2026, 1, 5, 8, 8)
W2 = W1 + timedelta(minutes=15)
W1_END = W2
W2_END = W2 + timedelta(minutes=15)

# A new StructType: StructType.add would change the shared TRAFFIC_SCHEMA in place.
TRAFFIC_WITH_WINDOW = T.StructType([*TRAFFIC_SCHEMA.fields, T.StructField("window_start", T.TimestampType())])

_DEFAULTS: dict[str, Any] = {
    "source_ip": "10.10.0.1",
    "destination_ip": "10.30.0.5",
    "source_port": 50000,
    "destination_port": 443,
    "protocol": "tcp",
    "action": "allow",
    "source_bytes": 100,
    "destination_bytes": 200,
    "packets": 4,
    "event_start": W1 + timedelta(minutes=1),
    "event_end": W1 + timedelta(minutes=1, seconds=30),
    "duration_s": 30.0,
    "application": "ssl",
    "rule": "allow-all",
    "source_zone": "trust",
    "destination_zone": "trust",
    "session_end_reason": "tcp-fin",
    "log_type": "TRAFFIC",
    "log_subtype": "end",
    "device_serial": None,  # no identity unless a test gives one (sessions.py)
    "session_id": None,
    "mini_batch_id": "20260105T081000Z",
    "source_file": "part-00000.json.gz",
}


def session(**overrides: Any) -> dict[str, Any]:
    """One traffic row: the defaults above with ``overrides`` (``window_start`` defaults to W1)."""
    unknown = set(overrides) - set(_DEFAULTS) - {"window_start"}
    assert not unknown, f"not a traffic column: {unknown}"
    return {"window_start": W1, **_DEFAULTS, **overrides}


def traffic_frame(spark, rows: list[dict[str, Any]]) -> DataFrame:
    """A TRAFFIC_SCHEMA frame plus ``window_start`` from ``session()`` dicts."""
    names = [*TRAFFIC_SCHEMA.fieldNames(), "window_start"]
    return spark.createDataFrame([tuple(row[n] for n in names) for row in rows], TRAFFIC_WITH_WINDOW)

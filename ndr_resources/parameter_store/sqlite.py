"""The embedded parameter store: one SQLite file with the DynamoDB item model of spec 001.

Two tables mirror DynamoDB: ``ml_projects_parameters`` keyed by (``project_name``, ``job_name``) and
``ml_projects_routing`` keyed by ``org_key``. Each row keeps the whole item as JSON, so items
round-trip exactly (ints stay ints, floats stay floats, nested maps and lists are preserved).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ndr_resources.errors import ConcurrentUpdateError
from ndr_resources.parameter_store.base import (
    DEFAULT_PARAMETERS_TABLE,
    DEFAULT_ROUTING_TABLE,
    ParameterStore,
    require_key_attributes,
)

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARAMETERS_TABLE} ("
    " project_name TEXT NOT NULL, job_name TEXT NOT NULL, item TEXT NOT NULL,"
    " PRIMARY KEY (project_name, job_name))",
    f"CREATE TABLE IF NOT EXISTS {DEFAULT_ROUTING_TABLE} (org_key TEXT PRIMARY KEY NOT NULL, item TEXT NOT NULL)",
)


def _dump(item: dict[str, Any]) -> str:
    # DynamoDB cannot hold NaN/Infinity either; refusing them keeps both backends interchangeable.
    return json.dumps(item, allow_nan=False, sort_keys=True)


class SqliteParameterStore(ParameterStore):
    """Parameters and routing tables in one SQLite file (parent folders are created)."""

    path: str

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose block runs as one transaction (commit on success, rollback on error)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                # The embedded store creates its tables on first use, so a fresh demo needs no setup step.
                for statement in _SCHEMA:
                    conn.execute(statement)
                yield conn
        finally:
            conn.close()

    def create_tables(self) -> None:
        with self._connect():
            pass

    def get_item(self, project_name: str, job_name: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT item FROM {DEFAULT_PARAMETERS_TABLE} WHERE project_name = ? AND job_name = ?",
                (project_name, job_name),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_item(self, item: dict[str, Any]) -> None:
        require_key_attributes(item, ("project_name", "job_name"))
        payload = _dump(item)
        with self._connect() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {DEFAULT_PARAMETERS_TABLE} (project_name, job_name, item) VALUES (?, ?, ?)",
                (item["project_name"], item["job_name"], payload),
            )

    def put_item_if(self, item: dict[str, Any], expected: Mapping[str, str | None]) -> None:
        require_key_attributes(item, ("project_name", "job_name"))
        payload = _dump(item)
        with self._connect() as conn:
            # BEGIN IMMEDIATE takes the write lock before the read, so compare-and-write is atomic.
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                f"SELECT item FROM {DEFAULT_PARAMETERS_TABLE} WHERE project_name = ? AND job_name = ?",
                (item["project_name"], item["job_name"]),
            ).fetchone()
            stored = json.loads(row[0]) if row else {}
            if any(stored.get(attr) != value for attr, value in expected.items()):
                raise ConcurrentUpdateError(item["project_name"], item["job_name"], dict(expected))
            conn.execute(
                f"INSERT OR REPLACE INTO {DEFAULT_PARAMETERS_TABLE} (project_name, job_name, item) VALUES (?, ?, ?)",
                (item["project_name"], item["job_name"], payload),
            )

    def query_prefix(self, project_name: str, job_name_prefix: str) -> list[dict[str, Any]]:
        # begins_with without LIKE: '_' and '%' in job names must match literally. The default BINARY
        # collation compares UTF-8 bytes, the same order as DynamoDB's sort key.
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT item FROM {DEFAULT_PARAMETERS_TABLE}"
                " WHERE project_name = ? AND substr(job_name, 1, length(?)) = ? ORDER BY job_name",
                (project_name, job_name_prefix, job_name_prefix),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def get_routing(self, org_key: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(f"SELECT item FROM {DEFAULT_ROUTING_TABLE} WHERE org_key = ?", (org_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_routing(self, item: dict[str, Any]) -> None:
        require_key_attributes(item, ("org_key",))
        payload = _dump(item)
        with self._connect() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {DEFAULT_ROUTING_TABLE} (org_key, item) VALUES (?, ?)",
                (item["org_key"], payload),
            )

    def scan_routing(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT item FROM {DEFAULT_ROUTING_TABLE} ORDER BY org_key").fetchall()
        return [json.loads(row[0]) for row in rows]

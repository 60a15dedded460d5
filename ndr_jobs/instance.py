"""The local Dagster instance: its ``dagster.yaml`` and an event log that writes a batch in one transaction.

A single-run backfill of a day logs one ``ASSET_MATERIALIZATION_PLANNED`` event per asset and
partition when the run is created and one ``ASSET_MATERIALIZATION`` per partition when a step
ends: 1,155 + 1,155 events for a 385-window traffic range. Dagster hands such events to the
storage as batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set, but its SQLite storage stores a batch
event by event, each in its own engine and commit to the run's database and again to the index
database (about 13 ms an event here). :class:`BatchedSqliteEventLogStorage` writes the same rows
with one transaction per database and batch; what it writes is what ``store_event`` would have.

It builds on Dagster's private storage helpers (``_event_to_row``, ``_store_asset_event``, ...);
``dagster`` is pinned exactly, and tests/jobs/test_instance.py compares a batch with the same events
stored one by one, so an upgrade that changes them fails there first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagster import EventLogEntry
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
)
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
# Large enough that a day's planned events are a handful of batches; Dagster flushes a batch at
# its end anyway, so this bounds only how many events wait in memory.
EVENT_BATCH_SIZE = 1000

TELEMETRY_OFF = "telemetry:\n  enabled: false\n"
# What earlier versions wrote into a new instance folder; such a file is ours to upgrade.
LEGACY_INSTANCE_CONFIG = TELEMETRY_OFF


def instance_config(dagster_home: Path) -> str:
    """``dagster.yaml`` for a local instance: telemetry off (no banner before a command's output)
    and the batched event log over the folder Dagster's default SQLite storage uses."""
    runs = dagster_home / "history" / "runs"
    return (
        f"{TELEMETRY_OFF}"
        "event_log_storage:\n"
        f"  module: {__name__}\n"
        f"  class: {BatchedSqliteEventLogStorage.__name__}\n"
        "  config:\n"
        f"    base_dir: {str(runs)!r}\n"
    )


def write_instance_config(dagster_home: Path) -> None:
    """Write ``dagster.yaml`` where there is none (or only the one earlier versions wrote); an
    operator's own configuration stays as it is. Batching is turned on for this process and the
    processes it starts."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text() == LEGACY_INSTANCE_CONFIG:
        config.write_text(instance_config(dagster_home))
    os.environ.setdefault(BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, with ``store_event_batch`` in one transaction per database."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Rows in the order given, per run database, as store_event appends them.
        rows_by_run: dict[str, list[dict]] = {}
        for event in events:
            rows_by_run.setdefault(event.run_id, []).append(self._event_to_row(event))
        for run_id, rows in rows_by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)

        # The index database mirrors asset events (with their tags and the asset's latest entry),
        # asset check events and run status changes, again in order and in one transaction.
        check_events: list[tuple[EventLogEntry, int]] = []
        with self.index_transaction() as conn:
            asset_events, asset_event_ids = [], []
            for event in events:
                event_type = event.dagster_event_type if event.is_dagster_event else None
                mirrored = (
                    event_type in ASSET_EVENTS
                    or event_type in ASSET_CHECK_EVENTS
                    or event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS
                )
                if not mirrored:
                    continue
                event_id = conn.execute(self.prepare_insert_event(event)).inserted_primary_key[0]
                if event_type in ASSET_EVENTS:
                    asset_events.append(event)
                    asset_event_ids.append(event_id)
                    self._store_asset_event(conn, event, event_id)
                elif event_type in ASSET_CHECK_EVENTS:
                    check_events.append((event, event_id))
            if asset_events:
                self._store_asset_event_tags(conn, asset_events, asset_event_ids)
        # Each opens its own index connection (the storage's lock is not re-entrant).
        for event, event_id in check_events:
            self.store_asset_check_event(event, event_id)

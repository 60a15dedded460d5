"""The local instance's event log: a batch is stored as Dagster's own SQLite storage stores its events."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log import SqliteEventLogStorage

from ndr_assets.partitions import fifteen_minute_partitions
from ndr_jobs.backfill import RANGE_END_TAG, RANGE_START_TAG, console_logs, use_home
from ndr_jobs.instance import (
    BATCH_SIZE_ENV,
    EVENT_BATCH_SIZE,
    LEGACY_INSTANCE_CONFIG,
    BatchedSqliteEventLogStorage,
)

WINDOWS = fifteen_minute_partitions(datetime(2026, 4, 1, 0, 8, tzinfo=UTC))
FIRST, LAST = "2026-04-01-00:08", "2026-04-01-02:38"  # 11 windows
KEYS = WINDOWS.get_partition_keys_in_range(dg.PartitionKeyRange(FIRST, LAST))


@dg.asset(partitions_def=WINDOWS, backfill_policy=dg.BackfillPolicy.single_run())
def windows_seen(context: dg.AssetExecutionContext) -> None:
    context.add_output_metadata({"windows": len(context.partition_keys)})


@dg.asset(partitions_def=WINDOWS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[windows_seen])
def windows_scored(context: dg.AssetExecutionContext) -> None:
    context.add_output_metadata({"windows": len(context.partition_keys)})


@dg.asset_check(asset=windows_scored)
def scored_is_nonempty() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


JOB = dg.Definitions(
    assets=[windows_seen, windows_scored], asset_checks=[scored_is_nonempty],
    jobs=[dg.define_asset_job("windows")],
).resolve_job_def("windows")
ASSETS = [dg.AssetKey("windows_seen"), dg.AssetKey("windows_scored")]
CHECK = dg.AssetCheckKey(dg.AssetKey("windows_scored"), "scored_is_nonempty")


def _run_range(instance: dg.DagsterInstance) -> str:
    result = JOB.execute_in_process(
        instance=instance, tags={RANGE_START_TAG: FIRST, RANGE_END_TAG: LAST}, run_config=console_logs(verbose=False)
    )
    assert result.success
    return result.run_id


def _what_readers_see(storage, run_id: str) -> dict:
    """Everything the UI and our commands read back about the run, through the storage's own queries."""
    materializations = {
        key: [(r.storage_id, r.partition_key, r.asset_materialization.tags)
              for r in storage.fetch_materializations(key, limit=1000).records]
        for key in ASSETS
    }
    planned = {
        key: [(r.storage_id, r.event_log_entry.dagster_event.partition) for r in storage.get_event_records(
            dg.EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key), limit=1000)]
        for key in ASSETS
    }
    assets = {
        record.asset_entry.asset_key: (record.asset_entry.last_materialization_record.storage_id,
                                       record.asset_entry.last_run_id)
        for record in storage.get_asset_records(ASSETS)
    }
    return {
        "run": [(r.storage_id, r.event_log_entry.dagster_event_type) for r in storage.get_records_for_run(run_id).records],
        "materialized": {key: storage.get_materialized_partitions(key) for key in ASSETS},
        "materializations": materializations,
        "planned": planned,
        "assets": assets,
        "checks": [(r.status, r.partition, r.run_id, r.event.dagster_event_type if r.event else None)
                   for r in storage.get_asset_check_execution_history(CHECK, limit=10)],
        "run_success": [r.storage_id for r in storage.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, 10).records],
    }


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """A range run's events as Dagster's default SQLite event log stored them, one by one."""
    home = tmp_path_factory.mktemp("default-instance")
    (home / "dagster.yaml").write_text(LEGACY_INSTANCE_CONFIG)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage) is SqliteEventLogStorage
        run_id = _run_range(instance)
        return run_id, instance.all_logs(run_id)


def test_a_batch_is_read_back_exactly_as_the_same_events_stored_one_by_one(recorded_run, tmp_path):
    run_id, events = recorded_run
    one_by_one = SqliteEventLogStorage(str(tmp_path / "one-by-one"))
    batched = BatchedSqliteEventLogStorage(str(tmp_path / "batched"))
    for event in events:
        one_by_one.store_event(event)
    # One batch holding every kind of event the run logged, in order: run and step events, planned
    # and done materializations, the check's planned and done evaluations, the run's status.
    batched.store_event_batch(events)

    expected, actual = _what_readers_see(one_by_one, run_id), _what_readers_see(batched, run_id)
    assert actual == expected
    # The comparison covers what it claims to: every window of both assets, the data-version tags
    # Dagster indexes, the check, and the run's success mirrored in the index database.
    assert [sorted(actual["materialized"][key]) for key in ASSETS] == [KEYS, KEYS]
    assert [len(actual["planned"][key]) for key in ASSETS] == [11, 11]
    assert all(tags for _, _, tags in actual["materializations"][ASSETS[0]])
    assert actual["checks"] and len(actual["run_success"]) == 1
    assert len(actual["run"]) == len(events)


def test_the_instance_a_command_uses_batches_into_the_same_folders(tmp_path, monkeypatch):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    # Restored after the test: use_home sets both.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    paths = use_home(tmp_path)
    monkeypatch.setenv(BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))  # so that monkeypatch restores it too
    with dg.DagsterInstance.get() as instance:
        assert type(instance.event_log_storage) is BatchedSqliteEventLogStorage
        run_id = _run_range(instance)
        assert sorted(instance.get_materialized_partitions(ASSETS[1])) == KEYS
        planned = instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=ASSETS[1]))
        assert len(planned) == 11
    # Dagster's default layout: the run's own database and the index beside it.
    runs = paths.dagster_home / "history" / "runs"
    assert sorted(p.name for p in runs.glob("*.db")) == sorted([f"{run_id}.db", "index.db"])


def test_an_operators_configuration_is_kept_and_ours_from_earlier_versions_upgraded(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    monkeypatch.setenv(BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))
    operator, earlier = tmp_path / "operator", tmp_path / "earlier"
    (operator / "dagster").mkdir(parents=True)
    (earlier / "dagster").mkdir(parents=True)
    own = "telemetry:\n  enabled: true\nrun_queue:\n  max_concurrent_runs: 2\n"
    (operator / "dagster" / "dagster.yaml").write_text(own)
    (earlier / "dagster" / "dagster.yaml").write_text(LEGACY_INSTANCE_CONFIG)
    use_home(operator)
    use_home(earlier)
    assert (operator / "dagster" / "dagster.yaml").read_text() == own
    upgraded = (earlier / "dagster" / "dagster.yaml").read_text()
    assert "class: BatchedSqliteEventLogStorage" in upgraded
    assert f"base_dir: '{Path(earlier / 'dagster' / 'history' / 'runs')}'" in upgraded

"""What Dagster's own bookkeeping costs a single-run range backfill, per event log storage.

    .venv/bin/python -m benchmarks.event_log [--partitions 385] [--assets 3] [--json out.json]

K assets that each return at once, over N
15-minute partitions in one run (the shape of a traffic backfill: N x K planned events when the
run is created, N materializations per step), on a fresh local instance with

- Dagster's default SQLite event log, event by event (``DAGSTER_EVENT_BATCH_SIZE`` unset), and
- ours (:mod:`ndr_jobs.instance`): the same events in batches, one transaction per database.

Prints the run's wall time for each and the events it stored. Timed figures are not part of the
test suite.
"""

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT, fifteen_minute_partitions
from ndr_assets.transforms.windows import SLICE_MINUTES

FIRST_WINDOW = datetime(2026, 4, 1, 0, 8, tzinfo=UTC)


def _job(assets: int):
    windows = fifteen_minute_partitions(FIRST_WINDOW)

    def make(index: int):
        @dg.asset(name=f"step_{index}", partitions_def=windows, backfill_policy=dg.BackfillPolicy.single_run(),
                  deps=[f"step_{index - 1}"] if index else [])
        def step(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})

        return step

    defs = dg.Definitions(assets=[make(i) for i in range(assets)],
                          jobs=[dg.define_asset_job("all")])
    return defs.resolve_job_def("all")


def measure(*, partitions: int, assets: int, batched: bool) -> dict:
    from ndr_jobs.backfill import RANGE_END_TAG, RANGE_START_TAG, console_logs
    from ndr_jobs.instance import BATCH_SIZE_ENV, LEGACY_INSTANCE_CONFIG, write_instance_config

    job = _job(assets)
    first = FIRST_WINDOW.strftime(FIFTEEN_MINUTE_KEY_FORMAT)
    last = (FIRST_WINDOW + timedelta(minutes=SLICE_MINUTES * (partitions - 1))).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ.pop(BATCH_SIZE_ENV, None)
        if batched:
            write_instance_config(home)
        else:
            (home / "dagster.yaml").write_text(LEGACY_INSTANCE_CONFIG)  # Dagster's default storage
        with dg.DagsterInstance.from_config(str(home)) as instance:
            began = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
                run_config=console_logs(verbose=False),
            )
            seconds = time.perf_counter() - began
            assert result.success
            events = len(instance.all_logs(result.run_id))
            materialized = len(instance.get_materialized_partitions(dg.AssetKey(f"step_{assets - 1}")))
        os.environ.pop(BATCH_SIZE_ENV, None)
    return {"storage": "batched" if batched else "dagster default", "seconds": round(seconds, 2),
            "events": events, "materialized_partitions_of_last_asset": materialized}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=385)
    parser.add_argument("--assets", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [measure(partitions=args.partitions, assets=args.assets, batched=batched) for batched in (False, True)]
    print(f"{args.assets} assets x {args.partitions} partitions, one run")
    print(f"{'storage':<18}{'run s':>8}{'events':>8}")
    for row in rows:
        print(f"{row['storage']:<18}{row['seconds']:>8.2f}{row['events']:>8}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

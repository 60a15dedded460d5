"""Backfills: one run that materializes one of a project's jobs for a partition range.

What ``ndr backfill`` runs, and what the demo, the tests and the benchmarks call. A range is one
run (``BackfillPolicy.single_run()``), so one Spark session processes a day or a month of windows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start
from ndr_jobs.jobs import baselines_job_name, correlation_job_name, traffic_job_name
from ndr_resources.environments import LocalPaths, current_environment, parameter_store_for
from ndr_resources.errors import NdrError
from ndr_resources.projects import load_project_configs

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True, kw_only=True)
class BackfillOutcome:
    """What one backfill run did: its range, the first materialization's metadata per asset, failures."""

    project: str
    kind: str
    first_partition: str
    last_partition: str
    partitions: int
    seconds: float
    materializations: Mapping[str, Mapping[str, Any]]  # asset name -> metadata of its materialization
    failed_checks: tuple[str, ...]  # "<asset>.<check>" of every check evaluation that did not pass
    error: str | None = None  # the root cause of the first failed step, if any
    run_id: str | None = None  # the run's id in the instance (its event log has the step timings)

    def raise_on_failure(self) -> BackfillOutcome:
        if self.error:
            raise RuntimeError(
                f"backfill of {self.project} {self.first_partition}..{self.last_partition} failed: {self.error}"
                + (f" (failed checks: {', '.join(self.failed_checks)})" if self.failed_checks else "")
            )
        return self


def use_home(home: Path) -> LocalPaths:
    """Point the embedded defaults and the Dagster instance of this process at ``home``."""
    os.environ["NDR_HOME"] = str(home.resolve())
    os.environ["DAGSTER_HOME"] = str((home / "dagster").resolve())
    paths = LocalPaths.from_env()
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    return paths


def _window_key(value: str, *, last: bool) -> str:
    """Accepts a partition key or an ISO date (first/last window of that day)."""
    try:
        return datetime.strptime(value, FIFTEEN_MINUTE_KEY_FORMAT).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
    except ValueError:
        day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        edge = floor_to_window_start(day + timedelta(days=1) - timedelta(seconds=1)) if last else (
            floor_to_window_start(day + timedelta(minutes=SLICE_MINUTES - 1))
        )
        return edge.strftime(FIFTEEN_MINUTE_KEY_FORMAT)


def _month_key(value: str, *, last: bool) -> str:
    """Accepts ``YYYY-MM``, ``YYYY-MM-01`` or any ISO date (its month)."""
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise NdrError(f"not a month (YYYY-MM) or an ISO date: {value!r}") from None
    return parsed.strftime("%Y-%m-01")


# What `backfill_project` can run: the job of each kind and how its range boundaries are written.
RANGE_KINDS: dict[str, tuple[Callable[[str], str], Callable[..., str]]] = {
    "traffic": (traffic_job_name, _window_key),
    "fg_c": (correlation_job_name, _window_key),
    "baselines": (baselines_job_name, _month_key),
}


def backfill_project(
    project: str,
    start: str,
    end: str,
    *,
    instance: dg.DagsterInstance | None = None,
    asset_selection: Sequence[str] | None = None,
    kind: str = "traffic",
    run_config: dict | None = None,
) -> BackfillOutcome:
    """One run that materializes one of the project's jobs for every partition in [start, end].

    ``kind``: ``traffic`` (delta, pair_counts, FG-A; 15-minute windows), ``fg_c`` (15-minute
    windows from the first baseline month) or ``baselines`` (machine inventory and FG-B; months).
    ``asset_selection`` (asset names such as ``"delta"``) limits the run to those assets.
    """
    from ndr_jobs.definitions import build_definitions

    if kind not in RANGE_KINDS:
        raise NdrError(f"unknown backfill kind {kind!r}; known: {sorted(RANGE_KINDS)}")
    store = parameter_store_for(current_environment())
    routed = sorted(config.project_name for config in load_project_configs(store))
    if project not in routed:
        raise NdrError(f"project '{project}' has no enabled routing record in the parameter store; routed: {routed}")
    job_name, key_of = RANGE_KINDS[kind]
    defs = build_definitions()
    job = defs.resolve_job_def(job_name(project))
    first, last = key_of(start, last=False), key_of(end, last=True)
    try:
        partitions = len(job.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    except Exception as exc:  # dagster names the key that does not exist
        raise NdrError(f"{project}: {kind} has no partition range {first}..{last}: {exc}") from None
    began = time.monotonic()
    own_instance = instance is None
    instance = instance or dg.DagsterInstance.get()
    try:
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
            run_config={**QUIET_LOGS, **(run_config or {})},
            raise_on_error=False,
            asset_selection=[dg.AssetKey([project, name]) for name in asset_selection] if asset_selection else None,
        )
    finally:
        if own_instance:
            instance.dispose()
    materializations: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        name = mat.asset_key.path[-1]
        if name not in materializations and mat.metadata:
            materializations[name] = {k: v.value for k, v in mat.metadata.items()}
    failed_checks = tuple(
        f"{e.asset_check_evaluation_data.asset_key.path[-1]}.{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
    )
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure]
        error = failures[-1].message if failures else "see the run's logs"
        step_errors = [e.step_failure_data.error for e in failures if e.is_step_failure and e.step_failure_data.error]
        if step_errors:
            error = _root_cause(step_errors[0])
    return BackfillOutcome(
        project=project, kind=kind, first_partition=first, last_partition=last, partitions=partitions,
        seconds=time.monotonic() - began, materializations=materializations, failed_checks=failed_checks,
        error=error, run_id=result.run_id,
    )


def _root_cause(error) -> str:
    """The innermost message of a step error: Dagster wraps ours in "Error occurred while executing op"."""
    while error.cause is not None and "Error occurred while executing" in error.message:
        error = error.cause
    return error.message.strip()

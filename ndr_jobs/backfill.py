"""Backfills: one run that materializes one of a project's jobs for a partition range.

What ``ndr backfill`` runs, and what the demo, the tests and the benchmarks call. A range is one
run (``BackfillPolicy.single_run()``), so one Spark session processes a day or a month of windows.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from ndr_assets.datasets import delta_host_slices_uri
from ndr_assets.naming import (
    baselines_job_name,
    correlation_job_name,
    models_job_name,
    scoring_job_name,
    traffic_job_name,
)
from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT, trailing_day_before
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start, partition_values, window_starts
from ndr_jobs.instance import write_instance_config
from ndr_resources.environments import HOME_ENV, LocalPaths, current_environment, resources_for
from ndr_resources.errors import NdrError
from ndr_resources.lake import Lake, PartitionSpec
from ndr_resources.projects import ProjectConfig, load_project_configs
from ndr_resources.specs import FgABuilderSpec, FgCBuilderSpec

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class BackfillError(NdrError, RuntimeError):
    """A backfill run had a failed step or a failed blocking check."""


class MissingInputsError(NdrError):
    """The run needs upstream partitions that are not published and that it would not produce itself."""


def console_logs(*, verbose: bool) -> dict[str, Any]:
    """Run config of Dagster's console logger: step events and failure traces only when asked for.

    Quiet, the terminal shows the command's own summary or error; every event, with its stack
    trace, stays in the run's event log (``ndr dev`` shows it).
    """
    return {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}


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
    blocking_failed_checks: tuple[str, ...]  # those of them whose check spec is blocking
    error: str | None = None  # the root cause of the first failed step, if any
    run_id: str | None = None  # the run's id in the instance (its event log has every event and trace)

    @property
    def ok(self) -> bool:
        """No step failed and no blocking check failed (a failed non-blocking check is only reported)."""
        return self.error is None and not self.blocking_failed_checks

    def failure_message(self) -> str:
        problems = [blocking_checks_message(self.blocking_failed_checks)] if self.blocking_failed_checks else []
        if self.error and self.error not in problems:
            problems.append(self.error)
        return (
            f"{self.project}: {self.kind} backfill {self.first_partition} .. {self.last_partition} failed: "
            + "; ".join(problems)
        )


    def raise_on_failure(self) -> BackfillOutcome:
        if not self.ok:
            raise BackfillError(self.failure_message())
        return self


def blocking_checks_message(checks: Sequence[str]) -> str:
    return f"blocking check(s) did not pass: {', '.join(checks)}"


def use_home(home: Path | str | None = None) -> LocalPaths:
    """Point the embedded defaults and the Dagster instance of this process at one home.

    ``home`` follows every command's rule (:meth:`LocalPaths.resolve`: ``--home``, ``$NDR_HOME``,
    ``./.ndr``); the definitions and ``DagsterInstance.get()`` then find the same folders.
    """
    paths = LocalPaths.resolve(home)
    os.environ[HOME_ENV] = str(paths.home)
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    write_instance_config(paths.dagster_home)
    return paths


def _window_key(value: str, *, last: bool) -> str:
    """A window's partition key as given, or a day: the first (``last=False``) or last window of that day.

    Day D is the windows whose start lies in [floor(D 00:00), floor(D+1 00:00)) on the 08/23/38/53
    grid: from the 23:53 window of the day before to the 23:38 window of D, 96 windows. Days tile
    without overlap, and day D of a project starting on D begins at its first partition.
    """
    try:
        return datetime.strptime(value, FIFTEEN_MINUTE_KEY_FORMAT).strftime(FIFTEEN_MINUTE_KEY_FORMAT)
    except ValueError:
        pass
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise NdrError(f"not a window start (YYYY-MM-DD-HH:MM) or a day (YYYY-MM-DD): {value!r}") from None
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if last:
        edge = floor_to_window_start(midnight + timedelta(days=1)) - timedelta(minutes=SLICE_MINUTES)
    else:
        edge = floor_to_window_start(midnight)
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
    "models": (models_job_name, _month_key),
    "scoring": (scoring_job_name, _window_key),
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
    verbose: bool = False,
) -> BackfillOutcome:
    """One run that materializes one of the project's jobs for every partition in [start, end].

    ``kind``: ``traffic`` (delta, pair_counts, FG-A; 15-minute windows), ``fg_c`` (15-minute
    windows from the first baseline month) or ``baselines`` (machine inventory and FG-B; months).
    ``asset_selection`` (asset names such as ``"delta"``) limits the run to those assets. Before any
    work, the upstream partitions the run reads but does not produce must be published, else
    :class:`MissingInputsError` lists them with the command that produces them. ``verbose`` lets
    Dagster's console logger print step events and failure traces.
    """
    from ndr_jobs.definitions import build_definitions

    if kind not in RANGE_KINDS:
        raise NdrError(f"unknown backfill kind {kind!r}; known: {sorted(RANGE_KINDS)}")
    resources = resources_for(current_environment())
    configs = {config.project_name: config for config in load_project_configs(resources["parameter_store"])}
    if project not in configs:
        raise NdrError(
            f"project '{project}' has no enabled routing record in the parameter store; routed: {sorted(configs)}"
        )
    job_name, key_of = RANGE_KINDS[kind]
    defs = build_definitions()
    job = defs.resolve_job_def(job_name(project))
    job_assets = sorted(key.path[-1] for key in job.asset_layer.selected_asset_keys)
    unknown = sorted(set(asset_selection or ()) - set(job_assets))
    if unknown:
        raise NdrError(f"{project}: the {kind} backfill has no asset(s) {unknown}; its assets: {', '.join(job_assets)}")
    selected = set(asset_selection or job_assets)
    first, last = key_of(start, last=False), key_of(end, last=True)
    try:
        partitions = len(job.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    except Exception as exc:  # dagster names the key that does not exist
        raise NdrError(f"{project}: {kind} has no partition range {first}..{last}: {exc}") from None
    if kind in UPSTREAM_NEEDS:
        needs = UPSTREAM_NEEDS[kind](
            resources["parameter_store"], configs[project], selected, _window_start(first), _window_start(last),
            _window_start(job.partitions_def.get_first_partition_key()),
        )
        check_upstream_published(resources["lake"], project, kind, first, needs)
    blocking = check_blocking(job)
    began = time.monotonic()
    own_instance = instance is None
    instance = instance or dg.DagsterInstance.get()
    try:
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
            run_config={**console_logs(verbose=verbose), **(run_config or {})},
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
    blocking_failed = tuple(check for check in failed_checks if blocking.get(check, False))
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure]
        error = failures[-1].message if failures else "see the run's logs"
        step_errors = [e.step_failure_data.error for e in failures if e.is_step_failure and e.step_failure_data.error]
        if step_errors:
            root = _root_cause(step_errors[0])
            # Dagster's own wording of a blocking check failure is its class path and a key list;
            # the check names say the same.
            checks_failed = root.cls_name == "DagsterAssetCheckFailedError" and blocking_failed
            error = blocking_checks_message(blocking_failed) if checks_failed else _message_only(root.message)
    return BackfillOutcome(
        project=project, kind=kind, first_partition=first, last_partition=last, partitions=partitions,
        seconds=time.monotonic() - began, materializations=materializations, failed_checks=failed_checks,
        blocking_failed_checks=blocking_failed, error=error, run_id=result.run_id,
    )


def check_blocking(job: dg.JobDefinition) -> dict[str, bool]:
    """``"<asset>.<check>"`` -> whether it is blocking, for every check spec of the job's assets."""
    return {
        f"{spec.asset_key.path[-1]}.{spec.name}": spec.blocking
        for node in job.asset_layer.data
        for spec in node.assets_def.check_specs
    }


# ---------------------------------------------------------------- upstream partitions, checked before any work


@dataclass(frozen=True)
class UpstreamNeed:
    """Windows of a dataset that an asset of the run reads and the run does not produce."""

    consumer: str  # the asset of this run that reads them, e.g. "fg_a"
    producer: str  # the asset that publishes them, e.g. "delta"
    dataset_uri: str
    windows: tuple[datetime, ...]
    run_first: tuple[str, ...] | None  # ``--assets`` of the traffic backfill that produces them (None: all)


def _window_start(key: str) -> datetime:
    return datetime.strptime(key, FIFTEEN_MINUTE_KEY_FORMAT).replace(tzinfo=UTC)


def _windows(first: datetime, last: datetime) -> tuple[datetime, ...]:
    """Window starts from ``first`` to ``last`` inclusive."""
    return tuple(window_starts(first, last + timedelta(minutes=SLICE_MINUTES))) if first <= last else ()


def _traffic_needs(store, project: ProjectConfig, selected: set[str], first: datetime, last: datetime,
                   project_first: datetime) -> list[UpstreamNeed]:
    """FG-A reads each window's trailing 24 h of delta: the 95 windows before the range (from the
    project's first partition on), and the range itself when delta is not part of the run."""
    if "fg_a" not in selected:
        return []
    spec = store.load_typed_spec(FgABuilderSpec, project.project_name, "fg_a_builder", project.feature_spec_version)
    windows = tuple(trailing_day_before(first, project_first))
    if "delta" not in selected:
        windows += _windows(first, last)
    # A window's delta and pair counts come from the same mini-batches, and FG-B needs both.
    return [UpstreamNeed("fg_a", "delta", delta_host_slices_uri(spec.delta_input.s3_prefix), windows,
                         ("delta", "pair_counts"))]


def _correlation_needs(store, project: ProjectConfig, selected: set[str], first: datetime, last: datetime,
                       project_first: datetime) -> list[UpstreamNeed]:
    """FG-C reads FG-A and pair counts of its own windows; the traffic job produces both."""
    if "fg_c" not in selected:
        return []
    spec = store.load_typed_spec(FgCBuilderSpec, project.project_name, "fg_c_builder", project.feature_spec_version)
    windows = _windows(first, last)
    needs = [UpstreamNeed("fg_c", "fg_a", spec.fg_a_input.s3_prefix, windows, None)]
    if spec.pair_counts is not None:
        needs.append(UpstreamNeed("fg_c", "pair_counts", spec.pair_counts.s3_prefix, windows, ("pair_counts",)))
    return needs


# Per kind: which upstream windows a run needs (monthly baselines check their own inputs when they run).
UPSTREAM_NEEDS = {"traffic": _traffic_needs, "fg_c": _correlation_needs}


def check_upstream_published(lake: Lake, project: str, kind: str, first: str, needs: Sequence[UpstreamNeed]) -> None:
    """Raise :class:`MissingInputsError` naming every unpublished window and a command that publishes them."""
    problems = []
    for need in needs:
        window_of = {PartitionSpec(partition_values(w)): w for w in need.windows}
        windows = [window_of[p] for p in lake.unpublished(need.dataset_uri, list(window_of))]
        if not windows:
            continue
        a, b = (w.strftime(FIFTEEN_MINUTE_KEY_FORMAT) for w in (windows[0], windows[-1]))
        where = f" before {first}" if windows[-1] < _window_start(first) else ""
        assets = f" --assets {','.join(need.run_first)}" if need.run_first else ""
        problem = (
            f"{project}: {need.consumer} needs {need.producer} for {len(windows)} window(s){where} that are not "
            f"published ({a} .. {b}); run first: ndr backfill --project {project}{assets} --start {a} --end {b}"
        )
        if where and kind == "traffic":
            problem += f" (or extend the range to start at {a})"
        problems.append(problem)
    if problems:
        raise MissingInputsError("\n".join(problems))


# Errors raised on purpose (ours, and the dagster.Failure our assets raise) already say what is wrong
# and where: the class path in front of the message is noise on the terminal.
_DELIBERATE_ERROR_PREFIX = re.compile(r"^(?:(?:ndr_\w+|seeds)(?:\.\w+)*|dagster(?:\.\w+)*\.Failure): ")


def _message_only(message: str) -> str:
    return _DELIBERATE_ERROR_PREFIX.sub("", message.strip(), count=1)


def _root_cause(error):
    """The innermost error of a step failure: Dagster wraps ours in "Error occurred while executing op"."""
    while error.cause is not None and "Error occurred while executing" in error.message:
        error = error.cause
    return error

"""Missing-feature creation (spec 001 ``pipeline_missing_feature_creation``): fill exactly the training
windows a month's model lacks, as single-run backfills, from the UI or the CLI.

The coverage is the verifier's (``ndr_assets.models.training_asset.coverage_by_month``); each run of
contiguous missing windows becomes one traffic backfill (delta, pair counts, FG-A) where FG-A is
missing and one FG-C backfill over every window missing either.
"""


from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from ndr_assets.naming import missing_features_job_name
from ndr_assets.partitions import FIFTEEN_MINUTE_KEY_FORMAT
from ndr_assets.transforms.windows import SLICE_MINUTES
from ndr_resources.projects import ProjectConfig


@dataclass(frozen=True)
class WindowRange:
    first: str  # partition keys, inclusive
    last: str
    windows: int


def contiguous_ranges(window_keys: list[str]) -> list[WindowRange]:
    """Sorted runs of consecutive 15-minute window keys: one backfill per run."""
    starts = sorted(datetime.strptime(k, FIFTEEN_MINUTE_KEY_FORMAT) for k in set(window_keys))
    ranges: list[list[datetime]] = []
    for start in starts:
        if ranges and start - ranges[-1][-1] == timedelta(minutes=SLICE_MINUTES):
            ranges[-1].append(start)
        else:
            ranges.append([start])
    return [WindowRange(r[0].strftime(FIFTEEN_MINUTE_KEY_FORMAT), r[-1].strftime(FIFTEEN_MINUTE_KEY_FORMAT), len(r))
            for r in ranges]


def _label_to_key(label: str) -> str:
    """A dt/window partition label (``2026-04-01/0008``) as its 15-minute partition key."""
    day, hhmm = label.split("/")
    return f"{day}-{hhmm[:2]}:{hhmm[2:]}"


def missing_windows(store, lake, project: ProjectConfig, month: datetime) -> dict[str, list[str]]:
    """``{"fg_a": [keys], "fg_c": [keys]}``: the month's model's training windows that are not published."""
    from ndr_assets.models.training_asset import coverage_by_month, training_windows
    from ndr_resources.model_specs import IfTrainingSpec

    spec = store.load_typed_spec(IfTrainingSpec, project.project_name, "if_training", project.feature_spec_version)
    coverage = coverage_by_month(lake, spec, training_windows(project, spec, month))
    out: dict[str, list[str]] = {"fg_a": [], "fg_c": []}
    for by_dataset in coverage.values():
        for dataset, labels in by_dataset.items():
            out[dataset] += [_label_to_key(label) for label in labels]
    return {k: sorted(v) for k, v in out.items()}


class MissingFeaturesConfig(dg.Config):
    model_month: str  # the month of use of the model whose training windows to fill, e.g. "2026-06" or "2026-06-01"


def missing_feature_creation_job(project: ProjectConfig) -> dg.JobDefinition:
    name = project.project_name

    @dg.op(name=f"{missing_features_job_name(name)}__fill", required_resource_keys={"parameter_store", "lake"})
    def fill_missing_windows(context: dg.OpExecutionContext, config: MissingFeaturesConfig) -> dg.Output:
        from ndr_jobs.backfill import backfill_project

        month = datetime.strptime(config.model_month[:7], "%Y-%m").replace(tzinfo=UTC)
        missing = missing_windows(context.resources.parameter_store, context.resources.lake, project, month)
        plan = [("traffic", r) for r in contiguous_ranges(missing["fg_a"])]
        plan += [("fg_c", r) for r in contiguous_ranges(missing["fg_a"] + missing["fg_c"])]
        context.log.info(f"{name}: model {month:%Y-%m}: {len(missing['fg_a'])} window(s) lack FG-A, "
                         f"{len(missing['fg_c'])} lack FG-C: {len(plan)} single-run backfill(s)")
        done = []
        for kind, window_range in plan:
            outcome = backfill_project(name, window_range.first, window_range.last, kind=kind, instance=context.instance)
            done.append({"kind": kind, "first": window_range.first, "last": window_range.last,
                         "windows": window_range.windows, "run_id": outcome.run_id, "ok": outcome.ok})
            if not outcome.ok:
                raise dg.Failure(outcome.failure_message(), metadata={"backfills": dg.MetadataValue.json(done)})
        return dg.Output(None, metadata={"backfills": dg.MetadataValue.json(done), "runs": len(done)})

    @dg.job(name=missing_features_job_name(name), tags={"ndr/project": name},
            description=f"Fill the training windows of one of {name}'s monthly models that lack FG-A or FG-C, "
                        "as single-run backfills (set model_month in the launchpad).")
    def missing_feature_creation():
        fill_missing_windows()

    return missing_feature_creation

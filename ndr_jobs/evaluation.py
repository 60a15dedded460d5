"""Detection quality, measured: the model's scores against the generator's ground truth.

The unit is the host-window (one row of the predictions). A host-window is positive for scenario S
when the ground truth lists it for S; the negatives are the host-windows no scenario lists. Per
scenario (its positives against all negatives) and overall (every positive against the negatives):

- ROC-AUC: the Mann-Whitney probability that a positive outscores a negative, ties counting one
  half, from one aggregation per distinct score and a running sum;
- PR-AUC: average precision, sum over distinct scores (thresholds) of recall gained x precision
  there (ties form one threshold, as scikit-learn's ``average_precision_score``);
- precision at k: positives among the k highest scores, a tie group straddling k counted pro rata
  (the expectation over the order of the tie);
- worst day-rank: per day, the scenario host's best rank among all host-windows of that day (a
  rank counts every host-window scoring at least as high, so ties never flatter), then the worst
  such day. "Every attack host in the top 20 of its day" is worst day-rank <= 20.

Each is computed for the model's ``prediction_score`` and for a plain baseline ranking: the
largest absolute FG-C ``z_mad_*`` value of the host-window. Everything runs in Spark; only the
metrics table (one row per scenario) reaches the driver.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from pyspark.sql.window import Window

from ndr_assets.datasets import window_partitions
from ndr_assets.models.schemas import PREDICTIONS_SCHEMA
from ndr_assets.transforms.windows import SLICE_MINUTES
from ndr_resources.errors import NdrError
from ndr_resources.lake import Lake

OVERALL = "overall"
MODEL, BASELINE = "model", "baseline"
BASELINE_PREFIX = "z_mad_"
DEFAULT_K = (10, 20, 50)
TOP_OF_DAY = 20  # the goal: every attack host within the 20 highest host-windows of its day
GROUND_TRUTH_SCHEMA = "org1 string, org2 string, host_ip string, window_start string, scenario string"
_GROUP, _SCORE, _LABEL = "group", "score", "label"


class EvaluationInputError(NdrError, ValueError):
    """The datasets the evaluation reads are missing or unusable (it names them and what to do)."""


# ---------------------------------------------------------------- inputs


def read_ground_truth(spark: SparkSession, lake: Lake, uri: str) -> DataFrame:
    """The generator's ground truth: org1, org2, host_ip, window_start (ISO text), scenario (the kind),
    scenario_name and window_end_ts. Files written before scenario files have no ``scenario_name``:
    it is then the kind, as it is for a file holding one scenario of each kind."""
    if not lake.exists(uri):
        raise EvaluationInputError(f"no ground truth at {uri}: generate the traffic with `ndr generate` first")
    truth = spark.read.option("header", "true").csv(lake.spark_uri(uri))
    missing = [c.split()[0] for c in GROUND_TRUTH_SCHEMA.split(", ") if c.split()[0] not in truth.columns]
    if missing:
        raise EvaluationInputError(f"{uri}: the ground truth has no column(s) {missing}; its columns: {truth.columns}")
    if "scenario_name" not in truth.columns:
        truth = truth.withColumn("scenario_name", F.col("scenario"))
    return truth.select(
        "org1", "org2", "host_ip", "window_start", "scenario", "scenario_name",
        (F.to_timestamp("window_start") + F.expr(f"INTERVAL {SLICE_MINUTES} MINUTES")).alias("window_end_ts"),
    )


def baseline_score(fg_c: DataFrame) -> Column:
    """The largest |z_mad_*| of a row: how far its most deviant metric is from the host's own median,
    in MADs. A row without any z value scores 0 (nothing to say it is unusual)."""
    columns = [c for c in fg_c.columns if c.startswith(BASELINE_PREFIX)]
    if not columns:
        raise EvaluationInputError(f"FG-C has no {BASELINE_PREFIX}* column to build the baseline ranking from")
    magnitudes = [F.abs(F.col(c).cast("double")) for c in columns]
    largest = magnitudes[0] if len(magnitudes) == 1 else F.greatest(*magnitudes)  # greatest skips nulls
    return F.coalesce(largest, F.lit(0.0))


def _day(window_end: Column) -> Column:
    """The day of ``ndr backfill``: day D holds the windows ending from 00:08 of D to 23:53 of D."""
    return F.to_date(window_end - F.expr("INTERVAL 8 MINUTES"))


# ---------------------------------------------------------------- metrics (pure Spark, tested on tiny frames)


def _levels(labelled: DataFrame, score: str) -> DataFrame:
    """(group, score, n_pos, n_neg) per distinct score of each group.

    ``labelled`` has ``score`` and ``scenarios`` (array of scenario names; empty for a negative).
    A positive counts in each of its scenarios and in ``overall``; the negatives' counts per score
    are computed once and shared by every group.
    """
    positives = labelled.where(F.size("scenarios") > 0).select(
        F.explode(F.array_union("scenarios", F.array(F.lit(OVERALL)))).alias(_GROUP), F.col(score).alias(_SCORE)
    )
    pos_levels = positives.groupBy(_GROUP, _SCORE).agg(F.count(F.lit(1)).alias("n_pos"))
    neg_levels = (
        labelled.where(F.size("scenarios") == 0)
        .groupBy(F.col(score).alias(_SCORE))
        .agg(F.count(F.lit(1)).alias("n_neg"))
    )
    groups = pos_levels.select(_GROUP).distinct()
    return (
        pos_levels.join(groups.crossJoin(neg_levels), [_GROUP, _SCORE], "full_outer")
        .na.fill(0, ["n_pos", "n_neg"])
    )


def ranking_metrics(labelled: DataFrame, score: str, k_values: Sequence[int] = DEFAULT_K) -> DataFrame:
    """Per group: positives, negatives, roc_auc, pr_auc and p_at_<k> of ranking by ``score`` (high = anomalous).

    ``labelled``: one row per host-window with ``score`` and ``scenarios`` (see :func:`_levels`).
    AUCs are null for a group without positives or negatives.
    """
    levels = _levels(labelled, score)
    ascending = Window.partitionBy(_GROUP).orderBy(F.col(_SCORE).asc())
    descending = Window.partitionBy(_GROUP).orderBy(F.col(_SCORE).desc())
    size = F.col("n_pos") + F.col("n_neg")
    levels = (
        levels.withColumn(
            "neg_below", F.coalesce(F.sum("n_neg").over(ascending.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
        )
        .withColumn("pos_at_or_above", F.sum("n_pos").over(descending.rowsBetween(Window.unboundedPreceding, 0)))
        .withColumn("all_at_or_above", F.sum(size).over(descending.rowsBetween(Window.unboundedPreceding, 0)))
    )
    above = F.col("all_at_or_above") - size
    sums = [
        F.sum("n_pos").alias("positives"),
        F.sum("n_neg").alias("negatives"),
        F.sum(F.col("n_pos") * (F.col("neg_below") + 0.5 * F.col("n_neg"))).alias("_wins"),
        F.sum(F.col("n_pos") * F.col("pos_at_or_above") / F.col("all_at_or_above")).alias("_precision_sum"),
        *[
            # Of this score's tie group, the share that falls inside the top k.
            F.sum(F.col("n_pos") * F.greatest(F.lit(0), F.least(size, F.lit(k) - above)) / size).alias(f"_top_{k}")
            for k in k_values
        ],
    ]
    pairs = F.col("positives") * F.col("negatives")
    return levels.groupBy(_GROUP).agg(*sums).select(
        _GROUP,
        F.col("positives").cast("long").alias("positives"),
        F.col("negatives").cast("long").alias("negatives"),
        F.when(pairs > 0, F.col("_wins") / pairs).alias("roc_auc"),
        F.when(F.col("positives") > 0, F.col("_precision_sum") / F.col("positives")).alias("pr_auc"),
        *[(F.col(f"_top_{k}") / k).alias(f"p_at_{k}") for k in k_values],
    )


def worst_day_ranks(labelled: DataFrame, score: str) -> DataFrame:
    """Per scenario: ``worst_day_rank``, the largest over days of the best rank the scenario's positives
    reach among all host-windows of that day (rank = host-windows of the day scoring at least as high);
    ``overall``: the largest of the scenarios'."""
    by_day = Window.partitionBy("day").orderBy(F.col(score).desc()).rangeBetween(Window.unboundedPreceding, 0)
    # Ranked among every host-window of the day, then kept for the positives only.
    ranked = labelled.select("day", "scenarios", F.count(F.lit(1)).over(by_day).alias("rank")).where(
        F.size("scenarios") > 0
    )
    best = ranked.select("day", "rank", F.explode("scenarios").alias(_GROUP)).groupBy(_GROUP, "day").agg(
        F.min("rank").alias("best")
    )
    per_scenario = best.groupBy(_GROUP).agg(F.max("best").cast("long").alias("worst_day_rank"))
    # Overall: the worst scenario's, so that <= 20 means every attack host made its day's top 20.
    overall = per_scenario.agg(F.max("worst_day_rank").alias("worst_day_rank")).select(
        F.lit(OVERALL).alias(_GROUP), "worst_day_rank"
    )
    return per_scenario.unionByName(overall)


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class RankingQuality:
    roc_auc: float | None
    pr_auc: float | None
    precision_at: dict[int, float]
    worst_day_rank: int | None


@dataclass(frozen=True)
class ScenarioQuality:
    scenario: str  # the scenario's name, or "overall"
    kind: str  # the scenario kind; "all" for overall
    positives: int  # host-windows
    negatives: int
    model: RankingQuality
    baseline: RankingQuality


@dataclass(frozen=True)
class EvaluationReport:
    first_window: datetime
    last_window: datetime
    windows: int
    host_windows: int
    k_values: tuple[int, ...]
    scenarios: list[ScenarioQuality]  # by name, overall last

    def row(self, scenario: str) -> ScenarioQuality:
        return next(s for s in self.scenarios if s.scenario == scenario)

    def as_rows(self) -> list[dict[str, Any]]:
        """One flat dict per scenario (what the table prints and the metadata stores)."""
        rows = []
        for s in self.scenarios:
            row: dict[str, Any] = {"scenario": s.scenario, "kind": s.kind, "positives": s.positives}
            for name, quality in ((MODEL, s.model), (BASELINE, s.baseline)):
                row[f"roc_auc_{name}"] = quality.roc_auc
                row[f"pr_auc_{name}"] = quality.pr_auc
                for k in self.k_values:
                    row[f"p_at_{k}_{name}"] = quality.precision_at.get(k)
                row[f"worst_day_rank_{name}"] = quality.worst_day_rank
            rows.append(row)
        return rows

    def markdown(self) -> str:
        columns = ["scenario", "positives", "ROC-AUC model / baseline", "PR-AUC model / baseline",
                   *[f"P@{k} model / baseline" for k in self.k_values], "worst day-rank model / baseline"]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for cells in self.cells():
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def cells(self) -> list[list[str]]:
        out = []
        for s in self.scenarios:
            out.append([
                s.scenario if s.scenario == s.kind or s.kind == "all" else f"{s.scenario} ({s.kind})",
                str(s.positives),
                _pair(s.model.roc_auc, s.baseline.roc_auc),
                _pair(s.model.pr_auc, s.baseline.pr_auc),
                *[_pair(s.model.precision_at.get(k), s.baseline.precision_at.get(k)) for k in self.k_values],
                f"{_rank(s.model.worst_day_rank)} / {_rank(s.baseline.worst_day_rank)}",
            ])
        return out

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "first_window": self.first_window.isoformat(),
                           "last_window": self.last_window.isoformat()}, default=str)


def _pair(model: float | None, baseline: float | None) -> str:
    return " / ".join("-" if v is None else f"{v:.3f}" for v in (model, baseline))


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


def _missing_message(kind: str, uri: str, missing: list, total: int, hint: str) -> str:
    labels = [p.label() for p in missing]
    shown = ", ".join(labels[:5]) + (f", ... ({len(labels) - 5} more)" if len(labels) > 5 else "")
    return f"no published {kind} for {len(labels)} of {total} window(s) at {uri}: {shown}; {hint}"


def labelled_host_windows(
    predictions: DataFrame, fg_c: DataFrame, truth: DataFrame
) -> DataFrame:
    """(host_ip, window_end_ts, day, model, baseline, scenarios) per predicted host-window.

    ``scenarios``: names of the ground-truth scenarios listing the host-window (empty: a negative).
    The baseline comes from the same host-window's FG-C row (0 where FG-C has none).
    """
    keys = ["host_ip", "window_end_ts"]
    baseline = fg_c.select(*keys, baseline_score(fg_c).alias(BASELINE))
    listed = truth.groupBy(*keys).agg(F.array_sort(F.collect_set("scenario_name")).alias("scenarios"))
    return (
        predictions.select(*keys, F.col("prediction_score").cast("double").alias(MODEL))
        .join(baseline, keys, "left")
        .join(listed, keys, "left")
        .select(
            *keys,
            _day(F.col("window_end_ts")).alias("day"),
            MODEL,
            F.coalesce(BASELINE, F.lit(0.0)).alias(BASELINE),
            F.coalesce("scenarios", F.array().cast("array<string>")).alias("scenarios"),
        )
    )


def score_rankings(labelled: DataFrame, kinds: dict[str, str], k_values: Sequence[int] = DEFAULT_K) -> list[ScenarioQuality]:
    """Both rankings' metrics per group (bounded: one row per scenario) as :class:`ScenarioQuality` rows."""
    per_ranking = {}
    for name in (MODEL, BASELINE):
        metrics = ranking_metrics(labelled, name, k_values).join(worst_day_ranks(labelled, name), _GROUP, "left")
        per_ranking[name] = {row[_GROUP]: row.asDict() for row in metrics.collect()}

    def quality(row: dict | None) -> RankingQuality:
        if row is None:
            return RankingQuality(None, None, {}, None)
        return RankingQuality(row["roc_auc"], row["pr_auc"], {k: row[f"p_at_{k}"] for k in k_values},
                              row["worst_day_rank"])

    names = sorted(set(per_ranking[MODEL]) - {OVERALL}) + [OVERALL]
    out = []
    for group in names:
        row = per_ranking[MODEL].get(group)
        if row is None:
            continue
        out.append(ScenarioQuality(
            scenario=group, kind="all" if group == OVERALL else kinds.get(group, group),
            positives=int(row["positives"]), negatives=int(row["negatives"]),
            model=quality(row), baseline=quality(per_ranking[BASELINE].get(group)),
        ))
    return out


def evaluate_detection(
    spark: SparkSession,
    lake: Lake,
    *,
    predictions_uri: str,
    fg_c_uri: str,
    fg_c_schema: StructType,
    ground_truth_uri: str,
    org1: str,
    org2: str,
    window_starts: Sequence[datetime],
    k_values: Sequence[int] = DEFAULT_K,
) -> EvaluationReport:
    """Score the predictions of ``window_starts`` against the tenant's ground truth (module docstring).

    ``predictions_uri`` / ``fg_c_uri``: the datasets' roots holding ``dt=/window=`` partitions.
    Raises :class:`EvaluationInputError` naming the windows whose predictions or FG-C are not published.
    """
    window_starts = sorted(window_starts)
    if not window_starts:
        raise EvaluationInputError("no windows to evaluate")
    partitions = window_partitions(list(window_starts))
    predictions, missing = lake.read_partitions(spark, predictions_uri, partitions, PREDICTIONS_SCHEMA)
    if missing:
        raise EvaluationInputError(_missing_message(
            "predictions", predictions_uri, missing, len(partitions),
            "materialize the predictions of these windows first (the project's predictions asset)"
        ))
    fg_c, missing = lake.read_partitions(spark, fg_c_uri, partitions, fg_c_schema)
    if missing:
        raise EvaluationInputError(_missing_message(
            "FG-C", fg_c_uri, missing, len(partitions), "the baseline ranking needs them: run the fg_c backfill first"
        ))
    ends = [start + timedelta(minutes=SLICE_MINUTES) for start in window_starts]
    truth = read_ground_truth(spark, lake, ground_truth_uri).where(
        (F.col("org1") == org1) & (F.col("org2") == org2) & F.col("window_end_ts").isin(ends)
    )
    kinds = {row["scenario_name"]: row["scenario"] for row in truth.select("scenario_name", "scenario").distinct().collect()}
    labelled = labelled_host_windows(predictions, fg_c, truth).cache()
    try:
        host_windows = labelled.count()
        if host_windows == 0:
            raise EvaluationInputError(f"the predictions at {predictions_uri} hold no rows for the {len(ends)} window(s)")
        scenarios = score_rankings(labelled, kinds, k_values)
    finally:
        labelled.unpersist()
    return EvaluationReport(
        first_window=window_starts[0], last_window=window_starts[-1], windows=len(window_starts),
        host_windows=host_windows, k_values=tuple(k_values), scenarios=scenarios,
    )


# ---------------------------------------------------------------- `ndr evaluate`: a project's range, recorded on its model


def detection_table(project: str, first_day: str, last_day: str, report: EvaluationReport):
    """The report as a rich table: one row per scenario and overall, model / baseline in each cell."""
    from rich.table import Table

    table = Table(title=f"{project}: detection quality, {first_day} .. {last_day} ({report.windows} windows, "
                  f"{report.host_windows:,} host-windows); model / baseline (largest |z_mad|)")
    for column in ("scenario", "positives", "ROC-AUC", "PR-AUC", *[f"P@{v}" for v in report.k_values], "worst day-rank"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for cells in report.cells():
        table.add_row(*cells)
    return table


def day_window_starts(first_day: str, last_day: str) -> list[datetime]:
    """Window starts of the days ``first_day`` .. ``last_day`` (ISO dates), as ``ndr backfill`` tiles days."""
    from datetime import UTC, date

    from ndr_assets.transforms.windows import floor_to_window_start, window_starts

    try:
        first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    except ValueError as exc:
        raise EvaluationInputError(f"--start/--end must be days (YYYY-MM-DD): {exc}") from None
    if last < first:
        raise EvaluationInputError(f"--end {last_day} is before --start {first_day}")
    start = floor_to_window_start(datetime(first.year, first.month, first.day, tzinfo=UTC))
    end = floor_to_window_start(datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))
    return list(window_starts(start, end))


def bucket_of(prefix: str) -> str:
    """``s3://bucket/paloalto/o1/o2`` -> ``bucket``."""
    return prefix.removeprefix("s3://").split("/", 1)[0]


@dataclass(frozen=True)
class ProjectEvaluation:
    project: str
    report: EvaluationReport
    predictions_uri: str
    ground_truth_uri: str
    recorded_months: tuple[str, ...]  # if_model partitions the report was recorded on (empty: no instance)


def evaluate_project(
    project: str, first_day: str, last_day: str, *, spark: SparkSession | None = None,
    k_values: Sequence[int] = DEFAULT_K, ground_truth: str | None = None,
) -> ProjectEvaluation:
    """Resolve the project's specs from the parameter store, evaluate the days, and record the table
    as an observation of the project's ``if_model`` for each month of the range."""
    from ndr_assets.models.scoring_asset import versioned_uri
    from ndr_assets.naming import IF_MODEL, asset_key
    from ndr_assets.transforms.fg_c import resolve_fg_c_lists
    from ndr_jobs.synthetic.writers import ground_truth_uri
    from ndr_resources.environments import current_environment, resources_for
    from ndr_resources.model_specs import InferencePredictionsSpec
    from ndr_resources.projects import load_project_configs
    from ndr_resources.specs import FgCBuilderSpec

    resources = resources_for(current_environment())
    store, lake = resources["parameter_store"], resources["lake"]
    configs = {c.project_name: c for c in load_project_configs(store)}
    if project not in configs:
        raise NdrError(f"project '{project}' has no enabled routing record in the parameter store; routed: {sorted(configs)}")
    config = configs[project]
    version = config.feature_spec_version
    predictions_spec = store.load_typed_spec(InferencePredictionsSpec, project, "inference_predictions", version)
    fg_c_spec = store.load_typed_spec(FgCBuilderSpec, project, "fg_c_builder", version)
    predictions_uri = versioned_uri(predictions_spec.output.s3_prefix, version)
    truth_uri = ground_truth or ground_truth_uri(bucket_of(config.ingestion_prefix), config.org1, config.org2)
    windows = day_window_starts(first_day, last_day)
    if spark is None:
        from ndr_resources.spark import build_spark_session

        spark = build_spark_session()
    try:
        report = evaluate_detection(
            spark, lake, predictions_uri=predictions_uri, fg_c_uri=fg_c_spec.fg_c_output.s3_prefix,
            fg_c_schema=resolve_fg_c_lists(fg_c_spec).schema(), ground_truth_uri=truth_uri,
            org1=config.org1, org2=config.org2, window_starts=windows, k_values=k_values,
        )
    except EvaluationInputError as exc:
        raise EvaluationInputError(f"{project}: {exc}") from None
    # The months of the evaluated days (a day's first window starts at 23:53 of the day before,
    # which must not make April 1st an evaluation of March's model).
    months = tuple(sorted({first_day[:7] + "-01", last_day[:7] + "-01"} | {
        f"{w + timedelta(minutes=SLICE_MINUTES):%Y-%m}-01" for w in windows[1:-1]
    }))
    recorded = _record_on_model(asset_key(project, IF_MODEL), months, report, predictions_uri, truth_uri)
    return ProjectEvaluation(project, report, predictions_uri, truth_uri, recorded)


def _record_on_model(key, months: tuple[str, ...], report: EvaluationReport, predictions_uri: str, truth_uri: str) -> tuple[str, ...]:
    """One runless observation of ``if_model`` per month (the model keyed by the month it scores)."""
    import dagster as dg

    try:
        instance = dg.DagsterInstance.get()
    except dg.DagsterInvariantViolationError:  # no DAGSTER_HOME: nowhere to record
        return ()
    overall = report.row(OVERALL) if any(s.scenario == OVERALL for s in report.scenarios) else None
    metadata = {
        "evaluation_range": f"{report.first_window:%Y-%m-%d %H:%M} .. {report.last_window:%Y-%m-%d %H:%M} (window starts)",
        "evaluation_windows": report.windows,
        "evaluation_host_windows": report.host_windows,
        "evaluation_table": dg.MetadataValue.md(report.markdown()),
        "evaluation_rows": dg.MetadataValue.json(report.as_rows()),
        "predictions": predictions_uri,
        "ground_truth": truth_uri,
    }
    if overall is not None:
        metadata["roc_auc_overall_model"] = overall.model.roc_auc
        metadata["roc_auc_overall_baseline"] = overall.baseline.roc_auc
    try:
        for month in months:
            instance.report_runless_asset_event(dg.AssetObservation(asset_key=key, partition=month, metadata=metadata))
    finally:
        instance.dispose()
    return months

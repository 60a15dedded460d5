"""Scoring a window's feature rows through the model endpoint, from Spark.

``score_windows`` runs one ``mapInPandas`` over the rows: each partition receives Arrow batches of
its rows (never one row at a time), encodes each batch into payloads within both endpoint limits
(:mod:`ndr_assets.models.payloads`), sends them with ``config.max_workers`` threads per task (so the
endpoint sees at most tasks x max_workers concurrent calls), retries what may pass
(:func:`ndr_resources.model_endpoint.invoke_with_retries`) and yields one row per record: its
prediction, or, when its payload failed, a status row whose ``error`` says why. Nothing is dropped:
a window's rows are all scored or all accounted for by failed payloads.

The output is checkpointed (``localCheckpoint``) before anything is counted, so the endpoint is
called exactly once per payload: counting, reporting failures and writing the scored rows all read
the same computed rows rather than re-running the calls. Failures are summarised by a bounded
aggregation (one row per failed payload, at most ``MAX_REPORTED_FAILURES`` fetched); the caller
refuses to publish a window with any failed payload.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.models import serving
from ndr_assets.models.payloads import Payload, PayloadTooLargeError, build_payloads, max_payload_bytes
from ndr_assets.models.schemas import TOP_FEATURE_TYPE
from ndr_assets.transforms.fg_c_sql import quoted
from ndr_resources.model_invokers import InvokeError, Invoker, invoke_with_retries
from ndr_resources.model_specs import EndpointConfig

PAYLOAD_ID = "payload_id"
ERROR = "error"
ATTEMPTS = "attempts"
MAX_REPORTED_FAILURES = 100

SCORING_FIELDS = [
    T.StructField(serving.RECORD_ID, T.StringType(), False),
    T.StructField(serving.SCORE, T.DoubleType(), True),
    T.StructField(serving.LABEL, T.IntegerType(), True),
    T.StructField(serving.MODEL_VERSION, T.StringType(), True),
    T.StructField(serving.MODEL_NAME, T.StringType(), True),
    T.StructField(serving.TOP_FEATURES, T.ArrayType(TOP_FEATURE_TYPE, False), True),
    # "p<partition>-<n>": the n-th payload of that input partition (stable for a given partitioning).
    T.StructField(PAYLOAD_ID, T.StringType(), False),
    T.StructField(ERROR, T.StringType(), True),
    # Endpoint calls made for the row's payload (0: never sent, e.g. a record too large alone).
    T.StructField(ATTEMPTS, T.IntegerType(), False),
]


@dataclass(frozen=True)
class FailedPayload:
    payload_id: str
    records: int
    first_record_id: str
    error: str


@dataclass(frozen=True)
class ScoringResult:
    """What ``score_windows`` did. ``scored``: the successfully scored rows (``record_id``, the carried
    columns, score, label, model_version, model_name, top_features, payload_id)."""

    scored: DataFrame
    payloads: int
    calls: int
    retries: int
    failed_payload_count: int
    failed_records: int
    failed_payloads: list[FailedPayload]  # the first MAX_REPORTED_FAILURES, by payload_id

    @property
    def ok(self) -> bool:
        return self.failed_payload_count == 0

    def failure_summary(self) -> str:
        """One line naming the failed payloads (for the caller's error), empty when none failed."""
        if self.ok:
            return ""
        shown = "; ".join(f"{p.payload_id} ({p.records} records from {p.first_record_id!r}): {p.error}"
                          for p in self.failed_payloads)
        more = self.failed_payload_count - len(self.failed_payloads)
        return (f"{self.failed_payload_count} of {self.payloads} payloads ({self.failed_records} records) failed: "
                f"{shown}" + (f"; and {more} more" if more > 0 else ""))


def _call(payload: Payload, record_ids: list[str], invoker: Invoker, config: EndpointConfig,
          max_bytes: int) -> tuple[list[dict] | None, str | None, int]:
    """``(predictions, error, attempts)`` of one payload; exactly one of predictions/error is set."""
    if len(payload.body) > max_bytes:  # only a single record too large alone gets here (build_payloads)
        return None, str(PayloadTooLargeError(record_ids[payload.start], len(payload.body), max_bytes)), 0
    try:
        outcome = invoke_with_retries(invoker, payload.body, config.content_type, config.accept,
                                      max_retries=config.max_retries, backoff_seconds=config.backoff_seconds)
    except InvokeError as exc:
        return None, str(exc), exc.attempts
    try:
        predictions = serving.parse_predictions(outcome.body, config.accept)
    except (ValueError, KeyError, IndexError) as exc:
        return None, f"unreadable {config.accept} response: {exc}", outcome.attempts
    sent = record_ids[payload.start:payload.end]
    answered = [str(p.get(serving.RECORD_ID)) for p in predictions]
    if answered != sent:
        return None, (f"response answers {len(answered)} records (first {answered[:1]}) for the {len(sent)} sent "
                      f"(first {sent[:1]})"), outcome.attempts
    if config.model_version:
        served = {p.get(serving.MODEL_VERSION) for p in predictions}
        if served != {config.model_version}:
            return None, f"endpoint served model_version {sorted(map(str, served))}, expected {config.model_version!r}", outcome.attempts
    return predictions, None, outcome.attempts


def _batch_rows(batch: pd.DataFrame, carry_columns: Sequence[str],
                outcomes: list[tuple[Payload, str, list[dict] | None, str | None, int]]) -> pd.DataFrame:
    """The output rows of one Arrow batch: a prediction per record, or a status row where its payload failed."""
    scores: list = []
    labels: list = []
    versions: list = []
    names: list = []
    tops: list = []
    payload_ids: list = []
    errors: list = []
    attempts_per_row: list = []
    for payload, payload_id, predictions, error, attempts in outcomes:
        n = payload.records
        if predictions is not None:
            scores += [p[serving.SCORE] for p in predictions]
            labels += [p[serving.LABEL] for p in predictions]
            versions += [p[serving.MODEL_VERSION] for p in predictions]
            names += [p[serving.MODEL_NAME] for p in predictions]
            tops += [p[serving.TOP_FEATURES] for p in predictions]
        else:
            scores += [None] * n
            labels += [None] * n
            versions += [None] * n
            names += [None] * n
            tops += [None] * n
        payload_ids += [payload_id] * n
        errors += [error] * n
        attempts_per_row += [attempts] * n
    # Payloads cover the batch in order, so the batch's own columns line up with the lists.
    columns: dict[str, object] = {serving.RECORD_ID: batch[serving.RECORD_ID].to_numpy()}
    for name in carry_columns:
        columns[name] = batch[name].to_numpy()
    columns[serving.SCORE] = pd.array(scores, dtype="Float64")
    columns[serving.LABEL] = pd.array(labels, dtype="Int32")
    columns[serving.MODEL_VERSION] = pd.array(versions, dtype=object)
    columns[serving.MODEL_NAME] = pd.array(names, dtype=object)
    columns[serving.TOP_FEATURES] = pd.array(tops, dtype=object)
    columns[PAYLOAD_ID] = pd.array(payload_ids, dtype=object)
    columns[ERROR] = pd.array(errors, dtype=object)
    columns[ATTEMPTS] = pd.array(attempts_per_row, dtype="int32")
    return pd.DataFrame(columns)


def score_windows(features: DataFrame, *, feature_columns: list[str], record_id_col: str, invoker: Invoker,
                  config: EndpointConfig, carry_columns: Sequence[str] = ()) -> ScoringResult:
    """Score every row of ``features`` through ``invoker``; see the module docstring.

    ``record_id_col`` (cast to string) is what the endpoint echoes as ``record_id``; the
    ``carry_columns`` (e.g. the window keys) are copied from input to output rows unchanged, so the
    caller needs no join back.
    """
    carry_columns = [c for c in carry_columns if c not in (record_id_col, serving.RECORD_ID)]
    missing = [c for c in [record_id_col, *feature_columns, *carry_columns] if c not in features.columns]
    if missing:
        raise ValueError(f"score_windows: features lack column(s) {missing}")
    clash = sorted(set(carry_columns) & {f.name for f in SCORING_FIELDS})
    if clash:
        raise ValueError(f"score_windows: carry_columns {clash} collide with the scoring output's columns")
    carry_fields = [features.schema[c] for c in carry_columns]
    output_schema = T.StructType(SCORING_FIELDS[:1] + carry_fields + SCORING_FIELDS[1:])
    max_bytes = max_payload_bytes(config.max_payload_mb)
    feature_columns = list(feature_columns)
    # The payload encoder sees the model's column names; record_id is renamed to what the model reads.
    # Only the record id, the carried columns and the model's features reach Python; SQL text, one py4j
    # call for the projection instead of several per feature column.
    features_in = features.selectExpr(
        f"CAST({quoted(record_id_col)} AS STRING) AS {quoted(serving.RECORD_ID)}",
        *[quoted(c) for c in carry_columns],
        *[f"CAST({quoted(c)} AS DOUBLE) AS {quoted(c)}" for c in feature_columns],
    )

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        sequence = 0
        with ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="ndr-invoke") as pool:
            for batch in batches:
                batch = batch.reset_index(drop=True)
                if batch.empty:
                    continue
                payloads = build_payloads(batch, record_id_col=serving.RECORD_ID, feature_columns=feature_columns,
                                          content_type=config.content_type, max_records=config.max_records_per_payload,
                                          max_bytes=max_bytes)
                record_ids = batch[serving.RECORD_ID].tolist()
                calls = pool.map(_call, payloads, repeat(record_ids), repeat(invoker), repeat(config), repeat(max_bytes))
                outcomes = []
                for payload, (predictions, error, attempts) in zip(payloads, calls, strict=True):
                    outcomes.append((payload, f"p{partition:05d}-{sequence:06d}", predictions, error, attempts))
                    sequence += 1
                yield _batch_rows(batch, carry_columns, outcomes)

    # Checkpointed: the endpoint calls happen once, whatever reads the result afterwards.
    outputs = features_in.mapInPandas(score_partition, output_schema).localCheckpoint(eager=True)

    per_payload = outputs.groupBy(PAYLOAD_ID).agg(
        F.count(F.lit(1)).alias("records"),
        F.max(ATTEMPTS).alias(ATTEMPTS),
        F.max(ERROR).alias(ERROR),
        F.min(serving.RECORD_ID).alias("first_record_id"),
    )
    totals = per_payload.agg(
        F.count(F.lit(1)).alias("payloads"),
        F.coalesce(F.sum(ATTEMPTS), F.lit(0)).alias("calls"),
        F.coalesce(F.sum(F.greatest(F.col(ATTEMPTS) - 1, F.lit(0))), F.lit(0)).alias("retries"),
        F.count(ERROR).alias("failed_payloads"),
        F.coalesce(F.sum(F.when(F.col(ERROR).isNotNull(), F.col("records"))), F.lit(0)).alias("failed_records"),
    ).first()
    failed = [
        FailedPayload(r[PAYLOAD_ID], int(r["records"]), r["first_record_id"], r[ERROR])
        for r in per_payload.where(F.col(ERROR).isNotNull()).orderBy(PAYLOAD_ID).limit(MAX_REPORTED_FAILURES).collect()
    ]
    scored = outputs.where(F.col(ERROR).isNull()).drop(ERROR, ATTEMPTS)
    return ScoringResult(scored, int(totals["payloads"]), int(totals["calls"]), int(totals["retries"]),
                         int(totals["failed_payloads"]), int(totals["failed_records"]), failed)

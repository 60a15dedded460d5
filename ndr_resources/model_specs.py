"""Typed job specs of the model half of the graph (spec 001): training, inference, the join, Feature Store.

Parsed at the edge like every other spec (``ParameterStore.load_typed_spec``), so a missing or
wrong key fails naming the project, the item and the key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ndr_resources.specs import RedshiftConnection, S3Location, SpecModel, _identifier

DEFAULT_MODEL_JOIN_KEYS = ["host_ip", "window_label", "window_end_ts"]


def _model_join_keys(values: list[str]) -> list[str]:
    if values != DEFAULT_MODEL_JOIN_KEYS:
        # FG-A and FG-C rows are keyed by exactly these three; another key would silently fan out.
        raise ValueError(f"join_keys must be {DEFAULT_MODEL_JOIN_KEYS}, got {values}")
    return values


class FeatureInput(S3Location):
    """One feature bundle a model reads (``fg_a``, ``fg_c``)."""

    dataset: str | None = None
    required: bool = True


def _fg_a_and_fg_c(inputs: dict[str, FeatureInput]) -> dict[str, FeatureInput]:
    missing = [name for name in ("fg_a", "fg_c") if name not in inputs]
    if missing:
        raise ValueError(f"feature_inputs needs {missing} (the model reads FG-A and FG-C)")
    unknown = sorted(set(inputs) - {"fg_a", "fg_c"})
    if unknown:
        raise ValueError(f"unknown feature input(s) {unknown}; known: ['fg_a', 'fg_c']")
    return inputs


class ModelInputs(SpecModel):
    """FG-A and FG-C, joined on the three model keys: what training, inference and the join read."""

    feature_inputs: dict[str, FeatureInput]
    join_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_MODEL_JOIN_KEYS))

    @field_validator("feature_inputs")
    @classmethod
    def _inputs(cls, value: dict[str, FeatureInput]) -> dict[str, FeatureInput]:
        return _fg_a_and_fg_c(value)

    @field_validator("join_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return _model_join_keys(value)


# ---------------------------------------------------------------- if_training


class TrainingWindow(SpecModel):
    """Which windows a month's model is trained on.

    By default the ``lookback_months`` months that end ``gap_months`` before the month of use
    (4 and 1: the 2026-06 model learns 2026-01..04). ``in_month_days`` replaces that with the first
    N days (may be fractional) of the month of use itself, for histories too short to hold whole months (the model then
    scores only the windows after them out of sample; the predictions say which were in sample).
    """

    lookback_months: int = Field(default=4, ge=1, le=24)
    gap_months: int = Field(default=1, ge=0, le=12)
    in_month_days: float | None = Field(default=None, gt=0, le=27)


class TrainingOutput(SpecModel):
    artifacts_s3_prefix: str
    report_s3_prefix: str
    model_image_prefix: str | None = None

    @field_validator("artifacts_s3_prefix", "report_s3_prefix", "model_image_prefix")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        return None if value is None else S3Location(s3_prefix=value).s3_prefix


class ModelIdentity(SpecModel):
    version: str
    name: str = "isolation_forest"


class Preprocessing(SpecModel):
    eps: float = Field(default=1e-6, gt=0)
    scaling_method: Literal["robust", "standard", "none"] = "robust"
    outlier_method: Literal["clip", "none"] = "clip"
    z_max: float = Field(default=6.0, gt=0)
    # "excess": values below the training median count as the median (only more than usual is a
    # deviation: a quieter host, or one seen only as a destination, is not an anomaly); "both": two-sided.
    deviations: Literal["excess", "both"] = "excess"


class FeatureSelection(SpecModel):
    enabled: bool = True
    variance_threshold: float = Field(default=1e-8, ge=0)
    # 1.0: no correlation stage by default; a per-metric forest keeps a metric's correlated windows and
    # comparisons together, and dropping them lost the attacks' ranks (models/selection.py).
    corr_threshold: float = Field(default=1.0, gt=0, le=1)
    # 0: no stability stage (the default for the per-metric model, see models/selection.py).
    stability_runs: int = Field(default=0, ge=0, le=20)
    # A feature is kept when its importance rank is stable across the seeded runs (share of runs in
    # which it is among the informative ones).
    stability_min_share: float = Field(default=0.5, ge=0, le=1)
    permutation_eval: bool = False


class Tuning(SpecModel):
    method: Literal["random", "grid"] = "random"
    max_trials: int = Field(default=8, ge=1, le=200)
    timeout_seconds: float = Field(default=300, gt=0)
    search_space: dict[str, list[Any]] = Field(
        default_factory=lambda: {
            # A trial fits one forest per feature group (~70): small forests, as many trees as stability needs.
            "n_estimators": [100, 200],
            "max_samples": [256],
            "max_features": [1.0],
            "contamination": ["auto"],
        }
    )
    # Label-free objective: weight of score separation (tail vs bulk) and of rank stability across seeds.
    objective_weights: dict[str, float] = Field(default_factory=lambda: {"separation": 0.5, "stability": 0.5})

    @field_validator("search_space")
    @classmethod
    def _known_parameters(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        known = {"n_estimators", "max_samples", "max_features", "contamination", "bootstrap"}
        unknown = sorted(set(space) - known)
        if unknown:
            raise ValueError(f"unknown IsolationForest parameter(s) {unknown}; known: {sorted(known)}")
        empty = sorted(k for k, v in space.items() if not v)
        if empty:
            raise ValueError(f"search_space lists no value for {empty}")
        return space


class Sampling(SpecModel):
    """How much training data reaches the one machine that fits the model."""

    max_rows: int = Field(default=200_000, ge=100)
    seed: int = 7


class Experiments(SpecModel):
    experiment_name: str | None = None
    trial_prefix: str = "trial"
    capture_artifacts: bool = True


class Deployment(SpecModel):
    deploy_on_success: bool = False
    endpoint_name: str | None = None
    endpoint_config_name: str | None = None
    strategy: Literal["create_or_update"] = "create_or_update"
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = Field(default=1, ge=1)
    # The scikit-learn serving image and the role SageMaker assumes (production; the embedded registry ignores them).
    image_uri: str | None = None
    execution_role_arn: str | None = None
    model_package_group: str | None = None  # default: <project>-<model.name>

    @model_validator(mode="after")
    def _endpoint_when_deploying(self) -> Deployment:
        if self.deploy_on_success and not self.endpoint_name:
            raise ValueError("deploy_on_success needs endpoint_name")
        return self


class IfTrainingSpec(ModelInputs):
    window: TrainingWindow = Field(default_factory=TrainingWindow)
    model: ModelIdentity
    output: TrainingOutput
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    feature_selection: FeatureSelection = Field(default_factory=FeatureSelection)
    tuning: Tuning = Field(default_factory=Tuning)
    sampling: Sampling = Field(default_factory=Sampling)
    experiments: Experiments = Field(default_factory=Experiments)
    deployment: Deployment = Field(default_factory=Deployment)
    # One forest per FG-A metric ("metric", ndr_assets.models.groups) or one over every input ("all").
    feature_groups: Literal["metric", "all"] = "metric"
    # Share of training host-windows labelled anomalous (prediction_label) by the threshold.
    label_quantile: float = Field(default=0.99, gt=0.5, lt=1)



# ---------------------------------------------------------------- inference_predictions


class EndpointConfig(SpecModel):
    endpoint_name: str
    timeout_seconds: float = Field(default=60, gt=0)
    max_payload_mb: float = Field(default=5, gt=0, le=6)  # SageMaker real-time payloads are capped at 6 MB
    max_records_per_payload: int = Field(default=500, ge=1)
    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_seconds: float = Field(default=1.5, ge=0)
    content_type: Literal["application/json", "text/csv"] = "application/json"
    accept: Literal["application/json", "text/csv"] = "application/json"
    model_version: str | None = None
    model_name: str | None = None
    max_workers: int = Field(default=4, ge=1, le=64)
    region: str | None = None
    # Written back by training (the model of each month): {"<YYYY-MM>": {"model_version", "artifact_uri", ...}}.
    trained_models: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PredictionsOutput(S3Location):
    format: Literal["PARQUET", "parquet"] = "PARQUET"
    # Declared partition keys; the platform adds ``window`` inside them so one window can be replaced alone.
    partition_keys: list[str] = Field(default_factory=lambda: ["feature_spec_version", "dt"])
    write_mode: Literal["overwrite_partitions"] = "overwrite_partitions"
    dataset: str = "predictions"

    @field_validator("partition_keys")
    @classmethod
    def _known_keys(cls, values: list[str]) -> list[str]:
        if values not in (["feature_spec_version", "dt"], ["feature_spec_version", "dt", "model_version"]):
            raise ValueError(f"partition_keys must be ['feature_spec_version', 'dt'] (optionally + 'model_version'), got {values}")
        return values


class PayloadColumns(SpecModel):
    feature_columns: list[str] | None = None


class PredictionSchema(SpecModel):
    score_column: str = "prediction_score"
    label_column: str = "prediction_label"


class InferencePredictionsSpec(ModelInputs):
    model: EndpointConfig
    output: PredictionsOutput
    payload: PayloadColumns = Field(default_factory=PayloadColumns)
    prediction_schema: PredictionSchema = Field(default_factory=PredictionSchema)
    # Written back by training: the preprocessing payload of the latest model (features, centre, scale).
    preprocessing: dict[str, Any] | None = None
    top_features: int = Field(default=5, ge=3, le=20)



# ---------------------------------------------------------------- prediction_feature_join


class JoinS3Destination(S3Location):
    format: Literal["PARQUET", "parquet"] = "PARQUET"
    partition_keys: list[str] = Field(default_factory=lambda: ["feature_spec_version", "dt"])
    dataset: str = "prediction_feature_join"


class JoinRedshiftDestination(RedshiftConnection):
    schema_name: str = Field(alias="schema")
    table: str
    # Where the joined rows are staged as Parquet before the COPY.
    staging_s3_prefix: str
    pre_sql: list[str] = Field(default_factory=list)
    post_sql: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    @field_validator("schema_name", "table")
    @classmethod
    def _identifiers(cls, value: str) -> str:
        return _identifier(value)

    @field_validator("staging_s3_prefix")
    @classmethod
    def _uri(cls, value: str) -> str:
        return S3Location(s3_prefix=value).s3_prefix


class JoinDestination(SpecModel):
    type: Literal["s3", "redshift"] = "s3"
    s3: JoinS3Destination | None = None
    redshift: JoinRedshiftDestination | None = None

    @model_validator(mode="after")
    def _payload_for_type(self) -> JoinDestination:
        if getattr(self, self.type) is None:
            raise ValueError(f"destination.type is {self.type!r} but destination.{self.type} is missing")
        return self


class PredictionFeatureJoinSpec(ModelInputs):
    predictions_input: S3Location
    destination: JoinDestination



# ---------------------------------------------------------------- feature_store (item-level map)


class FeatureGroupTarget(SpecModel):
    """One dataset's feature group: offline (S3 through the offline store) and/or online (PutRecord)."""

    feature_group_name: str
    offline: bool = True
    online: bool = False
    offline_s3_uri: str | None = None
    record_identifier: str = "record_id"
    event_time_feature: str = "event_time"

    @field_validator("feature_group_name")
    @classmethod
    def _group_name(cls, value: str) -> str:
        import re

        if not re.match(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$", value):
            raise ValueError(f"not a valid feature group name: {value!r}")
        return value


class FeatureStoreConfig(SpecModel):
    """The ``feature_store`` map of a project's item (spec 001 optional attributes)."""

    enabled: bool = True
    region: str | None = None
    role_arn: str | None = None
    max_workers: int = Field(default=8, ge=1, le=64)
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)
    records_per_batch: int = Field(default=500, ge=1)
    groups: dict[str, FeatureGroupTarget] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _known_datasets(cls, groups: dict[str, FeatureGroupTarget]) -> dict[str, FeatureGroupTarget]:
        unknown = sorted(set(groups) - {"fg_a", "fg_c"})
        if unknown:
            raise ValueError(f"feature_store.groups names unknown dataset(s) {unknown}; known: ['fg_a', 'fg_c']")
        return groups

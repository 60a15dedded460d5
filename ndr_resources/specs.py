"""Typed models of the parameter-table payloads (spec 001), parsed once at the edge.

Every ``spec`` payload read from the parameter store goes through :func:`parse_spec`, which turns a
pydantic validation failure into a :class:`SpecError` naming the project, the item and the key path.
Extra keys are allowed (spec 001: "Additional keys are allowed") and kept on the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ndr_resources.errors import SpecError

# Canonical traffic columns a reader produces; ``field_mapping`` maps these to source columns.
# ``device_serial`` and ``session_id`` identify a session (with its start time) across deliveries.
CANONICAL_TRAFFIC_FIELDS = (
    "source_ip",
    "destination_ip",
    "source_port",
    "destination_port",
    "protocol",
    "action",
    "source_bytes",
    "destination_bytes",
    "packets",
    "event_start",
    "event_end",
    "duration_s",
    "application",
    "rule",
    "source_zone",
    "destination_zone",
    "session_end_reason",
    "log_type",
    "log_subtype",
    "device_serial",
    "session_id",
)
REQUIRED_TRAFFIC_FIELDS = ("source_ip", "destination_ip", "destination_port", "event_start", "event_end")
JOB_NAMES = (
    "delta_builder",
    "fg_a_builder",
    "pair_counts_builder",
    "fg_b_builder",
    "fg_c_builder",
    "machine_inventory_unload",
    "inference_predictions",
    "if_training",
    "project_parameters",
    "pipeline_backfill_historical_extractor",
    "pipeline_prediction_feature_join",
    "pipeline_training_data_verifier",
    "pipeline_missing_feature_creation",
    "pipeline_model_publish",
    "pipeline_model_attributes",
    "pipeline_model_deploy",
)


# Spark accepts fixed offsets ("+02:00", "UTC+2") besides IANA zone names.
_FIXED_OFFSET = re.compile(r"^(UTC|GMT)?[+-]\d{1,2}(:\d{2})?$")
# PAN-OS lines are < 4 KiB; a longer record is rejected as record_too_large before any parsing.
MAX_RECORD_BYTES = 1024 * 1024


def known_time_zone(value: str) -> str:
    """``value`` when it is an IANA zone name or a fixed offset Spark understands, else ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        if not _FIXED_OFFSET.match(value):
            raise ValueError(f"unknown time zone {value!r} (an IANA name or an offset like +02:00)") from None
    return value


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class S3Location(SpecModel):
    s3_prefix: str

    @field_validator("s3_prefix")
    @classmethod
    def _must_be_uri(cls, value: str) -> str:
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError(f"must be an s3:// URI, got {value!r}")
        if "<" in value or ">" in value:
            raise ValueError(f"contains an unresolved placeholder: {value!r}")
        return value if value.endswith("/") else value + "/"


class SegmentRule(SpecModel):
    """One segment: every IPv4 address inside ``cidr`` belongs to ``segment_id``."""

    segment_id: str
    cidr: str

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        import ipaddress

        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"not a CIDR block: {value!r}") from exc
        if net.version != 4:
            raise ValueError(f"only IPv4 CIDR blocks are supported for segments: {value!r}")
        return str(net)


class SegmentMapping(SpecModel):
    segments: list[SegmentRule] = Field(default_factory=list)
    default_segment: str = "unmapped"


# ---------------------------------------------------------------- delta_builder


class DeltaInput(S3Location):
    format: Literal["json", "jsonl", "parquet", "panos_csv"] = "jsonl"
    compression: Literal["gzip", "none"] | None = "gzip"
    schema_projection: list[str] | None = None
    field_mapping: dict[str, str] = Field(default_factory=dict)
    # The zone of timestamps written without an offset (PAN-OS writes device-local time).
    timezone: Annotated[str, AfterValidator(known_time_zone)] = "UTC"
    # Records (lines; Parquet rows as JSON) longer than this are rejected as record_too_large.
    max_record_bytes: int = Field(default=MAX_RECORD_BYTES, ge=1)

    @field_validator("field_mapping")
    @classmethod
    def _known_canonical_fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping) - set(CANONICAL_TRAFFIC_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; known: {list(CANONICAL_TRAFFIC_FIELDS)}"
            )
        return mapping


class DeltaDQ(SpecModel):
    drop_malformed_ip: bool = True
    duration_non_negative: bool = True
    bytes_non_negative: bool = True
    filter_null_bytes_ports: bool = True
    emit_metrics: bool = True
    # Share of input rows the DQ rules may reject before the asset check blocks downstream assets.
    max_rejection_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    quarantine_s3_prefix: str | None = None


class DeltaEnrichment(SpecModel):
    vdi_hostname_prefixes: list[str] = Field(default_factory=list)
    port_sets_location: str | None = None
    segment_mapping: SegmentMapping | None = None


class Role(SpecModel):
    """How one traffic direction maps onto host-centric columns (spec 001 ``roles``)."""

    name: Literal["outbound", "inbound"]
    host_ip: str
    peer_ip: str
    bytes_sent: str
    bytes_recv: str
    peer_port: str


DEFAULT_ROLES = [
    Role(
        name="outbound",
        host_ip="source_ip",
        peer_ip="destination_ip",
        bytes_sent="source_bytes",
        bytes_recv="destination_bytes",
        peer_port="destination_port",
    ),
    Role(
        name="inbound",
        host_ip="destination_ip",
        peer_ip="source_ip",
        bytes_sent="destination_bytes",
        bytes_recv="source_bytes",
        peer_port="destination_port",
    ),
]


class Operator(SpecModel):
    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetOutput(S3Location):
    format: Literal["parquet"] = "parquet"
    partition_keys: list[str] = Field(default_factory=lambda: ["dt", "window"])
    write_mode: Literal["overwrite_partitions"] = "overwrite_partitions"


class DeltaBuilderSpec(SpecModel):
    project_name: str
    job_name: str
    feature_spec_version: str
    input: DeltaInput
    dq: DeltaDQ = Field(default_factory=DeltaDQ)
    enrichment: DeltaEnrichment = Field(default_factory=DeltaEnrichment)
    roles: list[Role] = Field(default_factory=lambda: list(DEFAULT_ROLES))
    operators: list[Operator] = Field(default_factory=list)
    output: DatasetOutput

    @field_validator("roles")
    @classmethod
    def _one_role_per_direction(cls, roles: list[Role]) -> list[Role]:
        names = [r.name for r in roles]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"need at most one role per direction and at least one, got {names}")
        return roles


# ---------------------------------------------------------------- fg_a_builder


class Lookback30d(SpecModel):
    s3_prefix: str | None = None
    days: int = Field(default=30, ge=1, le=90)
    # A peer/port/pair seen on fewer than this many distinct days of the lookback is "rare".
    rare_thresholds: dict[str, int] = Field(default_factory=lambda: {"peer_days": 3, "port_days": 3})


class FgABuilderSpec(SpecModel):
    delta_input: S3Location
    fg_a_output: S3Location
    pair_context_input: S3Location | None = None
    pair_context_output: S3Location | None = None
    lookback30d: Lookback30d = Field(default_factory=Lookback30d)
    high_risk_segments: list[str] = Field(default_factory=list)
    segment_mapping: SegmentMapping | None = None
    # Time bands (window_label) and time flags are computed in this zone.
    time_zone: str = "UTC"
    working_hours: tuple[int, int] = (8, 18)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_time_zone(value)

    @field_validator("working_hours")
    @classmethod
    def _ordered_hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not 0 <= start < end <= 24:
            raise ValueError(f"need 0 <= start < end <= 24, got {[start, end]}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _accept_flat_prefixes(cls, data: Any) -> Any:
        # Spec 001: `delta_input.s3_prefix` OR `delta_s3_prefix`; `fg_a_output.s3_prefix` OR `output_s3_prefix`.
        if isinstance(data, dict):
            data = dict(data)
            if "delta_input" not in data and "delta_s3_prefix" in data:
                data["delta_input"] = {"s3_prefix": data["delta_s3_prefix"]}
            if "fg_a_output" not in data and "output_s3_prefix" in data:
                data["fg_a_output"] = {"s3_prefix": data["output_s3_prefix"]}
        return data


# ---------------------------------------------------------------- pair_counts_builder


class PairCountsTrafficInput(DeltaInput):
    layout: Literal["batch_folder"] = "batch_folder"

    @field_validator("field_mapping")
    @classmethod
    def _required_mapping(cls, mapping: dict[str, str]) -> dict[str, str]:
        missing = [k for k in ("source_ip", "destination_ip", "destination_port", "event_start", "event_end") if k not in mapping]
        if missing:
            raise ValueError(f"field_mapping lacks required key(s) {missing}")
        return mapping


class PairCountsFilters(SpecModel):
    require_nonnull_ips: bool = True
    require_destination_port: bool = True


class PairCountsDQ(SpecModel):
    # Share of input records quarantined (malformed IPs, missing timestamps) before the check blocks.
    max_rejection_rate: float = Field(default=0.05, ge=0.0, le=1.0)


class PairCountsBuilderSpec(SpecModel):
    traffic_input: PairCountsTrafficInput
    pair_counts_output: S3Location
    filters: PairCountsFilters = Field(default_factory=PairCountsFilters)
    dq: PairCountsDQ = Field(default_factory=PairCountsDQ)
    segment_mapping: SegmentMapping | None = None


# ---------------------------------------------------------------- fg_b_builder

_HORIZON_RE = re.compile(r"^[1-9][0-9]{0,2}d$")
BASELINE_HORIZON_CHOICES = ("7d", "30d", "both")


def _valid_horizons(values: list[str]) -> list[str]:
    if not values or len(set(values)) != len(values):
        raise ValueError(f"need one or more distinct horizons, got {values}")
    for value in values:
        if not _HORIZON_RE.match(value):
            raise ValueError(f"a horizon is '<days>d' such as '7d' or '30d', got {value!r}")
    return values


def _baseline_join_keys(values: list[str]) -> list[str]:
    if values != list(BASELINE_JOIN_KEYS):
        raise ValueError(f"baselines are keyed by {list(BASELINE_JOIN_KEYS)}, got {values}")
    return values


BASELINE_JOIN_KEYS = ("host_ip", "window_label")
# Shared by FG-B (which writes baselines) and FG-C (which joins them): one rule, one message.
Horizons = Annotated[list[str], AfterValidator(_valid_horizons)]
BaselineJoinKeys = Annotated[list[str], AfterValidator(_baseline_join_keys)]


class AnomalyCapping(SpecModel):
    """Winsorising before baselines: values above the per-(window_label, metric) quantile are capped.

    Keeps a few attack windows of last month from inflating this month's p95/p99 (the baseline
    must describe normal behaviour).
    """

    enabled: bool = True
    upper_quantile: float = Field(default=0.999, gt=0.5, le=1.0)


class InventoryLookup(SpecModel):
    """Where FG-B finds the IP -> machine-name mapping: a key of ``project_parameters``."""

    s3_prefix_key: str = "ip_machine_mapping_s3_prefix"


class PairRarityThresholds(SpecModel):
    # A pair seen on at most this many distinct days of the horizon is rare.
    rare_max_active_days: int = Field(default=2, ge=0)
    # A pair first seen within this many days before the horizon end is new.
    new_pair_days: int = Field(default=1, ge=1)


class FgBBuilderSpec(SpecModel):
    horizons: Horizons = Field(default_factory=lambda: ["7d", "30d"])
    # Override of a horizon's length in days (the demo shortens '30d' this way); default: the name.
    horizon_days: dict[str, int] = Field(default_factory=dict)
    fg_a_input: S3Location
    fg_b_output: S3Location
    pair_counts: S3Location | None = None
    segment_mapping: SegmentMapping | None = None
    anomaly_capping: AnomalyCapping = Field(default_factory=AnomalyCapping)
    # FG-A columns to baseline; default: the FG-C curated list (what FG-C consumes).
    baseline_metrics: list[str] | None = None
    # Columns whose support decides is_full_history; default: all baseline metrics.
    baseline_required_metrics: list[str] | None = None
    # Host-windows of support (per host and window_label) for a full history; int or per horizon.
    support_min: int | dict[str, int] = 20
    join_keys: BaselineJoinKeys = Field(default_factory=lambda: list(BASELINE_JOIN_KEYS))
    # Days before the horizon end left out of the baseline (per horizon; default 0).
    safety_gaps: dict[str, int] = Field(default_factory=dict)
    ip_machine_mapping: InventoryLookup = Field(default_factory=InventoryLookup)
    non_persistent_machine_prefixes: list[str] = Field(default_factory=lambda: ["VDI-"])
    pair_rarity: PairRarityThresholds = Field(default_factory=PairRarityThresholds)
    # Above this share of cold-start (host, time band) rows the cold_start_share check warns.
    max_cold_start_share: float = Field(default=0.5, ge=0.0, le=1.0)
    enrichment: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> FgBBuilderSpec:
        for name, mapping in (("horizon_days", self.horizon_days), ("safety_gaps", self.safety_gaps)):
            unknown = sorted(set(mapping) - set(self.horizons))
            if unknown:
                raise ValueError(f"{name} names horizon(s) {unknown} not in horizons {self.horizons}")
            if any(v < 0 for v in mapping.values()):
                raise ValueError(f"{name} values must be >= 0")
        if isinstance(self.support_min, dict):
            missing = sorted(set(self.horizons) - set(self.support_min))
            if missing:
                raise ValueError(f"support_min has no value for horizon(s) {missing}")
        for h in self.horizons:
            if self.days_of(h) <= self.safety_gaps.get(h, 0):
                raise ValueError(f"horizon {h}: safety gap of {self.safety_gaps[h]} day(s) leaves no baseline")
        if self.baseline_required_metrics is not None and self.baseline_metrics is not None:
            extra = sorted(set(self.baseline_required_metrics) - set(self.baseline_metrics))
            if extra:
                raise ValueError(f"baseline_required_metrics {extra[:5]} are not baseline_metrics")
        return self

    def days_of(self, horizon: str) -> int:
        """Length of a horizon in days: ``horizon_days`` override, else the number in its name."""
        return self.horizon_days.get(horizon, int(horizon[:-1]))

    def support_min_of(self, horizon: str) -> int:
        return self.support_min[horizon] if isinstance(self.support_min, dict) else self.support_min


# ---------------------------------------------------------------- fg_c_builder

FG_C_TRANSFORMS = ("z_mad", "ratio", "log_ratio", "diff", "abs_dev_over_mad", "z_mad_clipped", "z_mad_signed_pow3")
DEFAULT_FG_C_TRANSFORMS = ("z_mad", "ratio", "log_ratio")


class FgCBuilderSpec(SpecModel):
    fg_a_input: S3Location
    fg_b_input: S3Location
    fg_c_output: S3Location
    # FG-C's features compare with the first horizon; further horizons add suffixed columns.
    horizons: Horizons = Field(default_factory=lambda: ["30d"])
    join_keys: BaselineJoinKeys = Field(default_factory=lambda: list(BASELINE_JOIN_KEYS))
    # Merged ON TOP of the curated default list (augment, never replace).
    metrics: list[str] = Field(default_factory=list)
    transforms: list[str] = Field(default_factory=lambda: list(DEFAULT_FG_C_TRANSFORMS))
    suspicion_metrics: list[str] | None = None
    rare_pair_metrics: list[str] | None = None
    pair_counts: S3Location | None = None
    pair_context_input: S3Location | None = None
    segment_mapping: SegmentMapping | None = None
    eps: float = Field(default=1e-6, gt=0)
    z_max: float = Field(default=6.0, gt=0)

    @field_validator("transforms")
    @classmethod
    def _transforms(cls, values: list[str]) -> list[str]:
        unknown = sorted(set(values) - set(FG_C_TRANSFORMS))
        if unknown or not values:
            raise ValueError(f"unknown transform(s) {unknown}; known: {list(FG_C_TRANSFORMS)}")
        return list(dict.fromkeys(values))


# ---------------------------------------------------------------- machine_inventory_unload

_SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")


def _identifier(value: str) -> str:
    if not _SQL_IDENTIFIER.match(value):
        raise ValueError(f"not a plain SQL identifier (letters, digits, underscore): {value!r}")
    return value


class RedshiftConnection(SpecModel):
    cluster_identifier: str
    database: str
    secret_arn: str
    region: str
    iam_role: str
    db_user: str | None = None


class InventoryQuery(SpecModel):
    """Either a full ``sql`` SELECT, or ``schema``/``table`` with column names and filters.

    Identifiers must be plain identifiers; filters are parsed and re-rendered by the warehouse
    module (never concatenated as given), see ``ndr_resources.warehouse``.
    """

    sql: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    table: str | None = None
    ip_column: str = "ip_address"
    name_column: str = "machine_name"
    active_filter: str | None = None
    additional_filters: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    @field_validator("schema_name", "table", "ip_column", "name_column")
    @classmethod
    def _identifiers(cls, value: str | None) -> str | None:
        return None if value is None else _identifier(value)

    @model_validator(mode="after")
    def _sql_or_table(self) -> InventoryQuery:
        if self.sql is None and (self.schema_name is None or self.table is None):
            raise ValueError("give either 'sql' or both 'schema' and 'table'")
        return self


class InventoryOutput(S3Location):
    output_format: Literal["PARQUET"] = "PARQUET"
    partitioning: list[str] = Field(default_factory=lambda: ["snapshot_month"])
    ip_output_column: str = "ip"
    name_output_column: str = "machine_name"

    @field_validator("partitioning")
    @classmethod
    def _snapshot_month(cls, values: list[str]) -> list[str]:
        if values != ["snapshot_month"]:
            raise ValueError(f"partitioning must be ['snapshot_month'], got {values}")
        return values

    @field_validator("ip_output_column", "name_output_column")
    @classmethod
    def _identifiers(cls, value: str) -> str:
        return _identifier(value)


class MachineInventoryUnloadSpec(SpecModel):
    redshift: RedshiftConnection
    query: InventoryQuery
    output: InventoryOutput


# ---------------------------------------------------------------- project_parameters


class ProjectDefaults(SpecModel):
    ProjectName: str | None = None
    FeatureSpecVersion: str | None = None
    WindowCronExpression: str = "8-59/15 * * * ? *"
    WindowFloorMinutes: list[int] = Field(default_factory=lambda: [8, 23, 38, 53])
    Org1: str | None = None
    Org2: str | None = None
    VendorPrefix: str | None = "paloalto"
    IngestionBasePrefix: str | None = None
    MiniBatchS3Prefix: str | None = None
    HistoricalInputS3Prefix: str | None = None
    HistoricalWindowsOutputS3Prefix: str | None = None
    # First window the project's 15-minute partitions start at (ISO date or datetime, UTC).
    StartDate: str = "2026-01-01"

    @field_validator("WindowFloorMinutes")
    @classmethod
    def _quarter_hour_grid(cls, minutes: list[int]) -> list[int]:
        if sorted(minutes) != [8, 23, 38, 53]:
            raise ValueError(f"windows must end at minutes [8, 23, 38, 53], got {minutes}")
        return minutes


class ProjectParameters(SpecModel):
    defaults: ProjectDefaults = Field(default_factory=ProjectDefaults)
    validation: dict[str, Any] = Field(default_factory=dict)
    ip_machine_mapping_s3_prefix: str | None = None


class RoutingRecord(SpecModel):
    org_key: str
    project_name: str
    ingestion_prefix: str
    feature_spec_version: str = "v1"
    enabled: bool = True

    @field_validator("org_key")
    @classmethod
    def _org_pair(cls, value: str) -> str:
        parts = value.split("#")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"org_key must be '<org1>#<org2>', got {value!r}")
        return value


SpecT = TypeVar("SpecT", bound=BaseModel)


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "spec"


def parse_spec(model: type[SpecT], payload: Any, *, project: str, item: str) -> SpecT:
    """Parse one ``spec`` payload into ``model``; failures name project, item and key path."""
    if not isinstance(payload, dict):
        raise SpecError(project, item, "spec", f"expected a map, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        problem = first["msg"]
        if first["type"] == "missing":
            problem = "required key is missing"
        more = len(exc.errors()) - 1
        if more:
            problem += f" (and {more} more problem(s): " + ", ".join(
                _key_path(e["loc"]) for e in exc.errors()[1:4]
            ) + ")"
        raise SpecError(project, item, key, problem) from None

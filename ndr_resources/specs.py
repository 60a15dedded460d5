"""Typed models of the parameter-table payloads (spec 001), parsed once at the edge.

Every ``spec`` payload read from the parameter store goes through :func:`parse_spec`, which turns a
pydantic validation failure into a :class:`SpecError` naming the project, the item and the key path.
Extra keys are allowed (spec 001: "Additional keys are allowed") and kept on the model.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ndr_resources.errors import SpecError

# Canonical traffic columns a reader produces; ``field_mapping`` maps these to source columns.
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
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            if not _FIXED_OFFSET.match(value):
                raise ValueError(f"unknown time zone {value!r} (an IANA name or an offset like +02:00)") from None
        return value

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


class PairCountsBuilderSpec(SpecModel):
    traffic_input: PairCountsTrafficInput
    pair_counts_output: S3Location
    filters: PairCountsFilters = Field(default_factory=PairCountsFilters)
    segment_mapping: SegmentMapping | None = None


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

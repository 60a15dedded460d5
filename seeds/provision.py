"""Provisioning: render the seed templates for one project, validate them, write them to the store.

The templates in ``seeds/templates/`` are parameter-table items with placeholders (spec 002 §4):
``<bucket>``, ``<project_name>``, ``<feature_spec_version>``, ``<org1>``, ``<org2>`` and
``<start_date>`` are replaced here; ``<required:Name>`` placeholders stay, because they name runtime
parameters supplied when a run starts. Validation checks every item against one table of required
key paths per job (spec 001 "Job-Specific Spec Payloads", spec 002 §2 for ``pipeline_*``), reports
unresolved placeholders and parses the typed jobs with their pydantic models. Provisioning writes
nothing unless every item is valid, and re-running it replaces the same items (idempotent).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ndr_resources.errors import NdrError, SpecError
from ndr_resources.lake import Lake
from ndr_resources.model_specs import IfTrainingSpec, InferencePredictionsSpec, PredictionFeatureJoinSpec
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.specs import (
    JOB_NAMES,
    DeltaBuilderSpec,
    FgABuilderSpec,
    FgBBuilderSpec,
    FgCBuilderSpec,
    MachineInventoryUnloadSpec,
    PairCountsBuilderSpec,
    ProjectParameters,
    RoutingRecord,
    parse_spec,
)

SEEDS_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = SEEDS_DIR / "templates"
PORT_SETS_FILE = SEEDS_DIR / "reference" / "port_sets.json"
ROUTING_TEMPLATE = "routing.json"

# Every job the seeds must cover: spec 001's list plus the job spec of the prediction_feature_join asset.
SEEDED_JOBS = (*JOB_NAMES, "prediction_feature_join")

# Required key paths of each job's payload, relative to ``spec``. "a | b": either is enough;
# "a & b": both are needed. Derived from spec 001; pipeline_* jobs follow spec 002 §2.
_PIPELINE_KEYS = ("required_runtime_params", "runtime_params", "scripts.steps")
REQUIRED_KEY_PATHS: dict[str, tuple[str, ...]] = {
    "delta_builder": (
        "project_name",
        "job_name",
        "feature_spec_version",
        "input.s3_prefix",
        "input.format",
        "dq",
        "enrichment.port_sets_location",
        "roles",
        "operators",
        "output.s3_prefix",
        "output.format",
        "output.partition_keys",
    ),
    "fg_a_builder": ("delta_input.s3_prefix | delta_s3_prefix", "fg_a_output.s3_prefix | output_s3_prefix"),
    "pair_counts_builder": (
        "traffic_input.s3_prefix",
        "traffic_input.field_mapping.source_ip",
        "traffic_input.field_mapping.destination_ip",
        "traffic_input.field_mapping.destination_port",
        "traffic_input.field_mapping.event_start",
        "traffic_input.field_mapping.event_end",
        "pair_counts_output.s3_prefix",
    ),
    "fg_b_builder": ("horizons", "fg_a_input.s3_prefix", "fg_b_output.s3_prefix"),
    "fg_c_builder": ("fg_a_input.s3_prefix", "fg_b_input.s3_prefix", "fg_c_output.s3_prefix"),
    "machine_inventory_unload": (
        "redshift.cluster_identifier",
        "redshift.database",
        "redshift.secret_arn",
        "redshift.region",
        "redshift.iam_role",
        "query.sql | query.schema & query.table",
        "output.s3_prefix",
        "output.partitioning",
    ),
    "inference_predictions": (
        "feature_inputs.fg_a.s3_prefix",
        "feature_inputs.fg_c.s3_prefix",
        "join_keys",
        "model.endpoint_name",
        "output.s3_prefix",
    ),
    "prediction_feature_join": (
        "predictions_input.s3_prefix",
        "feature_inputs.fg_a.s3_prefix",
        "feature_inputs.fg_c.s3_prefix",
        "join_keys",
        "destination.type",
        "destination.s3.s3_prefix | destination.redshift.table",
    ),
    "if_training": (
        "feature_inputs.fg_a.s3_prefix",
        "feature_inputs.fg_c.s3_prefix",
        "output.artifacts_s3_prefix",
        "output.report_s3_prefix",
        "model.version",
        "window.lookback_months",
        "window.gap_months",
    ),
    "project_parameters": (
        "ip_machine_mapping_s3_prefix",
        "defaults.ProjectName",
        "defaults.FeatureSpecVersion",
        "defaults.WindowCronExpression",
        "defaults.WindowFloorMinutes",
        "defaults.StartDate",
        "validation",
    ),
    **{job: _PIPELINE_KEYS for job in JOB_NAMES if job.startswith("pipeline_")},
}
ROUTING_REQUIRED_KEYS = ("org_key", "project_name", "ingestion_prefix", "feature_spec_version")
STEP_REQUIRED_KEYS = ("code_prefix_s3", "entry_script", "data_prefixes")
TYPED_MODELS: dict[str, type[BaseModel]] = {
    "delta_builder": DeltaBuilderSpec,
    "fg_a_builder": FgABuilderSpec,
    "pair_counts_builder": PairCountsBuilderSpec,
    "fg_b_builder": FgBBuilderSpec,
    "fg_c_builder": FgCBuilderSpec,
    "machine_inventory_unload": MachineInventoryUnloadSpec,
    "project_parameters": ProjectParameters,
    "if_training": IfTrainingSpec,
    "inference_predictions": InferencePredictionsSpec,
    "prediction_feature_join": PredictionFeatureJoinSpec,
}

PLACEHOLDER_RE = re.compile(r"<[^<>\s]+>")
RUNTIME_PLACEHOLDER_RE = re.compile(r"^<required:([A-Za-z][A-Za-z0-9]*)>$")
# What the provisioning arguments may look like: they end up in keys, URIs and endpoint names.
ARGUMENT_PATTERNS = {
    "project_name": re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$"),
    "bucket": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "feature_spec_version": re.compile(r"^v[0-9]+$"),
    "org1": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"),
    "org2": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"),
}


# ---------------------------------------------------------------- reports and errors


@dataclass
class ItemReport:
    """What is wrong with one rendered item (``item`` is its sort key, or the routing ``org_key``)."""

    item: str
    kind: str  # "job" or "routing"
    missing_keys: list[str] = field(default_factory=list)
    unresolved_placeholders: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_keys or self.unresolved_placeholders or self.problems)

    def lines(self) -> list[str]:
        out = [f"missing key {k}" for k in self.missing_keys]
        out += [f"unresolved placeholder {p}" for p in self.unresolved_placeholders]
        return out + self.problems


@dataclass
class ValidationReport:
    """Per-item findings plus problems of the item set as a whole (missing jobs, duplicates)."""

    items: list[ItemReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(i.ok for i in self.items)

    def format(self) -> str:
        """A plain-text report: one line per problem, prefixed with the item it belongs to."""
        lines = [f"* {p}" for p in self.problems]
        for item in self.items:
            lines += [f"{item.item}: {line}" for line in item.lines()]
        covered = ", ".join(i.item for i in self.items)
        status = "OK" if self.ok else f"{len(lines)} problem(s)"
        return "\n".join([f"validated {len(self.items)} item(s) [{covered}]: {status}", *lines])


class ProvisioningError(NdrError):
    """The seed items are not valid; nothing was written. ``report`` has every finding."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__("seed items are invalid, nothing was written:\n" + report.format())


@dataclass(frozen=True)
class ProvisioningReport:
    project_name: str
    feature_spec_version: str
    items: list[str]  # sort keys written to the parameters table
    routing_key: str
    port_sets_uri: str
    validation: ValidationReport


# ---------------------------------------------------------------- rendering


def month_start(today: date | None = None) -> str:
    """The first day of the current (UTC) month: the default project start date."""
    today = today or datetime.now(UTC).date()
    return today.replace(day=1).isoformat()


def _substitute(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, replacement in replacements.items():
            value = value.replace(placeholder, replacement)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, replacements) for v in value]
    return value


def _check_arguments(arguments: dict[str, str]) -> None:
    problems = [
        f"argument {name}={value!r} does not match {ARGUMENT_PATTERNS[name].pattern}"
        for name, value in arguments.items()
        if name in ARGUMENT_PATTERNS and not ARGUMENT_PATTERNS[name].match(value)
    ]
    try:
        date.fromisoformat(arguments["start_date"])
    except ValueError:
        problems.append(f"argument start_date={arguments['start_date']!r} is not an ISO date (YYYY-MM-DD)")
    if problems:
        raise ProvisioningError(ValidationReport(problems=problems))


def load_templates(templates_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The raw templates: every ``*.json`` of the folder, parameter items first, the routing record last."""
    folder = Path(templates_dir) if templates_dir is not None else TEMPLATES_DIR
    files = sorted(folder.glob("*.json"), key=lambda p: (p.name == ROUTING_TEMPLATE, p.name))
    templates, problems = [], []
    for path in files:
        try:
            template = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"template {path.name} is not valid JSON: {exc}")
            continue
        if not isinstance(template, dict):
            problems.append(f"template {path.name} must be a JSON object")
            continue
        templates.append(template)
    if not files:
        problems.append(f"no *.json templates in {folder}")
    if problems:
        raise ProvisioningError(ValidationReport(problems=problems))
    return templates


def render_templates(
    project_name: str,
    bucket: str,
    feature_spec_version: str,
    org1: str,
    org2: str,
    start_date: str | date | None = None,
    *,
    templates_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Every template with its placeholders replaced: parameter items, then the routing record.

    ``start_date`` (ISO date) defaults to the first day of the current month. ``<required:...>``
    placeholders are left in place for the runtime.
    """
    start = start_date.isoformat() if isinstance(start_date, date) else (start_date or month_start())
    arguments = {
        "project_name": project_name,
        "bucket": bucket,
        "feature_spec_version": feature_spec_version,
        "org1": org1,
        "org2": org2,
        "start_date": start,
    }
    _check_arguments(arguments)
    replacements = {f"<{name}>": value for name, value in arguments.items()}
    return [_substitute(template, replacements) for template in load_templates(templates_dir)]


# ---------------------------------------------------------------- validation


def _lookup(payload: Any, path: str) -> Any:
    current = payload
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _present(payload: Any, path: str) -> bool:
    return _lookup(payload, path) not in (None, "")


def _requirement_met(payload: Any, requirement: str) -> bool:
    """``a.b | c & d``: any alternative whose every path is present."""
    return any(
        all(_present(payload, path.strip()) for path in alternative.split("&"))
        for alternative in requirement.split("|")
    )


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every (key path, string) pair inside a JSON-like value."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _strings(v, f"{path}[{i}]")]
    return []


def _placeholders(item: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(unresolved placeholders as ``path: <x>``, names of ``<required:Name>`` runtime parameters)."""
    unresolved, runtime = [], set()
    for path, text in _strings(item, ""):
        for placeholder in PLACEHOLDER_RE.findall(text):
            match = RUNTIME_PLACEHOLDER_RE.match(placeholder)
            if match:
                runtime.add(match.group(1))
            else:
                unresolved.append(f"{path}: {placeholder}")
    return unresolved, runtime


def _is_prefix(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("s3://") and value.endswith("/") and len(value) > 6


def _check_pipeline(report: ItemReport, payload: dict[str, Any], runtime_names: set[str]) -> None:
    """Spec 002 §2: runtime parameter list, and code/entry/data prefixes for every step."""
    required = payload.get("required_runtime_params")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(p, str) and p for p in required)
    ):
        report.problems.append("spec.required_runtime_params must be a list of parameter names")
        required = None
    if isinstance(required, list):
        params = payload.get("runtime_params") or {}
        report.missing_keys += [f"spec.runtime_params.{p}" for p in required if p not in params]
        extra = sorted(set(params) - set(required))
        if extra:
            report.problems.append(f"spec.runtime_params has parameters not in required_runtime_params: {extra}")
        unknown = sorted(runtime_names - set(required))
        if unknown:
            report.problems.append(f"<required:...> placeholders name undeclared runtime parameters: {unknown}")
    steps = _lookup(payload, "scripts.steps")
    if steps is None:
        return
    if not isinstance(steps, dict) or not steps:
        report.problems.append("spec.scripts.steps must be a non-empty map of step name -> script contract")
        return
    for step, contract in steps.items():
        report.steps.append(step)
        base = f"spec.scripts.steps.{step}"
        report.missing_keys += [f"{base}.{key}" for key in STEP_REQUIRED_KEYS if not _present(contract, key)]
        if not isinstance(contract, dict):
            continue
        if _present(contract, "code_prefix_s3") and not _is_prefix(contract["code_prefix_s3"]):
            report.problems.append(f"{base}.code_prefix_s3 must be an s3:// prefix ending in '/'")
        entry = contract.get("entry_script")
        if _present(contract, "entry_script") and not (
            isinstance(entry, str) and entry.endswith(".py") and "/" not in entry
        ):
            report.problems.append(f"{base}.entry_script must be a .py file name, got {entry!r}")
        prefixes = contract.get("data_prefixes")
        if _present(contract, "data_prefixes"):
            if not isinstance(prefixes, dict) or not prefixes:
                report.problems.append(f"{base}.data_prefixes must be a non-empty map of name -> s3:// prefix")
            else:
                bad = sorted(name for name, uri in prefixes.items() if not _is_prefix(uri))
                if bad:
                    report.problems.append(f"{base}.data_prefixes entries are not s3:// prefixes: {bad}")


def _check_project_parameters(report: ItemReport, payload: dict[str, Any], runtime_names: set[str]) -> None:
    """Validation regexes compile, match the defaults they cover, and cover every runtime placeholder."""
    rules = payload.get("validation")
    if not isinstance(rules, dict):
        return
    for name, rule in rules.items():
        pattern = rule.get("regex") if isinstance(rule, dict) else None
        if pattern is None:
            continue
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            report.problems.append(f"spec.validation.{name}.regex does not compile: {exc}")
            continue
        value = _lookup(payload, f"defaults.{name}")
        if isinstance(value, str) and not regex.match(value):
            report.problems.append(f"spec.defaults.{name}={value!r} does not match spec.validation.{name}.regex")
    unknown = sorted(runtime_names - set(rules))
    if unknown:
        report.problems.append(f"<required:...> placeholders without a spec.validation rule: {unknown}")


def _validate_job_item(item: dict[str, Any]) -> ItemReport:
    key = str(item.get("job_name", "<no job_name>"))
    report = ItemReport(item=key, kind="job")
    report.missing_keys += [k for k in ("project_name", "job_name") if not _present(item, k)]
    job = key.split("#", 1)[0]
    if "#" not in key:
        report.problems.append("job_name must be '<job>#<feature_spec_version>'")
    elif item.get("feature_spec_version") not in (None, key.split("#", 1)[1]):
        report.problems.append("item-level feature_spec_version differs from the job_name version")
    payload_key = "parameters" if job == "project_parameters" and "spec" not in item else "spec"
    payload = item.get(payload_key)
    unresolved, runtime_names = _placeholders(item)
    report.unresolved_placeholders += unresolved
    if not isinstance(payload, dict):
        report.missing_keys.append("spec")
        return report
    if job not in REQUIRED_KEY_PATHS:
        report.problems.append(f"unknown job {job!r}; known: {sorted(REQUIRED_KEY_PATHS)}")
        return report
    report.missing_keys += [
        f"{payload_key}.{requirement}"
        for requirement in REQUIRED_KEY_PATHS[job]
        if not _requirement_met(payload, requirement)
    ]
    if job.startswith("pipeline_"):
        _check_pipeline(report, payload, runtime_names)
    elif job == "project_parameters":
        _check_project_parameters(report, payload, runtime_names)
    elif runtime_names:
        report.problems.append(
            f"runtime placeholders are only allowed in pipeline/project items: {sorted(runtime_names)}"
        )
    model = TYPED_MODELS.get(job)
    if model is not None and report.ok:  # parse only a complete item, so one cause is reported once
        try:
            parse_spec(model, payload, project=str(item.get("project_name")), item=key)
        except SpecError as exc:
            report.problems.append(str(exc))
    return report


def _validate_routing(item: dict[str, Any]) -> ItemReport:
    report = ItemReport(item=str(item.get("org_key", "<no org_key>")), kind="routing")
    report.missing_keys += [k for k in ROUTING_REQUIRED_KEYS if not _present(item, k)]
    unresolved, runtime_names = _placeholders(item)
    report.unresolved_placeholders += unresolved
    if runtime_names:
        report.problems.append(f"routing records cannot hold runtime placeholders: {sorted(runtime_names)}")
    if report.ok:
        try:
            parse_spec(RoutingRecord, item, project=str(item.get("project_name")), item=report.item)
        except SpecError as exc:
            report.problems.append(str(exc))
    return report


def validate_items(items: list[dict[str, Any]], *, expected_jobs: tuple[str, ...] = SEEDED_JOBS) -> ValidationReport:
    """Check rendered items: required keys, placeholders, typed parses, coverage and consistency.

    Items carrying ``org_key`` are routing records; all others are parameter-table items.
    """
    report = ValidationReport()
    jobs = [i for i in items if "org_key" not in i]
    routes = [i for i in items if "org_key" in i]
    report.items = [_validate_job_item(i) for i in jobs] + [_validate_routing(i) for i in routes]

    keys = [str(i.get("job_name")) for i in jobs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        report.problems.append(f"duplicate items: {duplicates}")
    present = {k.split("#", 1)[0] for k in keys}
    missing_jobs = [job for job in expected_jobs if job not in present]
    if missing_jobs:
        report.problems.append(f"no item for job(s): {missing_jobs}")
    if len(routes) != 1:
        report.problems.append(f"expected exactly one routing record, got {len(routes)}")
    projects = {str(i.get("project_name")) for i in items}
    versions = {k.split("#", 1)[1] for k in keys if "#" in k}
    versions |= {str(r["feature_spec_version"]) for r in routes if r.get("feature_spec_version")}
    if len(projects) > 1:
        report.problems.append(f"items belong to more than one project: {sorted(projects)}")
    if len(versions) > 1:
        report.problems.append(f"items carry more than one feature_spec_version: {sorted(versions)}")
    report.problems += raw_input_disagreements(jobs)
    return report


# Settings that say how the raw mini-batches are read; delta and pair counts read the same objects.
RAW_INPUT_SETTINGS = ("s3_prefix", "format", "compression", "timezone")
_RAW_INPUTS = {"delta_builder": "input", "pair_counts_builder": "traffic_input"}


def raw_input_disagreements(items: list[dict[str, Any]]) -> list[str]:
    """Where ``delta_builder.input`` and ``pair_counts_builder.traffic_input`` read the raw files differently.

    Both assets read the same mini-batches: with different formats one of them quarantines or skips
    every file, so the settings must agree (``field_mapping`` on the fields both map).
    """
    inputs = {}
    for item in items:
        job, _, version = str(item.get("job_name")).partition("#")
        spec = item.get("spec")
        if job in _RAW_INPUTS and isinstance(spec, dict) and isinstance(spec.get(_RAW_INPUTS[job]), dict):
            inputs[job] = (f"{job}#{version}", _RAW_INPUTS[job], spec[_RAW_INPUTS[job]])
    if len(inputs) < 2:
        return []
    (delta_item, delta_key, delta), (pairs_item, pairs_key, pairs) = inputs["delta_builder"], inputs["pair_counts_builder"]
    defaults = {"format": "jsonl", "compression": "gzip", "timezone": "UTC"}
    problems = []
    for setting in RAW_INPUT_SETTINGS:
        left, right = delta.get(setting, defaults.get(setting)), pairs.get(setting, defaults.get(setting))
        if left != right:
            problems.append(
                f"{delta_item} {delta_key}.{setting}={left!r} but {pairs_item} {pairs_key}.{setting}={right!r}: "
                "both read the same raw mini-batches, so they must agree"
            )
    delta_map, pairs_map = delta.get("field_mapping") or {}, pairs.get("field_mapping") or {}
    for field_name in sorted(set(delta_map) & set(pairs_map)):
        if delta_map[field_name] != pairs_map[field_name]:
            problems.append(
                f"{delta_item} {delta_key}.field_mapping.{field_name}={delta_map[field_name]!r} but {pairs_item} "
                f"{pairs_key}.field_mapping.{field_name}={pairs_map[field_name]!r}: both read the same raw columns"
            )
    return problems


# ---------------------------------------------------------------- provisioning


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


def apply_spec_overrides(items: list[dict[str, Any]], overrides: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Deep-merge ``overrides[job]`` into the ``spec`` of the item of that job (maps merge, other values replace)."""
    jobs = {str(i.get("job_name", "")).split("#", 1)[0] for i in items}
    unknown = sorted(set(overrides) - jobs)
    if unknown:
        raise ProvisioningError(ValidationReport(problems=[f"spec_overrides name unknown job(s) {unknown}"]))
    return [
        {**i, "spec": _merged(i["spec"], overrides[job])} if (job := str(i.get("job_name", "")).split("#", 1)[0]) in overrides
        else i
        for i in items
    ]


def provision(
    store: ParameterStore,
    lake: Lake,
    *,
    project_name: str,
    bucket: str,
    feature_spec_version: str,
    org1: str,
    org2: str,
    start_date: str | date | None = None,
    templates_dir: str | Path | None = None,
    spec_overrides: dict[str, dict[str, Any]] | None = None,
) -> ProvisioningReport:
    """Render, validate and write one project's items, routing record and port-set reference file.

    Raises :class:`ProvisioningError` (writing nothing) when any item is invalid. Writes in an order
    that never exposes a half-provisioned project: reference file, parameter items, and the routing
    record last (routing is what makes the project visible). Re-running replaces the same items.
    ``spec_overrides`` (job name -> keys) are merged into that job's ``spec`` before validation, so
    a deployment (or the demo) sets its values through the same checks as the templates.
    """
    rendered = render_templates(
        project_name, bucket, feature_spec_version, org1, org2, start_date, templates_dir=templates_dir
    )
    rendered = apply_spec_overrides(rendered, spec_overrides or {})
    report = validate_items(rendered)
    if not report.ok:
        raise ProvisioningError(report)
    jobs = [i for i in rendered if "org_key" not in i]
    (routing,) = [i for i in rendered if "org_key" in i]
    delta_key = versioned_job_key("delta_builder", feature_spec_version)
    (delta,) = [i for i in jobs if i["job_name"] == delta_key]
    port_sets_uri = delta["spec"]["enrichment"]["port_sets_location"]

    lake.write_bytes(port_sets_uri, PORT_SETS_FILE.read_bytes())
    store.create_tables()
    updated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for item in jobs:
        store.put_item({**item, "updated_at": updated_at})
    store.put_routing({**routing, "updated_at": updated_at})
    return ProvisioningReport(
        project_name=project_name,
        feature_spec_version=feature_spec_version,
        items=[i["job_name"] for i in jobs],
        routing_key=routing["org_key"],
        port_sets_uri=port_sets_uri,
        validation=report,
    )

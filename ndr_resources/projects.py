"""Which tenant projects exist, read from the routing table and each project's parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ndr_resources.errors import SpecError
from ndr_resources.model_specs import IfTrainingSpec, TrainingWindow
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key


@dataclass(frozen=True)
class ProjectConfig:
    """What the definitions need to build one project's asset group."""

    project_name: str
    feature_spec_version: str
    start: datetime
    org1: str
    org2: str
    ingestion_prefix: str
    # Which windows each month's model learns from: the partition mapping is fixed when the graph is built.
    training_window: TrainingWindow = field(default_factory=TrainingWindow)
    # Whether project_parameters has a feature_store map: without one the graph has no Feature Store
    # assets at all (publication is off), rather than assets that run only to say so.
    publishes_to_feature_store: bool = False


def _parse_start(value: str, project: str, item: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SpecError(project, item, "defaults.StartDate", f"not an ISO date: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _training_window(store: ParameterStore, project: str, version: str) -> TrainingWindow:
    """The project's ``if_training.window``; the defaults when the item does not exist (the model asset
    then fails naming the missing item when it is materialized, the rest of the graph still loads)."""
    if store.get_item(project, versioned_job_key("if_training", version)) is None:
        return TrainingWindow()
    return store.load_typed_spec(IfTrainingSpec, project, "if_training", version).window


def feature_store_map(store: ParameterStore, project: str, version: str) -> object | None:
    """The raw ``feature_store`` map of the project's ``project_parameters`` item (None when it has none),
    found as ``load_project_parameters`` finds the item (a legacy unversioned item included)."""
    return store.load_job_item(project, "project_parameters", version).get("feature_store")


def load_project_configs(store: ParameterStore) -> list[ProjectConfig]:
    """One config per enabled routing record, sorted by project name."""
    configs = []
    for route in store.enabled_routes():
        params = store.load_project_parameters(route.project_name, route.feature_spec_version)
        org1, org2 = route.org_key.split("#")
        configs.append(
            ProjectConfig(
                project_name=route.project_name,
                feature_spec_version=route.feature_spec_version,
                start=_parse_start(
                    params.defaults.StartDate, route.project_name, versioned_job_key("project_parameters", route.feature_spec_version)
                ),
                org1=org1,
                org2=org2,
                ingestion_prefix=route.ingestion_prefix,
                training_window=_training_window(store, route.project_name, route.feature_spec_version),
                publishes_to_feature_store=feature_store_map(store, route.project_name, route.feature_spec_version) is not None,
            )
        )
    names = [c.project_name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpecError(duplicates[0], "-", "org_key", "project is routed from more than one org_key")
    return sorted(configs, key=lambda c: c.project_name)

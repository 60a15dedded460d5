"""The parameter-store interface: the item model of spec 001, independent of the backend.

Items of the parameters table are plain dicts with ``project_name`` (partition key), ``job_name``
(sort key, valued ``<job>#<feature_spec_version>``; legacy items may be unversioned) and a payload
under ``spec`` (or ``parameters`` for ``project_parameters``). Routing items carry ``org_key``
(``<org1>#<org2>``) as their only key.

Backends implement the five primitive operations; everything else (versioned lookup, legacy
fallback, typed parsing) lives here, once.
"""

from __future__ import annotations

import copy
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import dagster as dg
from pydantic import BaseModel

from ndr_resources.errors import SpecError
from ndr_resources.specs import ProjectParameters, RoutingRecord, parse_spec

PARAMETERS_TABLE_ENV = "ML_PROJECTS_PARAMETERS_TABLE_NAME"
LEGACY_PARAMETERS_TABLE_ENV = "JOB_SPEC_DDB_TABLE_NAME"
DEFAULT_PARAMETERS_TABLE = "ml_projects_parameters"
DEFAULT_ROUTING_TABLE = "ml_projects_routing"

SpecT = TypeVar("SpecT", bound=BaseModel)
# What a conditional update compares: a token every conditional write renews, and the edit time every
# writer (provisioning included) sets.
REVISION_ATTRIBUTES = ("revision", "updated_at")


def resolve_parameters_table_name(environ: Mapping[str, str] | None = None) -> str:
    """The parameters table name: ``ML_PROJECTS_PARAMETERS_TABLE_NAME``, else the legacy
    ``JOB_SPEC_DDB_TABLE_NAME``, else ``ml_projects_parameters`` (spec 001). Empty values count as unset."""
    env = os.environ if environ is None else environ
    return env.get(PARAMETERS_TABLE_ENV) or env.get(LEGACY_PARAMETERS_TABLE_ENV) or DEFAULT_PARAMETERS_TABLE


def require_key_attributes(item: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Refuse to write an item whose key attributes are missing or not non-empty strings."""
    for key in keys:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise SpecError(
                str(item.get("project_name", "-")),
                str(item.get("job_name", item.get("org_key", "-"))),
                key,
                f"key attribute must be a non-empty string, got {value!r}",
            )


def versioned_job_key(job_name: str, feature_spec_version: str) -> str:
    if "#" in job_name:
        raise ValueError(f"job name must not contain '#': {job_name!r}")
    return f"{job_name}#{feature_spec_version}"


class ParameterStore(dg.ConfigurableResource, ABC):
    """Reads and writes the parameters and routing tables."""

    # ---- primitives each backend implements

    @abstractmethod
    def create_tables(self) -> None:
        """Create the parameters and routing tables if they do not exist (idempotent)."""

    @abstractmethod
    def get_item(self, project_name: str, job_name: str) -> dict[str, Any] | None:
        """The item with exactly this key, or None."""

    @abstractmethod
    def put_item(self, item: dict[str, Any]) -> None:
        """Atomically create or replace one item (single-item write)."""

    @abstractmethod
    def put_item_if(self, item: dict[str, Any], expected: Mapping[str, str | None]) -> None:
        """Atomically replace one item only if the stored item's attributes equal ``expected``
        (``None``: the attribute is absent, or there is no item); else :class:`ConcurrentUpdateError`."""

    @abstractmethod
    def query_prefix(self, project_name: str, job_name_prefix: str) -> list[dict[str, Any]]:
        """All items of a project whose sort key begins with the prefix, in sort-key order."""

    @abstractmethod
    def get_routing(self, org_key: str) -> dict[str, Any] | None:
        """The routing item for ``<org1>#<org2>``, or None."""

    @abstractmethod
    def put_routing(self, item: dict[str, Any]) -> None:
        """Atomically create or replace one routing item."""

    @abstractmethod
    def scan_routing(self) -> list[dict[str, Any]]:
        """Every routing item, ordered by ``org_key``."""

    # ---- the access patterns of spec 001, built on the primitives

    def load_job_item(self, project_name: str, job_name: str, feature_spec_version: str) -> dict[str, Any]:
        """The versioned item ``job#version``; a legacy unversioned item is used only when its own
        ``feature_spec_version`` (item-level or inside ``spec``) matches or is absent."""
        key = versioned_job_key(job_name, feature_spec_version)
        item = self.get_item(project_name, key)
        if item is not None:
            return item
        legacy = self.get_item(project_name, job_name)
        if legacy is not None:
            payload = legacy.get("spec") or legacy.get("parameters") or {}
            legacy_version = legacy.get("feature_spec_version") or (
                payload.get("feature_spec_version") if isinstance(payload, dict) else None
            )
            if legacy_version in (None, feature_spec_version):
                return legacy
        raise SpecError(project_name, key, "job_name", "item not found in the parameters table")

    def load_job_spec(self, project_name: str, job_name: str, feature_spec_version: str) -> dict[str, Any]:
        """The raw ``spec`` payload of one job's item."""
        item = self.load_job_item(project_name, job_name, feature_spec_version)
        payload = item.get("spec")
        if payload is None:
            raise SpecError(project_name, item["job_name"], "spec", "item has no 'spec' payload")
        return payload

    def load_typed_spec(
        self, model: type[SpecT], project_name: str, job_name: str, feature_spec_version: str
    ) -> SpecT:
        """``load_job_spec`` parsed into ``model``; errors name project, item and key."""
        payload = self.load_job_spec(project_name, job_name, feature_spec_version)
        return parse_spec(
            model, payload, project=project_name, item=versioned_job_key(job_name, feature_spec_version)
        )

    def load_project_parameters(self, project_name: str, feature_spec_version: str) -> ProjectParameters:
        """``project_parameters#version``, payload under ``spec`` or ``parameters``."""
        item = self.load_job_item(project_name, "project_parameters", feature_spec_version)
        payload = item.get("spec", item.get("parameters"))
        if payload is None:
            raise SpecError(project_name, item["job_name"], "spec", "item has neither 'spec' nor 'parameters'")
        return parse_spec(ProjectParameters, payload, project=project_name, item=item["job_name"])

    def update_spec(
        self, project_name: str, job_name: str, feature_spec_version: str, change: Callable[[dict[str, Any]], dict[str, Any]],
        *, updated_at: str,
    ) -> dict[str, Any]:
        """Read ``job#version``, apply ``change`` to a copy of its spec, write it back conditionally.

        The write succeeds only if neither ``revision`` nor ``updated_at`` changed since the read, so a
        concurrent edit (another run, provisioning, a person) fails with :class:`ConcurrentUpdateError`
        and nothing is half-written (one conditional single-item write). Returns the written item.
        """
        key = versioned_job_key(job_name, feature_spec_version)
        current = self.get_item(project_name, key)
        if current is None:
            raise SpecError(project_name, key, "job_name", "item not found in the parameters table")
        expected = {attr: current.get(attr) for attr in REVISION_ATTRIBUTES}
        updated = {
            **current, "spec": change(copy.deepcopy(current.get("spec") or {})),
            "revision": uuid.uuid4().hex, "updated_at": updated_at,
        }
        self.put_item_if(updated, expected)
        return updated

    def list_versions(self, project_name: str, job_name: str) -> list[str]:
        """Feature-spec versions stored for one job (``begins_with(job_name, "<job>#")``)."""
        items = self.query_prefix(project_name, f"{job_name}#")
        return [item["job_name"].split("#", 1)[1] for item in items]

    def list_job_specs(self, project_name: str, job_name: str) -> list[dict[str, Any]]:
        """Every versioned item of one job."""
        return self.query_prefix(project_name, f"{job_name}#")

    def load_routing(self, org_key: str) -> RoutingRecord:
        item = self.get_routing(org_key)
        if item is None:
            raise SpecError("-", org_key, "org_key", "no routing record in the routing table")
        return parse_spec(RoutingRecord, item, project=item.get("project_name", "-"), item=org_key)

    def enabled_routes(self) -> list[RoutingRecord]:
        """Every enabled routing record, parsed; a bad record fails naming its org_key."""
        routes = []
        for item in self.scan_routing():
            record = parse_spec(
                RoutingRecord, item, project=item.get("project_name", "-"), item=str(item.get("org_key"))
            )
            if record.enabled:
                routes.append(record)
        return routes

"""The production parameter store: DynamoDB tables ``ml_projects_parameters`` and ``ml_projects_routing``.

Parameters table: partition key ``project_name``, sort key ``job_name`` (valued ``<job>#<version>``).
Routing table: partition key ``org_key`` (``<org1>#<org2>``). DynamoDB keeps every number as a
decimal; :func:`to_dynamodb` stores floats as ``Decimal(str(x))`` and :func:`from_dynamodb` turns
decimals back into ``int`` (no fractional digits) or ``float``. Real DynamoDB normalises ``1.0`` to
``1``, so an integral float comes back as an int; typed spec models coerce it back where it matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import PrivateAttr

from ndr_resources.errors import ConcurrentUpdateError, SpecError
from ndr_resources.parameter_store.base import (
    DEFAULT_ROUTING_TABLE,
    ParameterStore,
    require_key_attributes,
    resolve_parameters_table_name,
)


def to_dynamodb(value: Any) -> Any:
    """A JSON-like value with floats replaced by ``Decimal`` (boto3 refuses Python floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"DynamoDB cannot store {value!r}")
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamodb(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB: {value!r}")


def from_dynamodb(value: Any) -> Any:
    """The inverse of :func:`to_dynamodb`: decimals become ``int`` or ``float``."""
    if isinstance(value, Decimal):
        # An exponent below zero means the stored text had fractional digits ("0.05", "1.0", "1e-06").
        return float(value) if value.as_tuple().exponent < 0 else int(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_dynamodb(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(from_dynamodb(v) for v in value)
    return value


class DynamoDBParameterStore(ParameterStore):
    """Parameters and routing tables in DynamoDB (``endpoint_url`` points at moto in tests)."""

    # None: resolved from ML_PROJECTS_PARAMETERS_TABLE_NAME / JOB_SPEC_DDB_TABLE_NAME at use time.
    table_name: str | None = None
    routing_table_name: str = DEFAULT_ROUTING_TABLE
    region_name: str | None = None
    endpoint_url: str | None = None

    _dynamodb: Any = PrivateAttr(default=None)

    @property
    def parameters_table_name(self) -> str:
        return self.table_name or resolve_parameters_table_name()

    def _resource(self) -> Any:
        if self._dynamodb is None:
            import boto3

            self._dynamodb = boto3.resource("dynamodb", region_name=self.region_name, endpoint_url=self.endpoint_url)
        return self._dynamodb

    def _table(self, name: str) -> Any:
        return self._resource().Table(name)

    def _call(self, project: str, item: str, fn: Any, **kwargs: Any) -> Any:
        """Run one DynamoDB call; a missing table becomes an error that says what to run."""
        client_error = self._resource().meta.client.exceptions.ResourceNotFoundException
        try:
            return fn(**kwargs)
        except client_error as exc:
            raise SpecError(
                project, item, "table", f"DynamoDB table not found ({exc}); run `ndr seed provision` first"
            ) from exc

    # ---- table management

    def create_tables(self) -> None:
        client = self._resource().meta.client
        definitions = {
            self.parameters_table_name: (
                [("project_name", "HASH"), ("job_name", "RANGE")],
                ["project_name", "job_name"],
            ),
            self.routing_table_name: ([("org_key", "HASH")], ["org_key"]),
        }
        for name, (key_schema, attributes) in definitions.items():
            with contextlib.suppress(client.exceptions.ResourceInUseException):  # exists: creation is idempotent
                client.create_table(
                    TableName=name,
                    KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in key_schema],
                    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                    BillingMode="PAY_PER_REQUEST",
                )
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    # ---- parameters table

    def get_item(self, project_name: str, job_name: str) -> dict[str, Any] | None:
        table = self._table(self.parameters_table_name)
        response = self._call(
            project_name,
            job_name,
            table.get_item,
            Key={"project_name": project_name, "job_name": job_name},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_dynamodb(item) if item is not None else None

    def put_item(self, item: dict[str, Any]) -> None:
        require_key_attributes(item, ("project_name", "job_name"))
        table = self._table(self.parameters_table_name)
        self._call(item["project_name"], item["job_name"], table.put_item, Item=to_dynamodb(item))

    def put_item_if(self, item: dict[str, Any], expected: Mapping[str, str | None]) -> None:
        require_key_attributes(item, ("project_name", "job_name"))
        table = self._table(self.parameters_table_name)
        conditions, names, values = [], {}, {}
        for i, (attr, value) in enumerate(sorted(expected.items())):
            names[f"#a{i}"] = attr
            if value is None:
                conditions.append(f"attribute_not_exists(#a{i})")
            else:
                values[f":v{i}"] = value
                conditions.append(f"#a{i} = :v{i}")
        kwargs: dict[str, Any] = {"Item": to_dynamodb(item)}
        if conditions:
            kwargs.update(ConditionExpression=" AND ".join(conditions), ExpressionAttributeNames=names)
            if values:
                kwargs["ExpressionAttributeValues"] = values
        failed = self._resource().meta.client.exceptions.ConditionalCheckFailedException
        try:
            self._call(item["project_name"], item["job_name"], table.put_item, **kwargs)
        except failed:
            raise ConcurrentUpdateError(item["project_name"], item["job_name"], dict(expected)) from None

    def query_prefix(self, project_name: str, job_name_prefix: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        table = self._table(self.parameters_table_name)
        condition = Key("project_name").eq(project_name) & Key("job_name").begins_with(job_name_prefix)
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ConsistentRead": True}
        items: list[dict[str, Any]] = []
        while True:
            response = self._call(project_name, job_name_prefix + "*", table.query, **kwargs)
            items.extend(from_dynamodb(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items  # Query returns items in sort-key order
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ---- routing table

    def get_routing(self, org_key: str) -> dict[str, Any] | None:
        table = self._table(self.routing_table_name)
        response = self._call("-", org_key, table.get_item, Key={"org_key": org_key}, ConsistentRead=True)
        item = response.get("Item")
        return from_dynamodb(item) if item is not None else None

    def put_routing(self, item: dict[str, Any]) -> None:
        require_key_attributes(item, ("org_key",))
        table = self._table(self.routing_table_name)
        self._call(str(item.get("project_name", "-")), item["org_key"], table.put_item, Item=to_dynamodb(item))

    def scan_routing(self) -> list[dict[str, Any]]:
        table = self._table(self.routing_table_name)
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("-", "*", table.scan, **kwargs)
            items.extend(from_dynamodb(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(items, key=lambda item: item["org_key"])

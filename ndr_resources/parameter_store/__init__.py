"""Parameter store: the spec-001 item model over DynamoDB (production) or SQLite (embedded)."""

from ndr_resources.parameter_store.base import (
    ParameterStore,
    resolve_parameters_table_name,
    versioned_job_key,
)
from ndr_resources.parameter_store.dynamodb import DynamoDBParameterStore
from ndr_resources.parameter_store.sqlite import SqliteParameterStore

__all__ = [
    "DynamoDBParameterStore",
    "ParameterStore",
    "SqliteParameterStore",
    "resolve_parameters_table_name",
    "versioned_job_key",
]

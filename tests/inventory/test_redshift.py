"""RedshiftWarehouse: the batch it sends (checked against botocore's model of the API) and the
Data API calls moto's server implements (DescribeStatement, CancelStatement, GetStatementResult).

moto 5.2.5 does not implement BatchExecuteStatement (its server answers 500 NotImplemented) and
never moves a statement past STARTED, so a whole unload cannot run against it: the request of the
batch is validated against the service model instead, and polling is tested on statements created
with ExecuteStatement.
"""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from ndr_resources.specs import RedshiftConnection
from ndr_resources.warehouse import (
    RedshiftWarehouse,
    SqlSyntaxError,
    WarehouseError,
    redshift_batch_request,
    redshift_unload_statements,
    statement_failure_message,
)

ROLE = "arn:aws:iam::000000000000:role/ndr-redshift-unload"
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ndr/redshift"
CONNECTION = RedshiftConnection(
    cluster_identifier="ndr-warehouse", database="ndr", secret_arn=SECRET, region="us-east-1", iam_role=ROLE
)
SELECT = (
    'SELECT DISTINCT src."ip_address" AS "ip", src."machine_name" AS "machine_name" FROM "dim"."machines" AS src '
    "WHERE src.\"tenant\" = 'o''neil' AND "
    'NOT EXISTS (SELECT 1 FROM "tmp_existing_ips" AS e WHERE e."ip" = src."ip_address")'
)
WORK = "s3://ndr-demo/inventory/_staging/inventory-2026-02-abc/"


def test_the_batch_loads_existing_ips_unloads_and_counts():
    statements = redshift_unload_statements(
        SELECT, existing_ips_uri=WORK + "existing_ips/", destination_uri=WORK + "unload/", iam_role=ROLE
    )
    assert statements == [
        'CREATE TEMP TABLE "tmp_existing_ips" ("ip" VARCHAR(64))',
        f"COPY \"tmp_existing_ips\" FROM '{WORK}existing_ips/part-' IAM_ROLE '{ROLE}' FORMAT AS PARQUET",
        "UNLOAD ('SELECT DISTINCT src.\"ip_address\" AS \"ip\", src.\"machine_name\" AS \"machine_name\" "
        "FROM \"dim\".\"machines\" AS src WHERE src.\"tenant\" = \\'o\\'\\'neil\\' AND "
        "NOT EXISTS (SELECT 1 FROM \"tmp_existing_ips\" AS e WHERE e.\"ip\" = src.\"ip_address\")') "
        f"TO '{WORK}unload/part_' IAM_ROLE '{ROLE}' FORMAT AS PARQUET",
        "SELECT pg_last_unload_count()",
    ]


def test_without_existing_ips_there_is_no_copy():
    statements = redshift_unload_statements(
        SELECT, existing_ips_uri=None, destination_uri=WORK + "unload/", iam_role=ROLE
    )
    assert [s.split(" ", 1)[0] for s in statements] == ["CREATE", "UNLOAD", "SELECT"]


def test_a_quote_in_a_role_stays_inside_its_literal_and_a_backslash_is_refused():
    statements = redshift_unload_statements(
        "SELECT 1", existing_ips_uri=None, destination_uri=WORK, iam_role="arn:x' DROP"
    )
    assert statements[1].endswith("IAM_ROLE 'arn:x'' DROP' FORMAT AS PARQUET")
    with pytest.raises(SqlSyntaxError, match="backslash"):
        redshift_unload_statements("SELECT 1", existing_ips_uri=None, destination_uri=WORK, iam_role="arn:\\")


def _batch_input_shape():
    model = botocore.session.get_session().get_service_model("redshift-data")
    return model.operation_model("BatchExecuteStatement").input_shape


def test_batch_request_uses_the_secret_and_matches_the_api_model():
    request = redshift_batch_request(CONNECTION, ["SELECT 1", "SELECT 2"], "ndr-machine-inventory-unload")
    assert request == {
        "Sqls": ["SELECT 1", "SELECT 2"],
        "ClusterIdentifier": "ndr-warehouse",
        "Database": "ndr",
        "StatementName": "ndr-machine-inventory-unload",
        "SecretArn": SECRET,
    }
    validate_parameters(request, _batch_input_shape())  # raises on an unknown key or a wrong type
    with pytest.raises(ParamValidationError):
        validate_parameters({**request, "Sql": "SELECT 1"}, _batch_input_shape())


def test_a_db_user_means_temporary_credentials_instead_of_the_secret():
    connection = CONNECTION.model_copy(update={"db_user": "ndr_unload"})
    request = redshift_batch_request(connection, ["SELECT 1"], "n")
    assert request["DbUser"] == "ndr_unload" and "SecretArn" not in request
    validate_parameters(request, _batch_input_shape())


def test_failure_message_names_cluster_statement_sub_statement_and_redshift_error():
    description = {
        "Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766",
        "Status": "FAILED",
        "SubStatements": [
            {"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766:1", "Status": "FINISHED", "QueryString": "CREATE TEMP"},
            {
                "Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766:2",
                "Status": "FAILED",
                "QueryString": "UNLOAD ('SELECT 1\n FROM \"dim\".\"machines\"')",
                "Error": 'ERROR: relation "dim.machines" does not exist',
            },
        ],
    }
    assert statement_failure_message(CONNECTION, description) == (
        "Redshift cluster 'ndr-warehouse' database 'ndr': statement d9b6c0c9-0747-4bf4-b142-e8883122f766 "
        "ended FAILED at sub-statement d9b6c0c9-0747-4bf4-b142-e8883122f766:2 "
        "(UNLOAD ('SELECT 1 FROM \"dim\".\"machines\"')): ERROR: relation \"dim.machines\" does not exist"
    )


# ---------------------------------------------------------------- over HTTP against moto's server


@pytest.fixture
def client(moto_endpoint):
    return boto3.client("redshift-data", endpoint_url=moto_endpoint, region_name="us-east-1")


def _warehouse(moto_endpoint: str, timeout_seconds: float = 5.0) -> RedshiftWarehouse:
    return RedshiftWarehouse(
        endpoint_url=moto_endpoint,
        poll_initial_seconds=0.01,
        poll_max_seconds=0.04,
        timeout_seconds=timeout_seconds,
        max_attempts=1,
    )


def _started_statement(client) -> str:
    return client.execute_statement(
        Sql="SELECT pg_last_unload_count()", ClusterIdentifier="ndr-warehouse", Database="ndr", SecretArn=SECRET
    )["Id"]


def test_an_aborted_statement_raises_naming_cluster_statement_and_status(moto_endpoint, client):
    statement_id = _started_statement(client)
    client.cancel_statement(Id=statement_id)
    with pytest.raises(WarehouseError) as caught:
        _warehouse(moto_endpoint).wait(CONNECTION, statement_id)
    assert str(caught.value) == (
        f"Redshift cluster 'ndr-warehouse' database 'ndr': statement {statement_id} ended ABORTED"
    )


def test_a_statement_still_running_at_the_timeout_is_cancelled(moto_endpoint, client):
    statement_id = _started_statement(client)  # moto keeps it STARTED
    with pytest.raises(WarehouseError, match=f"statement {statement_id} still STARTED after 0.2 s; cancelled"):
        _warehouse(moto_endpoint, timeout_seconds=0.2).wait(CONNECTION, statement_id)
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"


def test_the_unload_count_is_read_from_the_statement_result(moto_endpoint, client):
    # moto answers every GetStatementResult with the same rows; their first field is longValue 10.
    assert _warehouse(moto_endpoint).first_long_value(CONNECTION, _started_statement(client)) == 10


def test_an_api_error_names_the_cluster_and_the_operation(moto_endpoint):
    with pytest.raises(WarehouseError, match="cluster 'ndr-warehouse' database 'ndr': DescribeStatement failed:.*"
                       "ResourceNotFound"):
        _warehouse(moto_endpoint).wait(CONNECTION, "00000000-0000-0000-0000-000000000000")

"""RedshiftWarehouse.copy_parquet_into: the request (checked against botocore's model of the Data
API) and the calls moto's server implements, over HTTP.

moto 5.2.5 answers BatchExecuteStatement with 500 NotImplemented and never moves a statement past
STARTED (so neither FINISHED nor FAILED can be produced by it). Hence: the batch request is validated
against the service model; over HTTP, the unimplemented submit is shown to fail naming project and
item, and waiting/cancelling/reading the count run on statements created with ExecuteStatement; the
FAILED message is checked on a DescribeStatement response written by hand to the API's shape.
"""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters

from ndr_resources.errors import SpecError
from ndr_resources.warehouse import (
    COPY_STATEMENT_NAME,
    RedshiftWarehouse,
    WarehouseError,
    plan_copy,
    redshift_batch_request,
    redshift_copy_statements,
    statement_failure_message,
    sub_statement_id,
)
from tests.warehouse.test_copy_sql import ITEM, PROJECT, STAGED, destination

COLUMNS = ["host_ip", "window_label", "window_end_ts", "prediction_score"]


def _model():
    return botocore.session.get_session().get_service_model("redshift-data")


def test_the_copy_batch_request_matches_the_api_model():
    dest = destination(pre_sql=["DELETE FROM ndr_join.prediction_features WHERE window_label = '15m'"])
    statements = redshift_copy_statements(
        plan_copy(dest, staged_uri=STAGED, columns=COLUMNS, project=PROJECT, item=ITEM), iam_role=dest.iam_role
    )
    request = redshift_batch_request(dest, statements, COPY_STATEMENT_NAME)
    assert request["Sqls"][0] == "DELETE FROM ndr_join.prediction_features WHERE window_label = '15m'"
    assert request["Sqls"][2] == "SELECT pg_last_copy_count()"
    assert (request["ClusterIdentifier"], request["Database"], request["SecretArn"]) == (
        "ndr-warehouse", "ndr", "arn:aws:secretsmanager:us-east-1:000000000000:secret:ndr/redshift"
    )  # fmt: skip
    validate_parameters(request, _model().operation_model("BatchExecuteStatement").input_shape)
    # The batch's sub-statements are what the API documents for BatchExecuteStatement's DescribeStatement.
    output = _model().operation_model("DescribeStatement").output_shape
    assert {"SubStatements", "Error", "Status", "Id"} <= set(output.members)
    assert {"Id", "Status", "Error", "ResultRows", "QueryString"} <= set(output.members["SubStatements"].member.members)


def test_the_count_is_read_from_the_statement_after_the_copy():
    batch = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
    listed = {"Id": batch, "SubStatements": [{"Id": f"{batch}:{n}"} for n in (1, 2, 3, 4)]}
    assert sub_statement_id(listed, 3) == f"{batch}:3"
    assert sub_statement_id({"Id": batch, "SubStatements": []}, 3) == f"{batch}:3"


def test_a_failed_copy_names_project_item_table_and_redshift_error():
    batch = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
    description = {
        "Id": batch,
        "Status": "FAILED",
        "SubStatements": [
            {"Id": f"{batch}:1", "Status": "FINISHED", "QueryString": "DELETE FROM ..."},
            {
                "Id": f"{batch}:2",
                "Status": "FAILED",
                "QueryString": 'COPY "ndr_join"."prediction_features" ("host_ip") FROM ...',
                "Error": "ERROR: Spectrum Scan Error: column host_ip has type BINARY, table has VARCHAR",
            },
        ],
    }
    dest = destination()
    message = statement_failure_message(dest, description)
    assert message == (
        f"Redshift cluster 'ndr-warehouse' database 'ndr': statement {batch} ended FAILED at sub-statement {batch}:2 "
        '(COPY "ndr_join"."prediction_features" ("host_ip") FROM ...): '
        "ERROR: Spectrum Scan Error: column host_ip has type BINARY, table has VARCHAR"
    )


# ---------------------------------------------------------------- over HTTP against moto's server


@pytest.fixture
def client(moto_endpoint):
    return boto3.client("redshift-data", endpoint_url=moto_endpoint, region_name="us-east-1")


def _warehouse(moto_endpoint: str, timeout_seconds: float = 5.0) -> RedshiftWarehouse:
    return RedshiftWarehouse(
        endpoint_url=moto_endpoint, poll_initial_seconds=0.01, poll_max_seconds=0.04,
        timeout_seconds=timeout_seconds, max_attempts=1,
    )  # fmt: skip


def _started(client) -> str:
    return client.execute_statement(
        Sql="SELECT pg_last_copy_count()", ClusterIdentifier="ndr-warehouse", Database="ndr",
        SecretArn="arn:aws:secretsmanager:us-east-1:000000000000:secret:ndr/redshift",
    )["Id"]  # fmt: skip


def test_submitting_the_copy_names_project_item_and_the_api_error(moto_endpoint):
    with pytest.raises(WarehouseError) as caught:
        _warehouse(moto_endpoint).copy_parquet_into(
            destination=destination(), staged_uri=STAGED, columns=COLUMNS, project=PROJECT, item=ITEM
        )
    assert str(caught.value).startswith(
        "project 'ndr-acme-finance', item 'prediction_feature_join': COPY into ndr_join.prediction_features failed: "
        "Redshift cluster 'ndr-warehouse' database 'ndr': BatchExecuteStatement failed:"
    )  # moto: "An error occurred (500) ... not been implemented"


def test_a_refused_pre_sql_fails_before_any_call():
    dest = destination(pre_sql=["DROP TABLE ndr_join.prediction_features"])
    with pytest.raises(SpecError, match="key 'destination.redshift.pre_sql\\[0\\]': a statement starting with DROP"):
        # An unreachable endpoint proves no request is made: it would fail with a connection error.
        RedshiftWarehouse(endpoint_url="http://127.0.0.1:9", max_attempts=1).copy_parquet_into(
            destination=dest, staged_uri=STAGED, columns=COLUMNS, project=PROJECT, item=ITEM
        )


def test_an_aborted_copy_names_project_item_and_status(moto_endpoint, client):
    statement_id = _started(client)
    client.cancel_statement(Id=statement_id)
    with pytest.raises(WarehouseError) as caught:
        _warehouse(moto_endpoint).await_copy(destination(), statement_id, count_position=2, project=PROJECT, item=ITEM)
    assert str(caught.value) == (
        "project 'ndr-acme-finance', item 'prediction_feature_join': COPY into ndr_join.prediction_features failed: "
        f"Redshift cluster 'ndr-warehouse' database 'ndr': statement {statement_id} ended ABORTED"
    )


def test_a_copy_still_running_at_the_timeout_is_cancelled(moto_endpoint, client):
    statement_id = _started(client)  # moto keeps it STARTED
    with pytest.raises(WarehouseError) as caught:
        _warehouse(moto_endpoint, timeout_seconds=0.2).await_copy(
            destination(), statement_id, count_position=2, project=PROJECT, item=ITEM
        )
    assert str(caught.value).endswith(f"statement {statement_id} still STARTED after 0.2 s; cancelled")
    assert "item 'prediction_feature_join'" in str(caught.value)
    assert client.describe_statement(Id=statement_id)["Status"] == "ABORTED"


def test_the_copy_count_is_the_first_value_of_its_result(moto_endpoint, client):
    # moto answers every GetStatementResult with the same rows; their first field is longValue 10.
    assert _warehouse(moto_endpoint).first_long_value(destination(), _started(client)) == 10

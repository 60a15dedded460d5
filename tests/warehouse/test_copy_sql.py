"""What a join COPY takes from the spec and the caller: pre_sql/post_sql rule, staged URI, columns,
the window-delete helper and the Redshift batch text (no engine involved)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ndr_resources.errors import SpecError
from ndr_resources.model_specs import JoinRedshiftDestination
from ndr_resources.warehouse import (
    SqlSyntaxError,
    UserStatement,
    WarehouseError,
    plan_copy,
    redshift_copy_statements,
    render_window_delete,
    validate_user_statement,
    with_window_delete,
)

PROJECT, ITEM = "ndr-acme-finance", "prediction_feature_join"
ROLE = "arn:aws:iam::000000000000:role/ndr-redshift-copy"
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ndr/redshift"
STAGING = "s3://ndr-test/join/_staging/"
STAGED = STAGING + "run-2026-01-05-00-08/"


def destination(**update) -> JoinRedshiftDestination:
    payload = {
        "cluster_identifier": "ndr-warehouse", "database": "ndr", "secret_arn": SECRET, "region": "us-east-1",
        "iam_role": ROLE, "schema": "ndr_join", "table": "prediction_features", "staging_s3_prefix": STAGING,
        **update,
    }  # fmt: skip
    return JoinRedshiftDestination.model_validate(payload)


def plan(dest=None, staged=STAGED, columns=("host_ip", "window_end_ts")):
    return plan_copy(dest or destination(), staged_uri=staged, columns=list(columns), project=PROJECT, item=ITEM)


# ---------------------------------------------------------------- the pre/post SQL rule


@pytest.mark.parametrize(
    ("sql", "kind", "table"),
    [
        ("DELETE FROM ndr_join.prediction_features WHERE dt = '2026-01-05'", "DELETE", "prediction_features"),
        ('delete from "NDR_JOIN"."prediction_features"', "DELETE", "prediction_features"),
        ("INSERT INTO ndr_join.load_audit (n) SELECT count(*) FROM ndr_join.prediction_features", "INSERT", "load_audit"),
        ("UPDATE ndr_join.prediction_features SET model_name = 'drop' WHERE model_name IS NULL", "UPDATE",
         "prediction_features"),
        ("CREATE TABLE IF NOT EXISTS ndr_join.prediction_features (LIKE ndr_join.template)",
         "CREATE TABLE IF NOT EXISTS", "prediction_features"),
        ("ANALYZE ndr_join.prediction_features", "ANALYZE", "prediction_features"),
    ],
)  # fmt: skip
def test_allowed_kinds_on_the_destination_schema_pass_unchanged(sql, kind, table):
    statement = validate_user_statement("  " + sql + "\n", schema="ndr_join")
    assert (statement.kind, statement.table, statement.sql) == (kind, table, sql)


def test_a_delete_keeps_its_condition_text_for_the_local_warehouse():
    sql = "DELETE FROM ndr_join.t WHERE \"window_end_ts\" >= TIMESTAMP '2026-01-05 00:08:00' AND dt = 'x'"
    assert validate_user_statement(sql, schema="ndr_join") == UserStatement(
        "DELETE", "ndr_join", "t", sql, where="\"window_end_ts\" >= TIMESTAMP '2026-01-05 00:08:00' AND dt = 'x'"
    )
    using = validate_user_statement("DELETE FROM ndr_join.t USING ndr_join.u WHERE t.k = u.k", schema="ndr_join")
    assert (using.using, using.where) == (True, None)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP DATABASE ndr", "a statement starting with DROP is not allowed: each entry is ONE statement"),
        ("GRANT ALL ON SCHEMA ndr_join TO PUBLIC", "a statement starting with GRANT is not allowed"),
        ("TRUNCATE ndr_join.t", "TRUNCATE commits the batch's transaction"),
        ("SELECT 1", "a statement starting with SELECT is not allowed"),
        ("BEGIN", "a statement starting with BEGIN is not allowed"),
        ("CREATE TABLE ndr_join.t (a INT)", "a statement starting with CREATE is not allowed"),
        ("", "the statement is empty"),
        ("DELETE FROM ndr_join.t; DROP TABLE ndr_join.t", "';' is not allowed: one statement per entry"),
        ("ANALYZE ndr_join.t;", "';' is not allowed"),
        ("DELETE FROM ndr_join.t -- all", "comments ('--' at position 23) are not allowed"),
        ("DELETE FROM ndr_join.t WHERE a = $$x$$", "character '$' at position 33 is not allowed"),
        ("DELETE FROM public.t", "DELETE targets schema 'public'; pre_sql/post_sql may only change the destination schema 'ndr_join'"),
        ("DELETE FROM t WHERE a = 1", "the target of DELETE must be qualified with the destination schema: ndr_join.<table>"),
        ('DELETE FROM "ndr join".t', "the target's schema at position 12 is not a plain identifier"),
        ("DELETE FROM ndr_join.t WHERE", "expected WHERE <condition>, USING ... or the end of the DELETE at position 23"),
        ("DELETE FROM ndr_join.t WHERE a IN (SELECT 1) AND DROP", "keyword DROP at position 49 is not allowed in DELETE"),
        ("UPDATE ndr_join.t SET a = 1, SET b = 2", "keyword SET at position 29 is not allowed in UPDATE"),
        ("INSERT INTO ndr_join.t SELECT pg_terminate_backend(7)", "function PG_TERMINATE_BACKEND at position 30 is not allowed"),
        ("INSERT INTO ndr_join.t SELECT (1", "unbalanced parentheses"),
        ("INSERT INTO ndr_join.t SELECT 1)", "unbalanced ')' at position 31"),
    ],
)  # fmt: skip
def test_refused_statements_say_why(sql, message):
    with pytest.raises(SqlSyntaxError) as caught:
        validate_user_statement(sql, schema="ndr_join")
    assert message in str(caught.value)


def test_a_refused_entry_is_a_spec_error_naming_project_item_and_the_entry():
    dest = destination(pre_sql=["ANALYZE ndr_join.t"], post_sql=["ANALYZE ndr_join.t", "DROP TABLE ndr_join.t"])
    with pytest.raises(SpecError) as caught:
        plan(dest)
    assert (caught.value.project, caught.value.item, caught.value.key) == (PROJECT, ITEM, "destination.redshift.post_sql[1]")
    assert str(caught.value).startswith(
        "project 'ndr-acme-finance', item 'prediction_feature_join', key 'destination.redshift.post_sql[1]': "
        "a statement starting with DROP is not allowed"
    )


def test_the_iam_role_must_be_a_role_arn():
    with pytest.raises(SpecError, match=r"key 'destination.redshift.iam_role': not an IAM role ARN: \"arn:x' OR\""):
        plan(destination(iam_role="arn:x' OR"))


# ---------------------------------------------------------------- staged URI and columns


@pytest.mark.parametrize(
    ("staged", "message"),
    [
        ("s3://ndr-test/join/_staging/it's/", "staged URI contains a quote, a space or a control character"),
        ("s3://ndr-test/join/_staging/a b/", "staged URI contains a quote"),
        ("/tmp/join/", "staged URI '/tmp/join/': not an s3:// URI"),
        ("s3://ndr-test/join/_staging/../../secrets/", "key contains '..'"),
        ("s3://ndr-test/other/run-1/", "is not under destination.redshift.staging_s3_prefix 's3://ndr-test/join/_staging/'"),
        ("s3://ndr-test/join/_stagingX/run-1/", "is not under destination.redshift.staging_s3_prefix"),
    ],
)  # fmt: skip
def test_the_staged_uri_is_an_s3_prefix_under_the_staging_prefix(staged, message):
    with pytest.raises(WarehouseError) as caught:
        plan(staged=staged)
    assert str(caught.value).startswith("project 'ndr-acme-finance', item 'prediction_feature_join': ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ((), "the COPY column list is empty or names a column twice: []"),
        (("host_ip", "HOST_IP"), "names a column twice"),
        (('host_ip") FROM', "x"), "COPY column list: not a plain SQL identifier"),
    ],
)
def test_the_column_list_is_plain_distinct_identifiers(columns, message):
    with pytest.raises(WarehouseError, match="item 'prediction_feature_join': ") as caught:
        plan(columns=columns)
    assert message in str(caught.value)


# ---------------------------------------------------------------- window delete and the batch


def test_the_window_delete_is_rendered_from_typed_values_in_utc():
    plus_one = timezone(timedelta(hours=1))
    sql = render_window_delete(
        "ndr_join", "prediction_features", start=datetime(2026, 1, 5, 0, 8), end=datetime(2026, 1, 5, 1, 23, tzinfo=plus_one)
    )
    assert sql == (
        'DELETE FROM "ndr_join"."prediction_features" WHERE "window_end_ts" '
        "BETWEEN TIMESTAMP '2026-01-05 00:08:00' AND TIMESTAMP '2026-01-05 00:23:00'"
    )
    assert validate_user_statement(sql, schema="ndr_join").where == (
        "\"window_end_ts\" BETWEEN TIMESTAMP '2026-01-05 00:08:00' AND TIMESTAMP '2026-01-05 00:23:00'"
    )
    with pytest.raises(ValueError, match="end 2026-01-05 00:07:00 is before start 2026-01-05 00:08:00"):
        render_window_delete("s", "t", start=datetime(2026, 1, 5, 0, 8), end=datetime(2026, 1, 5, 0, 7))
    with pytest.raises(TypeError, match="start must be a datetime, got str"):
        render_window_delete("s", "t", start="2026-01-05", end=datetime(2026, 1, 5))  # type: ignore[arg-type]
    with pytest.raises(SqlSyntaxError, match="not a plain SQL identifier"):
        render_window_delete("s", "t", start=datetime(2026, 1, 5), end=datetime(2026, 1, 5), column='x" OR 1=1')


def test_the_batch_is_pre_sql_copy_count_post_sql():
    dest = with_window_delete(
        destination(pre_sql=["CREATE TABLE IF NOT EXISTS ndr_join.prediction_features (LIKE ndr_join.template)"],
                    post_sql=["ANALYZE ndr_join.prediction_features"]),
        start=datetime(2026, 1, 5, 0, 23), end=datetime(2026, 1, 5, 0, 23),
    )  # fmt: skip
    assert redshift_copy_statements(plan(dest), iam_role=ROLE) == [
        'DELETE FROM "ndr_join"."prediction_features" WHERE "window_end_ts" '
        "BETWEEN TIMESTAMP '2026-01-05 00:23:00' AND TIMESTAMP '2026-01-05 00:23:00'",
        "CREATE TABLE IF NOT EXISTS ndr_join.prediction_features (LIKE ndr_join.template)",
        'COPY "ndr_join"."prediction_features" ("host_ip", "window_end_ts") '
        "FROM 's3://ndr-test/join/_staging/run-2026-01-05-00-08/part-' "
        "IAM_ROLE 'arn:aws:iam::000000000000:role/ndr-redshift-copy' FORMAT AS PARQUET",
        "SELECT pg_last_copy_count()",
        "ANALYZE ndr_join.prediction_features",
    ]

"""The inventory SELECT: hand-written expected SQL, the filter grammar, and injection attempts."""

from __future__ import annotations

import copy

import pytest

from ndr_assets.inventory.sql import render_inventory_select
from ndr_resources.errors import SpecError
from ndr_resources.specs import MachineInventoryUnloadSpec, parse_spec
from ndr_resources.warehouse import (
    SqlSyntaxError,
    escape_unload_query,
    parse_condition,
    quote_literal,
    render_condition,
    validate_select,
)

PROJECT, ITEM = "acme-finance", "machine_inventory_unload#v1"
PAYLOAD = {
    "redshift": {
        "cluster_identifier": "ndr-warehouse",
        "database": "ndr",
        "secret_arn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:ndr/redshift",
        "region": "us-east-1",
        "iam_role": "arn:aws:iam::000000000000:role/ndr-redshift-unload",
    },
    "query": {
        "schema": "dim",
        "table": "machines",
        "ip_column": "ip_address",
        "name_column": "machine_name",
        "active_filter": "active = true",
        "additional_filters": ["tenant = 'acme_finance'"],
    },
    "output": {"s3_prefix": "s3://ndr-demo/inventory/"},
}
ANTI_JOIN = 'NOT EXISTS (SELECT 1 FROM "tmp_existing_ips" AS e WHERE e."ip" = src."ip_address")'


def payload_with(**query: object) -> dict:
    payload = copy.deepcopy(PAYLOAD)
    payload["query"].update(query)
    return {**payload, "query": {k: v for k, v in payload["query"].items() if v is not None}}


def render(payload: dict) -> str:
    spec = parse_spec(MachineInventoryUnloadSpec, payload, project=PROJECT, item=ITEM)
    return render_inventory_select(spec.query, spec.output, project=PROJECT, item=ITEM)


def test_table_spec_renders_the_hand_written_select():
    assert render(PAYLOAD) == (
        'SELECT DISTINCT src."ip_address" AS "ip", src."machine_name" AS "machine_name" '
        'FROM "dim"."machines" AS src '
        "WHERE src.\"active\" = TRUE AND src.\"tenant\" = 'acme_finance' AND " + ANTI_JOIN
    )


def test_every_filter_form_is_rendered_again_from_its_tokens():
    sql = render(
        payload_with(
            active_filter="is_active=TRUE and deleted IS NOT NULL",
            additional_filters=["segment in ('vdi','servers')", "weight >= -2.5", "retired is null", "x != 1e3"],
        )
    )
    assert sql.split(" WHERE ", 1)[1] == (
        'src."is_active" = TRUE AND src."deleted" IS NOT NULL AND '
        "src.\"segment\" IN ('vdi', 'servers') AND src.\"weight\" >= -2.5 AND "
        'src."retired" IS NULL AND src."x" <> 1e3 AND ' + ANTI_JOIN
    )


def test_full_sql_is_wrapped_as_a_subquery_with_custom_output_columns():
    payload = payload_with(
        schema=None,
        table=None,
        additional_filters=[],
        sql="SELECT ip_address, hostname AS machine_name, active FROM dim.machines WHERE note = 'drop; -- me'",
    )
    payload["output"] = {**payload["output"], "ip_output_column": "host_ip", "name_output_column": "host_name"}
    assert render(payload) == (
        'SELECT DISTINCT src."ip_address" AS "host_ip", src."machine_name" AS "host_name" FROM '
        "(SELECT ip_address, hostname AS machine_name, active FROM dim.machines WHERE note = 'drop; -- me') AS src "
        'WHERE src."active" = TRUE AND ' + ANTI_JOIN
    )


@pytest.mark.parametrize(
    ("query", "key", "problem"),
    [
        ({"active_filter": "1=1; DROP TABLE x"}, "query.active_filter", "';' at position 3 is not allowed"),
        ({"active_filter": "1=1"}, "query.active_filter", "expected a plain column name at position 0, got '1'"),
        ({"active_filter": "is_active = true; DROP TABLE x"}, "query.active_filter", "';' at position 16"),
        ({"active_filter": "is_active = true OR 1=1 --"}, "query.active_filter", "comments"),
        ({"active_filter": "is_active = true OR 1=1"}, "query.active_filter", "only AND may join"),
        ({"additional_filters": ["tenant = 'a' OR 'x'='x'"]}, "query.additional_filters[0]", "got 'OR'"),
        ({"additional_filters": ["a = 1", "lower(tenant) = 'x'"]}, "query.additional_filters[1]", "comparison"),
        ({"additional_filters": ['"tenant" = \'x\'']}, "query.additional_filters[0]", "plain column name"),
        ({"additional_filters": ["tenant = 'x\\' OR 1=1"]}, "query.additional_filters[0]", "backslash"),
        ({"additional_filters": ["tenant = other_column"]}, "query.additional_filters[0]", "a literal"),
        ({"additional_filters": ["tenant = 'open"]}, "query.additional_filters[0]", "unterminated quote"),
        ({"additional_filters": ["tenant IN ('a' 'b')"]}, "query.additional_filters[0]", "',' or ')'"),
        ({"additional_filters": ["tenant IS 'a'"]}, "query.additional_filters[0]", "expected NULL"),
        ({"additional_filters": [""]}, "query.additional_filters[0]", "empty"),
        ({"sql": "SELECT ip_address FROM dim.machines; DROP TABLE dim.machines"}, "query.sql", "';'"),
        ({"sql": "SELECT ip_address FROM dim.machines -- tail"}, "query.sql", "comments"),
        ({"sql": "SELECT ip_address FROM dim.machines /* x */"}, "query.sql", "comments"),
        ({"sql": "DELETE FROM dim.machines"}, "query.sql", "must be a single SELECT"),
        ({"sql": "SELECT * INTO dim.copy FROM dim.machines"}, "query.sql", "keyword INTO"),
        ({"sql": "SELECT 1 FROM t WHERE x IN (SELECT 1) UNION SELECT 1 FROM t WHERE 1 = (DROP)"}, "query.sql", "DROP"),
        ({"sql": "SELECT a FROM t) AS src, secrets s WHERE (1=1"}, "query.sql", "unbalanced ')'"),
        ({"sql": "SELECT $$x$$ AS a"}, "query.sql", "'$'"),
        ({"sql": "SELECT `a` FROM t"}, "query.sql", "'`'"),
    ],
)
def test_injection_attempts_are_spec_errors_naming_the_key(query, key, problem):
    payload = payload_with(**query)
    if "sql" in query:
        payload["query"] = {k: v for k, v in payload["query"].items() if k not in ("schema", "table")}
    with pytest.raises(SpecError) as caught:
        render(payload)
    assert (caught.value.project, caught.value.item, caught.value.key) == (PROJECT, ITEM, key)
    assert problem in caught.value.problem


def test_a_quote_inside_a_value_stays_inside_one_literal():
    # The spec writer doubled the quotes: the whole text is one value, rendered as one literal.
    sql = render(payload_with(additional_filters=["tenant = 'a'' OR ''x''=''x'"]))
    assert "src.\"tenant\" = 'a'' OR ''x''=''x' AND NOT EXISTS" in sql
    (predicate,) = parse_condition("tenant = 'a'' OR ''x''=''x'")
    assert predicate.literals == ("'a'' OR ''x''=''x'",)


@pytest.mark.parametrize(
    ("table", "key"),
    [({"table": "machines; DROP TABLE x"}, "query.table"), ({"schema": "dim\"--"}, "query.schema")],
)
def test_identifiers_with_sql_in_them_are_refused_by_the_spec(table, key):
    with pytest.raises(SpecError) as caught:
        parse_spec(MachineInventoryUnloadSpec, payload_with(**table), project=PROJECT, item=ITEM)
    assert caught.value.key == key
    assert "not a plain SQL identifier" in caught.value.problem


@pytest.mark.parametrize(
    ("drop", "key", "problem"),
    [
        (("redshift", "iam_role"), "redshift.iam_role", "required key is missing"),
        (("redshift", "cluster_identifier"), "redshift.cluster_identifier", "required key is missing"),
        (("output", "s3_prefix"), "output.s3_prefix", "required key is missing"),
        (("query", "table"), "query", "give either 'sql' or both 'schema' and 'table'"),
    ],
)
def test_missing_required_keys_name_the_key(drop, key, problem):
    payload = copy.deepcopy(PAYLOAD)
    del payload[drop[0]][drop[1]]
    with pytest.raises(SpecError) as caught:
        parse_spec(MachineInventoryUnloadSpec, payload, project=PROJECT, item=ITEM)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_literals_double_quotes_and_refuse_backslashes():
    assert quote_literal("it's") == "'it''s'"
    with pytest.raises(SqlSyntaxError, match="backslash"):
        quote_literal("a\\b")
    assert render_condition(parse_condition("name = 'O''Brien'"), "t") == "t.\"name\" = 'O''Brien'"


def test_keywords_inside_literals_and_quoted_identifiers_are_allowed():
    sql = "SELECT \"drop\", 'DELETE FROM x; --' AS note FROM t WHERE (a = 1)"
    assert validate_select(f"  {sql}\n") == sql


def test_unload_body_escapes_quotes_as_the_redshift_documentation_says():
    select = "SELECT a FROM t WHERE b = 'it''s'"
    assert escape_unload_query(select) == "SELECT a FROM t WHERE b = \\'it\\'\\'s\\'"

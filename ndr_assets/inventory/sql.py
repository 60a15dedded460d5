"""The inventory SELECT, rendered from a ``machine_inventory_unload`` spec without trusting its text.

One SELECT serves both warehouses (Redshift inside ``UNLOAD``, Spark SQL locally)::

    SELECT DISTINCT src."<ip_column>" AS "<ip_output_column>", src."<name_column>" AS "<name_output_column>"
    FROM "<schema>"."<table>" AS src            -- or: FROM (<query.sql>) AS src
    WHERE <active_filter> AND <additional_filters...>
      AND NOT EXISTS (SELECT 1 FROM "tmp_existing_ips" AS e WHERE e."ip" = src."<ip_column>")

Identifiers are quoted, filters are parsed by the warehouse grammar and rendered again from their
tokens (values re-quoted), and a full ``query.sql`` must be a single SELECT; it is wrapped as the
subquery ``src`` (its ``ip_column``/``name_column`` name its output columns; filters apply to them).
"""

from __future__ import annotations

from ndr_resources.errors import SpecError
from ndr_resources.specs import InventoryOutput, InventoryQuery
from ndr_resources.warehouse import (
    EXISTING_IP_COLUMN,
    EXISTING_IPS_TABLE,
    SqlSyntaxError,
    parse_condition,
    quote_identifier,
    render_condition,
    validate_select,
)

SOURCE_ALIAS = "src"
EXISTING_ALIAS = "e"


def anti_join_condition(ip_column: str) -> str:
    """Rows whose IP is not among the IPs already published (the temp table of the session)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM {quote_identifier(EXISTING_IPS_TABLE)} AS {EXISTING_ALIAS} "
        f"WHERE {EXISTING_ALIAS}.{quote_identifier(EXISTING_IP_COLUMN)} = {SOURCE_ALIAS}.{quote_identifier(ip_column)})"
    )


def _filters(query: InventoryQuery, project: str, item: str) -> list[str]:
    keyed = [("query.active_filter", query.active_filter)] if query.active_filter is not None else []
    keyed += [(f"query.additional_filters[{i}]", text) for i, text in enumerate(query.additional_filters)]
    rendered = []
    for key, text in keyed:
        try:
            rendered.append(render_condition(parse_condition(text), SOURCE_ALIAS))
        except SqlSyntaxError as exc:
            raise SpecError(project, item, key, f"{exc} (accepted: <column> <op> <literal> [AND ...], "
                            "op one of = <> != < <= > >=, IS [NOT] NULL, IN (<literals>))") from None
    return rendered


def _source(query: InventoryQuery, project: str, item: str) -> str:
    if query.sql is not None:
        try:
            return f"({validate_select(query.sql)})"
        except SqlSyntaxError as exc:
            raise SpecError(project, item, "query.sql", str(exc)) from None
    assert query.schema_name is not None and query.table is not None  # the spec model guarantees it
    return f"{quote_identifier(query.schema_name)}.{quote_identifier(query.table)}"


def render_inventory_select(query: InventoryQuery, output: InventoryOutput, *, project: str, item: str) -> str:
    """The SELECT of new machines (see the module docstring); spec problems raise :class:`SpecError`."""
    ip, name = quote_identifier(query.ip_column), quote_identifier(query.name_column)
    columns = (
        f"{SOURCE_ALIAS}.{ip} AS {quote_identifier(output.ip_output_column)}, "
        f"{SOURCE_ALIAS}.{name} AS {quote_identifier(output.name_output_column)}"
    )
    conditions = [*_filters(query, project, item), anti_join_condition(query.ip_column)]
    return (
        f"SELECT DISTINCT {columns} FROM {_source(query, project, item)} AS {SOURCE_ALIAS} "
        f"WHERE {' AND '.join(conditions)}"
    )

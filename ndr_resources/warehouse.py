"""The warehouse: where dimension tables live, and the one operation the platform asks of it.

The machine-inventory unload renders ONE SELECT text (see :mod:`ndr_assets.inventory.sql`) and both
implementations execute exactly that text:

- :class:`RedshiftWarehouse` (production) sends it through the Redshift Data API inside
  ``UNLOAD ('...')``, in a batch that first loads the already-published IPs into a session temp
  table ``tmp_existing_ips``, so the anti-join runs in Redshift.
- :class:`LocalWarehouse` (embedded default) keeps every table in the lake: ``<schema>.<table>`` is the
  Parquet folder ``<tables_uri>/<schema>/<table>/`` (hive-style partition folders inside are
  allowed). Each schema becomes a Spark database and each folder an external table over it, the
  existing IPs become the temp view ``tmp_existing_ips``, and Spark SQL runs the same SELECT with
  ANSI double-quoted identifiers.

The safe-SQL building blocks live here too, because the warehouse is what executes SQL: identifiers
and literals are quoted by :func:`quote_identifier` / :func:`quote_literal`, filters from specs are
parsed by a strict grammar (:func:`parse_condition`) and re-rendered from their tokens, and a full
SELECT from a spec is checked by :func:`validate_select` (one statement, no comments, no DDL/DML).
Backslashes are refused everywhere: Redshift and Spark both treat them as escapes in string
literals, so refusing them keeps "what the spec says" and "what runs" identical in both engines.

The prediction-feature join's Redshift destination (spec 003 item 14) is the second operation:
``copy_parquet_into`` loads Parquet files staged under ``destination.staging_s3_prefix`` into
``<schema>.<table>`` with the destination's ``pre_sql`` / ``post_sql`` around it (see
:func:`validate_user_statement` for what those may be, and the two implementations for how each runs
them).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ndr_resources.errors import InputDataError, NdrError, SpecError
from ndr_resources.lake import LocalLake, join_uri, local_path_for, split_s3_uri
from ndr_resources.model_specs import JoinRedshiftDestination
from ndr_resources.specs import RedshiftConnection

# The session temp table (Redshift) / temp view (Spark) holding the IPs already published.
EXISTING_IPS_TABLE = "tmp_existing_ips"
EXISTING_IP_COLUMN = "ip"
# The prefix every Parquet file Spark writes starts with; COPY reads only those (not _SUCCESS).
SPARK_PART_FILE_PREFIX = "part-"


class WarehouseError(NdrError):
    """A warehouse statement failed, was aborted, or did not finish in time."""


class SqlSyntaxError(ValueError):
    """Spec-supplied SQL text is outside the accepted grammar (callers turn it into a SpecError)."""


# ---------------------------------------------------------------- quoting

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote_identifier(name: str) -> str:
    """``"name"`` for a plain identifier (letters, digits, underscore); anything else is refused."""
    if not _IDENTIFIER.match(name):
        raise SqlSyntaxError(f"not a plain SQL identifier (letters, digits, underscore): {name!r}")
    return f'"{name}"'


def quote_literal(value: str) -> str:
    """A single-quoted SQL string with embedded quotes doubled; backslashes and control characters are refused."""
    if "\\" in value or _CONTROL.search(value):
        raise SqlSyntaxError(f"string value contains a backslash or a control character: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def escape_unload_query(select_sql: str) -> str:
    """The SELECT as the body of ``UNLOAD ('...')``: Redshift reads that body as a string literal in
    which quotation marks are escaped as ``\\'`` (AWS "Unloading data to Amazon S3"), and therefore
    a backslash as ``\\\\``."""
    return select_sql.replace("\\", "\\\\").replace("'", "\\'")


# ---------------------------------------------------------------- lexer

# Outside quotes only these characters may appear; ';', '\\', '$' (dollar quoting), '`', '#', '@',
# '?', '{', '}' and non-ASCII characters never do.
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--|/\*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|::|\|\||[=<>(),.+\-*/%|:~^&\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | qident | number | word | op
    text: str
    position: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def string_value(self) -> str:
        """The value of a ``string`` token: quotes removed, doubled quotes undone."""
        return self.text[1:-1].replace("''", "'")


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` (whitespace dropped); refuses comments, ';', backslashes and anything unknown."""
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            if char in "'\"":
                raise SqlSyntaxError(f"unterminated quote starting at position {position}")
            raise SqlSyntaxError(f"character {char!r} at position {position} is not allowed")
        kind = match.lastgroup or ""
        if kind == "comment":
            raise SqlSyntaxError(f"comments ({match.group()!r} at position {position}) are not allowed")
        if kind in ("string", "qident") and ("\\" in match.group() or _CONTROL.search(match.group())):
            raise SqlSyntaxError(f"quoted text at position {position} contains a backslash or a control character")
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


# ---------------------------------------------------------------- filter grammar

COMPARISON_OPERATORS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FILTER_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "TRUE", "FALSE"}


@dataclass(frozen=True)
class Predicate:
    """``column <op> literal``, ``column IS [NOT] NULL`` or ``column IN (literals)``, literals already rendered."""

    column: str
    operator: str  # a comparison, "IS NULL", "IS NOT NULL" or "IN"
    literals: tuple[str, ...] = ()

    def render(self, alias: str) -> str:
        column = f"{alias}.{quote_identifier(self.column)}"
        if self.operator in ("IS NULL", "IS NOT NULL"):
            return f"{column} {self.operator}"
        if self.operator == "IN":
            return f"{column} IN ({', '.join(self.literals)})"
        return f"{column} {self.operator} {self.literals[0]}"


class _Cursor:
    def __init__(self, tokens: list[Token]):
        self.tokens, self.index = tokens, 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str) -> Token:
        token = self.peek()
        if token is None:
            raise SqlSyntaxError(f"expected {expected} but the text ended")
        self.index += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        """Consume the next token if it is ``text`` of ``kind`` (words compare case-insensitively)."""
        token = self.peek()
        if token is not None and token.kind == kind and (token.upper if kind == "word" else token.text) == text:
            self.index += 1
            return True
        return False


def _unexpected(token: Token, expected: str) -> SqlSyntaxError:
    return SqlSyntaxError(f"expected {expected} at position {token.position}, got {token.text!r}")


def _literal(cursor: _Cursor) -> str:
    """number | -number | TRUE | FALSE | 'string', rendered afresh from the token."""
    negative = cursor.accept("op", "-")
    token = cursor.take("a literal (number, true/false or a 'quoted string')")
    if token.kind == "number":
        return ("-" if negative else "") + token.text
    if negative:
        raise _unexpected(token, "a number after '-'")
    if token.kind == "word" and token.upper in ("TRUE", "FALSE"):
        return token.upper
    if token.kind == "string":
        return quote_literal(token.string_value())
    raise _unexpected(token, "a literal (number, true/false or a 'quoted string')")


def _predicate(cursor: _Cursor) -> Predicate:
    token = cursor.take("a column name")
    if token.kind != "word" or token.upper in _FILTER_KEYWORDS:
        raise _unexpected(token, "a plain column name")
    column = token.text
    quote_identifier(column)  # length and character rules
    if cursor.accept("word", "IS"):
        negated = cursor.accept("word", "NOT")
        null = cursor.take("NULL")
        if null.kind != "word" or null.upper != "NULL":
            raise _unexpected(null, "NULL")
        return Predicate(column, "IS NOT NULL" if negated else "IS NULL")
    if cursor.accept("word", "IN"):
        opening = cursor.take("'('")
        if opening.text != "(":
            raise _unexpected(opening, "'('")
        literals = [_literal(cursor)]
        while cursor.accept("op", ","):
            literals.append(_literal(cursor))
        closing = cursor.take("')'")
        if closing.text != ")":
            raise _unexpected(closing, "',' or ')'")
        return Predicate(column, "IN", tuple(literals))
    operator = cursor.take("a comparison operator")
    if operator.kind != "op" or operator.text not in COMPARISON_OPERATORS:
        raise _unexpected(operator, "a comparison (=, <>, !=, <, <=, >, >=), IS [NOT] NULL or IN (...)")
    return Predicate(column, COMPARISON_OPERATORS[operator.text], (_literal(cursor),))


def parse_condition(text: str) -> list[Predicate]:
    """Parse ``<column> <op> <literal> [AND ...]`` (also ``IS [NOT] NULL`` and ``IN (...)``).

    Nothing else is accepted: no OR, no functions, no expressions, no quoted identifiers. The
    result is rendered again from the parsed tokens by :func:`render_condition`.
    """
    tokens = tokenize(text)
    if not tokens:
        raise SqlSyntaxError("the condition is empty")
    cursor = _Cursor(tokens)
    predicates = [_predicate(cursor)]
    while (token := cursor.peek()) is not None:
        if not cursor.accept("word", "AND"):
            raise _unexpected(token, "AND or the end of the condition (only AND may join conditions)")
        predicates.append(_predicate(cursor))
    return predicates


def render_condition(predicates: list[Predicate], alias: str) -> str:
    return " AND ".join(p.render(alias) for p in predicates)


# ---------------------------------------------------------------- full SELECT

FORBIDDEN_KEYWORDS = frozenset(
    {
        "UNLOAD", "INSERT", "DELETE", "DROP", "COPY", "CREATE", "GRANT", "REVOKE", "ALTER", "UPDATE",
        "TRUNCATE", "MERGE", "INTO", "CALL", "EXECUTE", "EXEC", "VACUUM", "ANALYZE", "SET", "RESET",
        "BEGIN", "COMMIT", "ROLLBACK", "LOCK", "PREPARE", "DEALLOCATE", "DECLARE", "FETCH", "CLOSE",
    }
)  # fmt: skip


def validate_select(sql: str) -> str:
    """Check that ``sql`` is one SELECT that can be wrapped as a subquery; returns it stripped.

    Refused: anything :func:`tokenize` refuses (';', comments, backslashes, '$'), a first word other
    than SELECT, DDL/DML keywords outside string literals and quoted identifiers, and parentheses
    that close more than they open (which could end the wrapping subquery early).
    """
    tokens = tokenize(sql)
    if not tokens or tokens[0].kind != "word" or tokens[0].upper != "SELECT":
        raise SqlSyntaxError("must be a single SELECT statement starting with SELECT")
    depth = 0
    for token in tokens:
        if token.kind == "word" and token.upper in FORBIDDEN_KEYWORDS:
            raise SqlSyntaxError(f"keyword {token.upper} at position {token.position} is not allowed in a SELECT")
        if token.kind == "op" and token.text in "()":
            depth += 1 if token.text == "(" else -1
            if depth < 0:
                raise SqlSyntaxError(f"unbalanced ')' at position {token.position}")
    if depth:
        raise SqlSyntaxError("unbalanced parentheses: a '(' is never closed")
    return sql.strip()


# ---------------------------------------------------------------- pre_sql / post_sql of the join's COPY

# The kinds of statement pre_sql/post_sql may be, by their leading words. Anything else is refused:
# SELECT (its rows would go nowhere), DROP/ALTER/GRANT/REVOKE (schema and privilege changes belong to
# the warehouse's owners, not a job spec), COPY/UNLOAD, transaction control (the batch is already one
# transaction), SET/CALL/VACUUM (VACUUM cannot run inside a transaction) and TRUNCATE: Redshift's
# TRUNCATE commits the open transaction, so a COPY failing after it would leave the table empty
# (``DELETE FROM <schema>.<table>`` does the same inside the transaction).
USER_STATEMENT_KINDS = {
    ("DELETE", "FROM"): "DELETE",
    ("INSERT", "INTO"): "INSERT",
    ("UPDATE",): "UPDATE",
    ("CREATE", "TABLE", "IF", "NOT", "EXISTS"): "CREATE TABLE IF NOT EXISTS",
    ("ANALYZE",): "ANALYZE",
}
# Functions that act on other sessions or on settings even inside a DML statement.
FORBIDDEN_FUNCTIONS = frozenset({"PG_TERMINATE_BACKEND", "PG_CANCEL_BACKEND", "SET_CONFIG"})
_USER_STATEMENT_RULE = (
    "each entry is ONE statement (no ';', no comments, no backslashes or '$') of kind DELETE FROM, "
    "INSERT INTO, UPDATE, CREATE TABLE IF NOT EXISTS or ANALYZE, whose target table is qualified with the "
    "destination schema"
)


@dataclass(frozen=True)
class UserStatement:
    """One validated pre_sql/post_sql entry: its kind, its target table and its text (stripped).

    ``where`` is the condition text after a DELETE's WHERE (``None``: no WHERE, every row), ``using``
    whether the DELETE has a USING clause; both are used only by the local warehouse.
    """

    kind: str
    schema: str
    table: str
    sql: str
    where: str | None = None
    using: bool = False


def _identifier_token(token: Token | None, what: str) -> str:
    """The name in a plain (``name``) or quoted (``"name"``) identifier token, checked to be plain."""
    if token is None:
        raise SqlSyntaxError(f"expected {what} but the text ended")
    if token.kind == "word":
        name = token.text
    elif token.kind == "qident":
        name = token.text[1:-1]
    else:
        raise _unexpected(token, what)
    if not _IDENTIFIER.match(name):
        raise SqlSyntaxError(f"{what} at position {token.position} is not a plain identifier: {token.text!r}")
    return name


def validate_user_statement(sql: str, *, schema: str) -> UserStatement:
    """Check one ``pre_sql`` / ``post_sql`` entry of a Redshift join destination.

    The rule: one statement (``;`` is refused: the spec's list holds one statement per entry), no
    comments, backslashes or ``$``; it starts with DELETE FROM, INSERT INTO, UPDATE, CREATE TABLE IF
    NOT EXISTS or ANALYZE (see :data:`USER_STATEMENT_KINDS` for why the others are refused); its
    target is ``<schema>.<table>`` with ``schema`` the destination's schema (plain or double-quoted
    identifiers, compared case-insensitively as Redshift folds them); after the target no keyword of
    :data:`FORBIDDEN_KEYWORDS` appears outside quotes (UPDATE's one SET excepted), no function of
    :data:`FORBIDDEN_FUNCTIONS` is called, and parentheses balance. The text that runs is the entry
    itself, stripped: it is checked, not rewritten.
    """
    try:
        tokens = tokenize(sql)
    except SqlSyntaxError as exc:
        if "';'" in str(exc):
            raise SqlSyntaxError(
                "';' is not allowed: one statement per entry (give each statement as its own list entry)"
            ) from None
        raise
    words = tuple(t.upper if t.kind == "word" else "" for t in tokens[:5])
    kind = next((k for lead, k in USER_STATEMENT_KINDS.items() if words[: len(lead)] == lead), None)
    if not tokens:
        raise SqlSyntaxError(f"the statement is empty: {_USER_STATEMENT_RULE}")
    if kind is None:
        first = tokens[0].upper if tokens[0].kind == "word" else tokens[0].text
        why = (
            " (Redshift's TRUNCATE commits the batch's transaction; DELETE FROM <schema>.<table> empties it inside it)"
            if first == "TRUNCATE"
            else ""
        )
        raise SqlSyntaxError(f"a statement starting with {first} is not allowed{why}: {_USER_STATEMENT_RULE}")
    lead = next(len(lead) for lead, k in USER_STATEMENT_KINDS.items() if k == kind)
    cursor = _Cursor(tokens)
    cursor.index = lead
    target_schema = _identifier_token(cursor.peek(), "the target's schema")
    cursor.index += 1
    if not cursor.accept("op", "."):
        raise SqlSyntaxError(
            f"the target of {kind} must be qualified with the destination schema: {schema}.<table>"
        )
    target_table = _identifier_token(cursor.peek(), "the target's table name")
    cursor.index += 1
    if target_schema.lower() != schema.lower():
        raise SqlSyntaxError(
            f"{kind} targets schema {target_schema!r}; pre_sql/post_sql may only change the destination schema "
            f"{schema!r}"
        )
    body = tokens[cursor.index :]
    if kind == "UPDATE" and body and body[0].kind == "word" and body[0].upper == "SET":
        body = body[1:]
    depth = 0
    for token in body:
        if token.kind == "word" and token.upper in FORBIDDEN_KEYWORDS:
            raise SqlSyntaxError(f"keyword {token.upper} at position {token.position} is not allowed in {kind}")
        if token.kind == "word" and token.upper in FORBIDDEN_FUNCTIONS:
            raise SqlSyntaxError(f"function {token.upper} at position {token.position} is not allowed")
        if token.kind == "op" and token.text in "()":
            depth += 1 if token.text == "(" else -1
            if depth < 0:
                raise SqlSyntaxError(f"unbalanced ')' at position {token.position}")
    if depth:
        raise SqlSyntaxError("unbalanced parentheses: a '(' is never closed")
    where, using = None, False
    if kind == "DELETE" and body:
        using = body[0].kind == "word" and body[0].upper == "USING"
        if not using:
            if body[0].kind != "word" or body[0].upper != "WHERE" or len(body) == 1:
                raise _unexpected(body[0], "WHERE <condition>, USING ... or the end of the DELETE")
            where = sql[body[1].position :].strip()
    return UserStatement(kind, target_schema, target_table, sql.strip(), where, using)


def _utc(value: datetime, what: str) -> datetime:
    """``value`` as a naive UTC datetime (a naive one is taken as UTC already)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def render_window_delete(
    schema: str, table: str, *, start: datetime, end: datetime, column: str = "window_end_ts"
) -> str:
    """``DELETE FROM "schema"."table" WHERE "column" BETWEEN TIMESTAMP '<start>' AND TIMESTAMP '<end>'``.

    The statement a re-run puts first in pre_sql so that loading a window again replaces its rows
    instead of adding them twice. Both bounds are inclusive (BETWEEN); times are rendered in UTC (a
    naive datetime is taken as UTC), matching the UTC ``window_end_ts`` of the features. Names are
    quoted by :func:`quote_identifier`; the timestamps are rendered from the datetimes, not from text.
    """
    first, last = _utc(start, "start"), _utc(end, "end")
    if last < first:
        raise ValueError(f"window delete: end {last} is before start {first} (UTC)")
    return (
        f"DELETE FROM {quote_identifier(schema)}.{quote_identifier(table)} WHERE {quote_identifier(column)} "
        f"BETWEEN TIMESTAMP '{first.isoformat(sep=' ')}' AND TIMESTAMP '{last.isoformat(sep=' ')}'"
    )


def with_window_delete(
    destination: JoinRedshiftDestination, *, start: datetime, end: datetime, column: str = "window_end_ts"
) -> JoinRedshiftDestination:
    """The destination with :func:`render_window_delete` of its table put before its own pre_sql."""
    statement = render_window_delete(destination.schema_name, destination.table, start=start, end=end, column=column)
    return destination.model_copy(update={"pre_sql": [statement, *destination.pre_sql]})


IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
COPY_STATEMENT_NAME = "ndr-prediction-feature-join-copy"


@dataclass(frozen=True)
class CopyPlan:
    """A checked ``copy_parquet_into`` request: the validated pre/post statements and quoted names."""

    pre: tuple[UserStatement, ...]
    post: tuple[UserStatement, ...]
    target: str  # "schema"."table"
    columns: tuple[str, ...]
    source: str  # the staged prefix of Spark's part files: <staged_uri>/part-


def plan_copy(
    destination: JoinRedshiftDestination, *, staged_uri: str, columns: list[str], project: str, item: str
) -> CopyPlan:
    """Validate everything a COPY takes from the spec and the caller before anything runs.

    Spec problems raise :class:`SpecError` with the key (``destination.redshift.pre_sql[1]``, ...);
    a staged URI that is not an ``s3://`` URI under ``staging_s3_prefix`` (or holds a quote) and an
    empty, duplicated or non-identifier column list raise :class:`WarehouseError`.
    """
    key = "destination.redshift"

    def statements(name: str, entries: list[str]) -> tuple[UserStatement, ...]:
        checked = []
        for index, entry in enumerate(entries):
            try:
                checked.append(validate_user_statement(entry, schema=destination.schema_name))
            except SqlSyntaxError as exc:
                raise SpecError(project, item, f"{key}.{name}[{index}]", str(exc)) from None
        return tuple(checked)

    if not IAM_ROLE_ARN.match(destination.iam_role):
        raise SpecError(project, item, f"{key}.iam_role", f"not an IAM role ARN: {destination.iam_role!r}")
    pre, post = statements("pre_sql", destination.pre_sql), statements("post_sql", destination.post_sql)
    where = f"project '{project}', item '{item}'"
    if "'" in staged_uri or _CONTROL.search(staged_uri) or any(c.isspace() for c in staged_uri):
        raise WarehouseError(f"{where}: staged URI contains a quote, a space or a control character: {staged_uri!r}")
    try:
        split_s3_uri(staged_uri)
    except InputDataError as exc:
        raise WarehouseError(f"{where}: staged URI {staged_uri!r}: {exc.problem}") from None
    prefix = destination.staging_s3_prefix.rstrip("/") + "/"
    if not (staged_uri.rstrip("/") + "/").startswith(prefix):
        raise WarehouseError(
            f"{where}: staged URI {staged_uri!r} is not under {key}.staging_s3_prefix {destination.staging_s3_prefix!r}"
        )
    if not columns or len({c.lower() for c in columns}) != len(columns):
        raise WarehouseError(f"{where}: the COPY column list is empty or names a column twice: {columns}")
    try:
        quoted = tuple(quote_identifier(c) for c in columns)
    except SqlSyntaxError as exc:
        raise WarehouseError(f"{where}: COPY column list: {exc}") from None
    target = f"{quote_identifier(destination.schema_name)}.{quote_identifier(destination.table)}"
    return CopyPlan(pre, post, target, quoted, join_uri(staged_uri, SPARK_PART_FILE_PREFIX))


# ---------------------------------------------------------------- the resource


@dataclass(frozen=True)
class UnloadRequest:
    """One unload: run ``select_sql`` and write its rows as Parquet files under ``destination_uri``.

    ``select_sql`` may reference :data:`EXISTING_IPS_TABLE` (column :data:`EXISTING_IP_COLUMN`),
    which holds the rows of the Parquet folder ``existing_ips_uri`` (written by Spark; ``None`` means
    no IPs). ``destination_uri`` is an empty prefix. ``connection`` is the spec's Redshift block.
    """

    connection: RedshiftConnection
    select_sql: str
    existing_ips_uri: str | None
    destination_uri: str


@dataclass(frozen=True)
class CopyOutcome:
    """What ``copy_parquet_into`` did: rows the COPY loaded, the statements run in order, wall time."""

    rows_loaded: int
    statements: tuple[str, ...]
    seconds: float


class Warehouse(dg.ConfigurableResource, ABC):
    """Runs the inventory SELECT against the dimension tables and writes its rows as Parquet."""

    @abstractmethod
    def unload_new_machines(self, spark: Any, request: UnloadRequest) -> int:
        """Execute the request; returns the number of rows the warehouse reports it wrote (the
        caller verifies the files against it)."""

    @abstractmethod
    def copy_parquet_into(
        self,
        *,
        destination: JoinRedshiftDestination,
        staged_uri: str,
        columns: list[str],
        project: str,
        item: str,
        spark: Any = None,
    ) -> CopyOutcome:
        """Run ``destination.pre_sql``, load the ``part-*`` Parquet files under ``staged_uri`` into
        ``<schema>.<table>`` (``columns``, in the files' column order), run ``destination.post_sql``.

        Spec problems raise :class:`SpecError` naming ``project``, ``item`` and the key; a failed or
        timed-out load raises :class:`WarehouseError` naming the project and the item.
        """


# ---------------------------------------------------------------- Redshift (production)

TERMINAL_STATUSES = ("FINISHED", "FAILED", "ABORTED")


def redshift_unload_statements(
    select_sql: str, *, existing_ips_uri: str | None, destination_uri: str, iam_role: str
) -> list[str]:
    """The batch run in one Redshift session: temp table, COPY of the existing IPs, UNLOAD, row count.

    COPY reads only ``part-*`` objects of the existing-IPs folder (Spark's data files, never its
    ``_SUCCESS`` marker) and is left out when there are no existing IPs. UNLOAD writes
    ``<destination>/part_NNNN_part_NN.parquet``; ``pg_last_unload_count()`` is what it wrote.
    """
    role = quote_literal(iam_role)
    table = quote_identifier(EXISTING_IPS_TABLE)
    statements = [f"CREATE TEMP TABLE {table} ({quote_identifier(EXISTING_IP_COLUMN)} VARCHAR(64))"]
    if existing_ips_uri is not None:
        split_s3_uri(existing_ips_uri)
        source = quote_literal(join_uri(existing_ips_uri, SPARK_PART_FILE_PREFIX))
        statements.append(f"COPY {table} FROM {source} IAM_ROLE {role} FORMAT AS PARQUET")
    split_s3_uri(destination_uri)
    target = quote_literal(join_uri(destination_uri, "part_"))
    statements.append(f"UNLOAD ('{escape_unload_query(select_sql)}') TO {target} IAM_ROLE {role} FORMAT AS PARQUET")
    statements.append("SELECT pg_last_unload_count()")
    return statements


def redshift_batch_request(
    connection: RedshiftConnection, statements: list[str], statement_name: str
) -> dict[str, Any]:
    """``BatchExecuteStatement`` arguments: a ``db_user`` means temporary credentials, else the secret."""
    request: dict[str, Any] = {
        "Sqls": statements,
        "ClusterIdentifier": connection.cluster_identifier,
        "Database": connection.database,
        "StatementName": statement_name,
    }
    if connection.db_user:
        request["DbUser"] = connection.db_user
    else:
        request["SecretArn"] = connection.secret_arn
    return request


def statement_failure_message(connection: RedshiftConnection, description: dict[str, Any]) -> str:
    """Cluster, statement id, status, and Redshift's own error (of the failing sub-statement if any)."""
    status = description.get("Status", "UNKNOWN")
    where = f"Redshift cluster '{connection.cluster_identifier}' database '{connection.database}'"
    message = f"{where}: statement {description.get('Id')} ended {status}"
    failed = [s for s in description.get("SubStatements") or [] if s.get("Status") in ("FAILED", "ABORTED")]
    error = description.get("Error") or (failed[0].get("Error") if failed else None)
    if failed:
        query = " ".join(str(failed[0].get("QueryString", "")).split())[:120]
        message += f" at sub-statement {failed[0].get('Id')} ({query})"
    return message + (f": {error}" if error else "")


def redshift_copy_statements(plan: CopyPlan, *, iam_role: str) -> list[str]:
    """The batch of a join COPY, one transaction: pre_sql, COPY, its row count, post_sql.

    COPY reads the ``part-*`` objects under the staged prefix (Spark's data files, not ``_SUCCESS``)
    into the listed columns. For Parquet, COPY maps the files' columns by position and the table must
    have as many columns as the files (AWS, "COPY from columnar data formats"), so the staged files
    hold exactly ``columns`` in that order and the table has exactly those columns; the local
    warehouse enforces the same. ``pg_last_copy_count()`` runs right after the COPY, so
    post_sql cannot change what it reports.
    """
    columns = ", ".join(plan.columns)
    copy = (
        f"COPY {plan.target} ({columns}) FROM {quote_literal(plan.source)} "
        f"IAM_ROLE {quote_literal(iam_role)} FORMAT AS PARQUET"
    )
    return [s.sql for s in plan.pre] + [copy, "SELECT pg_last_copy_count()"] + [s.sql for s in plan.post]


def sub_statement_id(description: dict[str, Any], position: int) -> str:
    """The id of the ``position``-th (1-based) statement of a batch: from ``SubStatements`` when the
    description lists them, else ``<batch id>:<position>`` (the Data API's naming of sub-statements)."""
    subs = description.get("SubStatements") or []
    if len(subs) >= position and subs[position - 1].get("Id"):
        return str(subs[position - 1]["Id"])
    return f"{description['Id']}:{position}"


class RedshiftWarehouse(Warehouse):
    """Redshift through the Data API (``endpoint_url`` points at moto in tests).

    The connection (cluster, database, secret or db user, region, IAM role) comes from each project's
    ``machine_inventory_unload`` spec; the resource only holds how to reach and poll the API.
    """

    endpoint_url: str | None = None
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 15.0
    timeout_seconds: float = 3600.0
    max_attempts: int = 5  # per API call, botocore's standard retry mode (throttling, 5xx)

    def _client(self, connection: RedshiftConnection) -> Any:
        import boto3
        from botocore.config import Config

        retries = Config(retries={"mode": "standard", "max_attempts": self.max_attempts})
        return boto3.client(
            "redshift-data", region_name=connection.region, endpoint_url=self.endpoint_url, config=retries
        )

    def _call(self, connection: RedshiftConnection, operation: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise WarehouseError(
                f"Redshift cluster '{connection.cluster_identifier}' database '{connection.database}': "
                f"{operation} failed: {exc}"
            ) from exc

    def submit(self, connection: RedshiftConnection, statements: list[str], statement_name: str) -> str:
        """Start the statements as one batch (one session, one transaction); returns the statement id."""
        client = self._client(connection)
        request = redshift_batch_request(connection, statements, statement_name)
        return self._call(connection, "BatchExecuteStatement", client.batch_execute_statement, **request)["Id"]

    def wait(self, connection: RedshiftConnection, statement_id: str) -> dict[str, Any]:
        """Poll ``DescribeStatement`` with exponential backoff until FINISHED; FAILED, ABORTED or a
        timeout (the statement is then cancelled) raise :class:`WarehouseError`."""
        client = self._client(connection)
        deadline = time.monotonic() + self.timeout_seconds
        delay = self.poll_initial_seconds
        while True:
            description = self._call(connection, "DescribeStatement", client.describe_statement, Id=statement_id)
            status = description.get("Status")
            if status == "FINISHED":
                return description
            if status in TERMINAL_STATUSES:
                raise WarehouseError(statement_failure_message(connection, description))
            if time.monotonic() + delay > deadline:
                self._call(connection, "CancelStatement", client.cancel_statement, Id=statement_id)
                raise WarehouseError(
                    f"Redshift cluster '{connection.cluster_identifier}' database '{connection.database}': "
                    f"statement {statement_id} still {status} after {self.timeout_seconds:g} s; cancelled"
                )
            time.sleep(delay)
            delay = min(delay * 2, self.poll_max_seconds)

    def first_long_value(self, connection: RedshiftConnection, statement_id: str) -> int:
        """The first column of the first row of a (sub-)statement's result, as an integer."""
        client = self._client(connection)
        result = self._call(connection, "GetStatementResult", client.get_statement_result, Id=statement_id)
        try:
            return int(result["Records"][0][0]["longValue"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise WarehouseError(
                f"Redshift cluster '{connection.cluster_identifier}': statement {statement_id} returned no row count"
            ) from exc

    def unload_new_machines(self, spark: Any, request: UnloadRequest) -> int:
        connection = request.connection
        statements = redshift_unload_statements(
            request.select_sql,
            existing_ips_uri=request.existing_ips_uri,
            destination_uri=request.destination_uri,
            iam_role=connection.iam_role,
        )
        statement_id = self.submit(connection, statements, "ndr-machine-inventory-unload")
        description = self.wait(connection, statement_id)
        sub_statements = description.get("SubStatements") or []
        count_id = sub_statements[-1]["Id"] if sub_statements else f"{statement_id}:{len(statements)}"
        return self.first_long_value(connection, count_id)

    def await_copy(
        self, destination: JoinRedshiftDestination, statement_id: str, *, count_position: int, project: str, item: str
    ) -> int:
        """Wait for a submitted COPY batch and read the rows it loaded from its count sub-statement.

        FAILED / ABORTED (with Redshift's error of the failing sub-statement) and a timeout (the batch
        is then cancelled, so the transaction rolls back) raise :class:`WarehouseError` naming the
        project, the item and the target table.
        """
        try:
            description = self.wait(destination, statement_id)
            return self.first_long_value(destination, sub_statement_id(description, count_position))
        except WarehouseError as exc:
            raise WarehouseError(_copy_failure_prefix(destination, project, item) + str(exc)) from exc

    def copy_parquet_into(
        self,
        *,
        destination: JoinRedshiftDestination,
        staged_uri: str,
        columns: list[str],
        project: str,
        item: str,
        spark: Any = None,
    ) -> CopyOutcome:
        """One ``BatchExecuteStatement`` (one transaction): pre_sql, COPY, ``pg_last_copy_count()``,
        post_sql; polled with backoff, cancelled on timeout. ``spark`` is not used."""
        started = time.monotonic()
        plan = plan_copy(destination, staged_uri=staged_uri, columns=columns, project=project, item=item)
        statements = redshift_copy_statements(plan, iam_role=destination.iam_role)
        try:
            statement_id = self.submit(destination, statements, COPY_STATEMENT_NAME)
        except WarehouseError as exc:
            raise WarehouseError(_copy_failure_prefix(destination, project, item) + str(exc)) from exc
        rows = self.await_copy(
            destination, statement_id, count_position=len(plan.pre) + 2, project=project, item=item
        )
        return CopyOutcome(rows_loaded=rows, statements=tuple(statements), seconds=time.monotonic() - started)


def _copy_failure_prefix(destination: JoinRedshiftDestination, project: str, item: str) -> str:
    return f"project '{project}', item '{item}': COPY into {destination.schema_name}.{destination.table} failed: "


# ---------------------------------------------------------------- local (embedded default)

# Spark's catalog, temp views and SQL settings belong to the session: one local unload at a time.
_LOCAL_LOCK = threading.Lock()
_ANSI_IDENTIFIER_CONF = {"spark.sql.ansi.enabled": "true", "spark.sql.ansi.doubleQuotedIdentifiers": "true"}


@contextmanager
def _spark_conf(spark: Any, settings: dict[str, str]) -> Iterator[None]:
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


class LocalWarehouse(Warehouse):
    """Tables as Parquet folders in the local lake, queried with Spark SQL.

    ``tables_uri`` (e.g. ``s3://my-bucket/warehouse/``) holds ``<schema>/<table>/`` folders; the lake
    maps it onto ``lake_root`` like every other URI. There is no default location: the platform does
    not know where a deployment keeps its tables, so using the warehouse without one is an error
    that says what to set (``NDR_WAREHOUSE_TABLES_URI`` on the embedded defaults).
    """

    lake_root: str
    tables_uri: str | None = None

    def _lake(self) -> LocalLake:
        return LocalLake(root=self.lake_root)

    @property
    def location(self) -> str:
        """``tables_uri``, which every use of the warehouse needs."""
        if not self.tables_uri:
            raise WarehouseError(
                "the local warehouse has no tables location: set NDR_WAREHOUSE_TABLES_URI to the s3:// prefix "
                "of its <schema>/<table>/ Parquet folders (`ndr generate` writes dim.machines under "
                "s3://<bucket>/warehouse/)"
            )
        return self.tables_uri

    def table_uri(self, schema: str, table: str) -> str:
        return join_uri(self.location, schema, table) + "/"

    def tables(self) -> list[tuple[str, str]]:
        """Every ``(schema, table)`` folder under ``tables_uri`` whose names are plain identifiers."""
        lake = self._lake()
        return [
            (schema, table)
            for schema in lake.list_children(self.location)
            if _IDENTIFIER.match(schema)
            for table in lake.list_children(join_uri(self.location, schema) + "/")
            if _IDENTIFIER.match(table)
        ]

    def register_tables(self, spark: Any) -> list[str]:
        """Make ``<schema>.<table>`` resolve in Spark SQL: a database per schema, an external table per folder.

        Tables are re-created on every call, so new partition folders and a moved lake are picked up.
        """
        registered = []
        for schema, table in self.tables():
            uri = self.table_uri(schema, table)
            path = str(local_path_for(uri, self.lake_root))
            name = f"`{schema}`.`{table}`"  # plain identifiers (checked by tables())
            schema_path = str(local_path_for(join_uri(self.location, schema) + "/", self.lake_root))
            try:
                spark.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}` LOCATION {quote_literal(schema_path)}")
                spark.sql(f"DROP TABLE IF EXISTS {name}")
                spark.catalog.createTable(f"{schema}.{table}", path=path, source="parquet")
                if any(column.isPartition for column in spark.catalog.listColumns(f"{schema}.{table}")):
                    spark.catalog.recoverPartitions(f"{schema}.{table}")
            except Exception as exc:  # Spark's analysis errors: name the folder that cannot be a table
                problem = f"cannot register table {schema}.{table} in the local warehouse: {exc}"
                raise InputDataError(uri, problem) from exc
            registered.append(f"{schema}.{table}")
        return registered

    def unload_new_machines(self, spark: Any, request: UnloadRequest) -> int:
        import pyarrow.parquet as pq
        from pyspark.sql import types as T

        lake = self._lake()
        with _LOCAL_LOCK, _spark_conf(spark, _ANSI_IDENTIFIER_CONF):
            self.register_tables(spark)
            schema = T.StructType([T.StructField(EXISTING_IP_COLUMN, T.StringType(), True)])
            existing = (
                spark.read.schema(schema).parquet(lake.spark_uri(request.existing_ips_uri))
                if request.existing_ips_uri is not None
                else spark.createDataFrame([], schema)
            )
            existing.createOrReplaceTempView(EXISTING_IPS_TABLE)
            try:
                result = spark.sql(request.select_sql)
                result.write.mode("errorifexists").parquet(lake.spark_uri(request.destination_uri))
            except Exception as exc:  # AnalysisException & co: the message names the missing table/column
                raise WarehouseError(
                    f"local warehouse at {self.location}: the inventory SELECT failed: {exc}"
                ) from exc
            finally:
                spark.catalog.dropTempView(EXISTING_IPS_TABLE)
        # The row count from the Parquet footers: the caller's verification counts the rows itself.
        written = [uri for uri in lake.list_objects(request.destination_uri) if uri.endswith(".parquet")]
        return sum(pq.ParquetFile(lake.spark_uri(uri)).metadata.num_rows for uri in written)

    # ------------------------------------------------------------ the join's COPY

    def _parquet_files(self, uri: str, *, part_files_only: bool) -> list[str]:
        names = self._lake().list_objects(uri)
        return [
            u for u in names
            if u.endswith(".parquet") and not any(p.startswith((".", "_")) for p in u[len(uri):].split("/"))
            and (not part_files_only or u.rsplit("/", 1)[-1].startswith(SPARK_PART_FILE_PREFIX))
        ]  # fmt: skip

    def _delete_rows(self, spark: Any, statement: UserStatement, schema: str, table: str, where: str) -> int:
        """DELETE by rewriting ``<schema>/<table>/``: the kept rows are written to a hidden sibling
        folder, which then replaces the table's folder. An absent table has no rows to delete."""
        uri = self.table_uri(schema, table)
        if not self._parquet_files(uri, part_files_only=False):
            return 0
        self.register_tables(spark)
        name = f"`{schema}`.`{table}`"  # plain identifiers (checked by validate_user_statement)
        if any(column.isPartition for column in spark.catalog.listColumns(f"{schema}.{table}")):
            raise WarehouseError(f"{where}: table {schema}.{table} has partition folders; DELETE rewrites flat tables only")
        condition = f"coalesce(({statement.where or 'TRUE'}), FALSE)"
        doomed = spark.sql(f"SELECT count(*) FROM {name} WHERE {condition}").first()[0]
        if doomed:
            lake, token = self._lake(), uuid.uuid4().hex
            schema_uri = join_uri(self.location, schema)
            rewrite = join_uri(schema_uri, f".{table}.rewrite-{token}") + "/"
            replaced = join_uri(schema_uri, f".{table}.replaced-{token}") + "/"
            spark.sql(f"SELECT * FROM {name} WHERE NOT {condition}").write.parquet(lake.spark_uri(rewrite))
            lake.move_prefix(uri, replaced)
            lake.move_prefix(rewrite, uri)
            lake.delete_prefix(replaced)
        return int(doomed)

    def _append(self, spark: Any, files: list[str], plan: CopyPlan, schema: str, table: str, where: str) -> int:
        lake = self._lake()
        staged = spark.read.parquet(*[lake.spark_uri(f) for f in files])
        columns = [c.strip('"') for c in plan.columns]
        if staged.columns != columns:
            raise WarehouseError(
                f"{where}: the staged files' columns {staged.columns} are not the COPY column list {columns} "
                "(COPY maps Parquet columns by position)"
            )
        uri = self.table_uri(schema, table)
        if self._parquet_files(uri, part_files_only=False):
            existing = spark.read.parquet(lake.spark_uri(uri)).schema
            have = {f.name: f.dataType for f in existing.fields}
            given = {f.name: f.dataType for f in staged.schema.fields}
            if set(have) != set(given):
                raise WarehouseError(
                    f"{where}: table {schema}.{table} has columns {sorted(have)}, the staged files {sorted(given)}"
                )
            differing = sorted(n for n in have if have[n] != given[n])
            if differing:
                detail = ", ".join(f"{n} {have[n].simpleString()} vs {given[n].simpleString()}" for n in differing)
                raise WarehouseError(f"{where}: table {schema}.{table} and the staged files differ in type: {detail}")
            staged = staged.select(*existing.fieldNames())
        rows = staged.count()
        staged.write.mode("append").parquet(lake.spark_uri(uri))
        return int(rows)

    def copy_parquet_into(
        self,
        *,
        destination: JoinRedshiftDestination,
        staged_uri: str,
        columns: list[str],
        project: str,
        item: str,
        spark: Any = None,
    ) -> CopyOutcome:
        """Append the staged ``part-*`` Parquet files to the lake table ``<tables_uri>/<schema>/<table>/``.

        The embedded warehouse has no SQL engine that changes Parquet tables, so of pre_sql/post_sql it
        runs only what it can do faithfully and refuses the rest before anything runs
        (:class:`SpecError` naming the key):

        - ``DELETE FROM <schema>.<table> [WHERE <condition>]`` is applied by rewriting the table's
          folder without the rows for which the condition (Spark SQL, ANSI, double-quoted identifiers)
          is true; on a table that does not exist yet it deletes nothing. ``DELETE ... USING`` is refused.
        - ``CREATE TABLE IF NOT EXISTS`` and ``ANALYZE`` are accepted and do nothing: the first append
          creates the table with the staged files' schema, and there are no statistics to refresh.
        - INSERT and UPDATE are refused.

        The steps are not one transaction here: a failure after a DELETE leaves it applied. Re-running
        the same call restores the intended state when pre_sql deletes the rows being loaded (see
        :func:`with_window_delete`); without such a DELETE, every run appends its rows again.
        ``rows_loaded`` is the number of staged rows appended.
        """
        started = time.monotonic()
        plan = plan_copy(destination, staged_uri=staged_uri, columns=columns, project=project, item=item)
        for name, statements in (("pre_sql", plan.pre), ("post_sql", plan.post)):
            for index, statement in enumerate(statements):
                if statement.kind in ("INSERT", "UPDATE") or statement.using:
                    what = "DELETE ... USING" if statement.using else statement.kind
                    raise SpecError(
                        project, item, f"destination.redshift.{name}[{index}]",
                        f"{what} cannot run on the embedded warehouse (Parquet tables in the lake): it applies "
                        "DELETE FROM <schema>.<table> [WHERE ...] by rewriting the table and takes CREATE TABLE "
                        "IF NOT EXISTS and ANALYZE as no-ops",
                    )  # fmt: skip
        where = f"project '{project}', item '{item}': COPY into {destination.schema_name}.{destination.table}"
        if spark is None:
            raise WarehouseError(f"{where}: the local warehouse needs the Spark session (spark=...)")
        files = self._parquet_files(staged_uri, part_files_only=True)
        if not files:
            raise WarehouseError(f"{where}: no part-*.parquet files under the staged URI {staged_uri}")

        def table_of(statement: UserStatement) -> str:
            same = statement.table.lower() == destination.table.lower()
            return destination.table if same else statement.table

        def run(name: str, statements: tuple[UserStatement, ...]) -> None:
            for index, statement in enumerate(statements):
                if statement.kind != "DELETE":
                    continue
                step = f"{where}: destination.redshift.{name}[{index}]"
                try:
                    self._delete_rows(spark, statement, destination.schema_name, table_of(statement), step)
                except WarehouseError:
                    raise
                except Exception as exc:  # Spark's analysis errors name the unknown column or table
                    raise WarehouseError(f"{step} failed on the local warehouse: {exc}") from exc

        copy = f"COPY {plan.target} ({', '.join(plan.columns)}) FROM {quote_literal(plan.source)} FORMAT AS PARQUET"
        with _LOCAL_LOCK, _spark_conf(spark, _ANSI_IDENTIFIER_CONF):
            run("pre_sql", plan.pre)
            try:
                rows = self._append(spark, files, plan, destination.schema_name, destination.table, where)
            except WarehouseError:
                raise
            except Exception as exc:
                raise WarehouseError(f"{where} failed on the local warehouse: {exc}") from exc
            run("post_sql", plan.post)
        statements = [s.sql for s in plan.pre] + [copy] + [s.sql for s in plan.post]
        return CopyOutcome(rows_loaded=rows, statements=tuple(statements), seconds=time.monotonic() - started)

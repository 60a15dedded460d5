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
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ndr_resources.errors import InputDataError, NdrError
from ndr_resources.lake import LocalLake, join_uri, local_path_for, split_s3_uri
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


class Warehouse(dg.ConfigurableResource, ABC):
    """Runs the inventory SELECT against the dimension tables and writes its rows as Parquet."""

    @abstractmethod
    def unload_new_machines(self, spark: Any, request: UnloadRequest) -> int:
        """Execute the request; returns the number of rows the warehouse reports it wrote (the
        caller verifies the files against it)."""


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

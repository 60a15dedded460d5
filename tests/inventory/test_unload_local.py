"""The monthly unload end to end on the embedded warehouse: tables as Parquet folders in a temp lake."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from ndr_assets.inventory import MACHINE_INVENTORY_READ_SCHEMA, read_machine_inventory, unload_machine_inventory
from ndr_assets.inventory.unload import inventory_quarantine_schema, month_partition
from ndr_jobs.synthetic.writers import inventory_uri, warehouse_tables_uri, write_inventory
from ndr_resources.errors import SchemaContractError, SpecError
from ndr_resources.lake import LocalLake
from ndr_resources.specs import MachineInventoryUnloadSpec, parse_spec
from ndr_resources.warehouse import LocalWarehouse, WarehouseError
from seeds.provision import render_templates
from tests.inventory.test_sql import ITEM, PAYLOAD, PROJECT

TABLES = "s3://ndr-test/warehouse/"
OUTPUT = "s3://ndr-test/inventory/"


@pytest.fixture
def lake(tmp_path):
    return LocalLake(root=str(tmp_path))


@pytest.fixture
def warehouse(tmp_path):
    return LocalWarehouse(lake_root=str(tmp_path), tables_uri=TABLES)


def write_table(lake, path: str, rows: list[tuple], columns=("ip_address", "machine_name", "active")) -> None:
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    lake.write_bytes(f"{TABLES}{path}", sink.getvalue())


def machines(lake, tenant: str, rows: list[tuple]) -> None:
    write_table(lake, f"dim/machines/tenant={tenant}/part-00000.parquet", rows)


def make_spec(**query) -> MachineInventoryUnloadSpec:
    payload = {
        **PAYLOAD,
        "query": {**PAYLOAD["query"], "additional_filters": ["tenant = 'acme'"], **query},
        "output": {"s3_prefix": OUTPUT},
    }
    payload["query"] = {k: v for k, v in payload["query"].items() if v is not None}
    return parse_spec(MachineInventoryUnloadSpec, payload, project=PROJECT, item=ITEM)


def unload(spark, lake, warehouse, month: str, spec: MachineInventoryUnloadSpec | None = None):
    return unload_machine_inventory(
        spec=spec or make_spec(), project=PROJECT, item=ITEM, warehouse=warehouse, lake=lake, spark=spark,
        snapshot_month=month,
    )


def inventory(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, MACHINE_INVENTORY_READ_SCHEMA)


def test_first_month_publishes_the_tenants_active_machines(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", True), ("10.10.0.3", "WS-3", False)])
    machines(lake, "other", [("10.99.0.1", "O-1", True)])

    result = unload(spark, lake, warehouse, "2026-01")

    assert (result.rows_existing_ips, result.rows_unloaded) == (0, 2)
    assert result.location == f"{OUTPUT}snapshot_month=2026-01/"
    assert result.counters == {
        "rows_existing_ips": 0, "rows_reported_by_warehouse": 2, "rows_unloaded": 2, "rows_published": 2,
        "rows_quarantined": 0, "rows_null_ip": 0, "rows_malformed_ip": 0, "rows_duplicate_ip": 0,
    }  # fmt: skip
    assert lake.read_json(f"{result.location}_SUCCESS")["rows"] == 2
    # Nothing was quarantined, and the work prefix is gone.
    assert lake.list_children(OUTPUT) == ["snapshot_month=2026-01"]
    assertDataFrameEqual(
        read_machine_inventory(lake, spark, make_spec().output, "2026-01"),
        inventory(spark, [("10.10.0.1", "WS-1", "2026-01"), ("10.20.0.2", "VDI-2", "2026-01")]),
    )
    # The session's SQL settings are back to what they were.
    assert spark.conf.get("spark.sql.ansi.doubleQuotedIdentifiers") == "false"


def test_later_months_unload_only_new_ips_and_reruns_are_idempotent(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", True)])
    unload(spark, lake, warehouse, "2026-01")
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", True), ("10.10.0.9", "WS-9", True)])

    february = unload(spark, lake, warehouse, "2026-02")
    again = unload(spark, lake, warehouse, "2026-02")  # February's own IPs do not count as existing
    january_again = unload(spark, lake, warehouse, "2026-01")  # nor do January's when January re-runs

    assert (february.rows_existing_ips, february.rows_unloaded) == (2, 1)
    assert (again.rows_existing_ips, again.rows_unloaded) == (2, 1)
    assert (january_again.rows_existing_ips, january_again.rows_unloaded) == (1, 2)
    output = make_spec().output
    assertDataFrameEqual(
        read_machine_inventory(lake, spark, output, "2026-02"),
        inventory(
            spark,
            [("10.10.0.1", "WS-1", "2026-01"), ("10.20.0.2", "VDI-2", "2026-01"), ("10.10.0.9", "WS-9", "2026-02")],
        ),
    )
    assert read_machine_inventory(lake, spark, output, "2026-01").count() == 2
    assert read_machine_inventory(lake, spark, output, "2025-12").count() == 0


def test_a_rerun_replaces_its_month(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", True)])
    unload(spark, lake, warehouse, "2026-01")
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", False), ("10.10.0.7", "WS-7", True)])

    unload(spark, lake, warehouse, "2026-01")

    assertDataFrameEqual(
        read_machine_inventory(lake, spark, make_spec().output, "2026-01"),
        inventory(spark, [("10.10.0.1", "WS-1", "2026-01"), ("10.10.0.7", "WS-7", "2026-01")]),
    )


def test_null_malformed_and_duplicate_ips_are_counted_and_quarantined(spark, lake, warehouse):
    machines(
        lake,
        "acme",
        [
            ("10.10.0.1", "WS-1", True),
            (None, "NO-IP", True),
            ("999.1.1.1", "BAD", True),
            ("10.10.0.5", "B-NAME", True),
            ("10.10.0.5", "A-NAME", True),
        ],
    )
    result = unload(spark, lake, warehouse, "2026-01")

    assert result.counters == {
        "rows_existing_ips": 0, "rows_reported_by_warehouse": 5, "rows_unloaded": 5, "rows_published": 2,
        "rows_quarantined": 3, "rows_null_ip": 1, "rows_malformed_ip": 1, "rows_duplicate_ip": 1,
    }  # fmt: skip
    assert (result.rows_unloaded, result.rows_published) == (5, 2)
    output = make_spec().output
    assertDataFrameEqual(
        read_machine_inventory(lake, spark, output, "2026-01"),
        inventory(spark, [("10.10.0.1", "WS-1", "2026-01"), ("10.10.0.5", "A-NAME", "2026-01")]),
    )
    quarantine_schema = inventory_quarantine_schema(output)
    quarantine = spark.read.schema(quarantine_schema).parquet(lake.spark_uri(result.quarantine_location))
    assertDataFrameEqual(
        quarantine,
        spark.createDataFrame(
            [("null_ip", None, "NO-IP"), ("malformed_ip", "999.1.1.1", "BAD"), ("duplicate_ip", "10.10.0.5", "B-NAME")],
            quarantine_schema,
        ),
    )


def test_a_quoted_value_matches_only_itself(spark, lake, warehouse):
    write_table(
        lake,
        "dim/owners/part-00000.parquet",
        [("10.1.1.1", "M1", "a"), ("10.1.1.2", "M2", "a' OR 'x'='x"), ("10.1.1.3", "M3", "b")],
        columns=("ip_address", "machine_name", "owner"),
    )
    spec = make_spec(table="owners", active_filter=None, additional_filters=["owner = 'a'' OR ''x''=''x'"])

    unload(spark, lake, warehouse, "2026-01", spec)

    assertDataFrameEqual(
        read_machine_inventory(lake, spark, spec.output, "2026-01"), inventory(spark, [("10.1.1.2", "M2", "2026-01")])
    )


def test_a_full_sql_query_runs_against_the_warehouse_tables(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True), ("10.20.0.2", "VDI-2", True), ("10.20.0.3", "VDI-3", False)])
    spec = make_spec(
        schema=None,
        table=None,
        additional_filters=[],
        sql="SELECT ip_address, machine_name, active FROM dim.machines WHERE machine_name LIKE 'VDI-%'",
    )

    unload(spark, lake, warehouse, "2026-01", spec)

    assertDataFrameEqual(
        read_machine_inventory(lake, spark, spec.output, "2026-01"),
        inventory(spark, [("10.20.0.2", "VDI-2", "2026-01")]),
    )


def test_a_name_column_that_is_not_text_breaks_the_contract_and_publishes_nothing(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True)])
    with pytest.raises(SchemaContractError, match="column 'machine_name' is boolean, contract says string"):
        unload(spark, lake, warehouse, "2026-01", make_spec(name_column="active"))
    assert lake.list_children(OUTPUT) == []


def test_an_unknown_table_is_a_warehouse_error_naming_it(spark, lake, warehouse):
    machines(lake, "acme", [("10.10.0.1", "WS-1", True)])
    with pytest.raises(WarehouseError, match=r"local warehouse at s3://ndr-test/warehouse/.*`dim`\.`nope`"):
        unload(spark, lake, warehouse, "2026-01", make_spec(table="nope"))


def test_a_malformed_month_or_role_is_refused_before_anything_runs(spark, lake, warehouse):
    with pytest.raises(ValueError, match="snapshot_month must be 'YYYY-MM', got '2026-1'"):
        unload(spark, lake, warehouse, "2026-1")
    spec = make_spec().model_copy(update={"redshift": make_spec().redshift.model_copy(update={"iam_role": "admin"})})
    with pytest.raises(SpecError, match="key 'redshift.iam_role': not an IAM role ARN"):
        unload(spark, lake, warehouse, "2026-01", spec)


def test_the_seeded_spec_reads_the_synthetic_inventory(spark, lake):
    columns = ["ip_address", "machine_name", "active", "segment"]
    write_inventory(
        lake,
        inventory_uri("ndr-test", "acme", "finance"),
        pd.DataFrame(
            [("10.10.0.1", "WS-1", True, "workstations"), ("10.20.0.2", "VDI-2", True, "vdi"),
             ("10.20.0.3", "VDI-3", False, "vdi")],
            columns=columns,
        ),
    )  # fmt: skip
    other_tenant = pd.DataFrame([("10.30.0.1", "SRV-1", True, "servers")], columns=columns)
    write_inventory(lake, inventory_uri("ndr-test", "acme", "hr"), other_tenant)
    (item,) = [
        i
        for i in render_templates("acme-finance", "ndr-test", "v1", "acme", "finance", "2026-01-01")
        if i.get("job_name") == "machine_inventory_unload#v1"
    ]
    spec = parse_spec(MachineInventoryUnloadSpec, item["spec"], project="acme-finance", item=item["job_name"])
    warehouse = LocalWarehouse(lake_root=lake.root, tables_uri=warehouse_tables_uri("ndr-test"))

    result = unload_machine_inventory(
        spec=spec, project="acme-finance", item=item["job_name"], warehouse=warehouse, lake=lake, spark=spark,
        snapshot_month="2026-02",
    )

    assert result.location == f"{spec.output.s3_prefix}snapshot_month=2026-02/"
    assertDataFrameEqual(
        read_machine_inventory(lake, spark, spec.output, "2026-02"),
        inventory(spark, [("10.10.0.1", "WS-1", "2026-02"), ("10.20.0.2", "VDI-2", "2026-02")]),
    )


def test_the_reader_keeps_one_row_per_ip_from_the_latest_month_and_skips_unpublished_months(spark, lake):
    output = make_spec().output
    for month, name in (("2026-01", "OLD"), ("2026-02", "NEW")):
        rows = spark.createDataFrame([("10.10.0.1", name, month)], MACHINE_INVENTORY_READ_SCHEMA)
        lake.publish_partitions(rows, OUTPUT, [month_partition(month)])
    lake.write_bytes(f"{OUTPUT}snapshot_month=2026-03/part-0.parquet", b"not published: no _SUCCESS")

    assertDataFrameEqual(
        read_machine_inventory(lake, spark, output, "2026-12"), inventory(spark, [("10.10.0.1", "NEW", "2026-02")])
    )
    # FG-B knows only the prefix (from project_parameters): the default column names are read.
    assertDataFrameEqual(
        read_machine_inventory(lake, spark, OUTPUT, "2026-01"), inventory(spark, [("10.10.0.1", "OLD", "2026-01")])
    )


"""The embedded defaults know no bucket: the warehouse's location is configuration."""

import pytest
from typer.testing import CliRunner

from ndr_jobs.cli import app
from ndr_resources.environments import resources_for
from ndr_resources.warehouse import WarehouseError


def test_the_local_warehouse_has_no_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    monkeypatch.delenv("NDR_WAREHOUSE_TABLES_URI", raising=False)
    warehouse = resources_for("local")["warehouse"]
    assert warehouse.tables_uri is None
    with pytest.raises(WarehouseError, match="set NDR_WAREHOUSE_TABLES_URI to the s3:// prefix"):
        warehouse.table_uri("dim", "machines")


def test_the_local_warehouse_is_where_the_configuration_says(tmp_path, monkeypatch):
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    monkeypatch.setenv("NDR_WAREHOUSE_TABLES_URI", "s3://acme-dwh/tables/")
    warehouse = resources_for("local")["warehouse"]
    assert warehouse.table_uri("dim", "machines") == "s3://acme-dwh/tables/dim/machines/"
    assert warehouse.lake_root == str(tmp_path / "lake")


def test_generate_says_how_to_point_the_warehouse_at_its_inventory(tmp_path, monkeypatch):
    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["generate", "--days", "0.01", "--tenants", "acme/finance", "--bucket", "acme-lab",
                                      "--hosts", "20"])
    assert result.exit_code == 0, result.output
    assert "NDR_WAREHOUSE_TABLES_URI=s3://acme-lab/warehouse/" in result.output
    assert (tmp_path / "lake" / "acme-lab" / "warehouse" / "dim" / "machines" / "tenant=acme_finance").is_dir()

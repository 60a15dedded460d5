"""Every command finds its state the same way: ``--home`` (or a path option) > ``$NDR_HOME`` > ``./.ndr``.

Each test runs in a scratch working folder with NDR_HOME set elsewhere: nothing may appear under ``./.ndr``.
"""

from typer.testing import CliRunner

from ndr_jobs.cli import app
from tests.cli.conftest import BUCKET, PROJECT, provision_project


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_seed_provision_writes_into_ndr_home(scratch):
    cwd, home = scratch
    result = invoke("seed", "provision", "--project", PROJECT, "--bucket", BUCKET, "--org1", "acme", "--org2", "finance",
                    "--start-date", "2026-01-05")
    assert result.exit_code == 0, result.output
    assert (home / "parameters.sqlite").is_file()
    assert (home / "lake" / BUCKET / "projects" / PROJECT).is_dir()  # the port-set reference file
    assert not (cwd / ".ndr").exists()
    shown = invoke("seed", "show", "--project", PROJECT, "--job", "delta_builder")
    assert shown.exit_code == 0 and '"job_name": "delta_builder"' in shown.output


def test_generate_writes_into_the_lake_of_ndr_home(scratch):
    cwd, home = scratch
    result = invoke("generate", "--days", "0.01", "--tenants", "acme/finance", "--bucket", BUCKET, "--hosts", "20")
    assert result.exit_code == 0, result.output
    assert len(list((home / "lake" / BUCKET / "paloalto" / "acme" / "finance").iterdir())) == 1
    assert not (cwd / ".ndr").exists()


def test_backfill_uses_the_instance_of_ndr_home(scratch):
    cwd, home = scratch
    provision_project(home)
    result = invoke("backfill", "--project", "ndr-nope", "--start", "2026-01-05", "--end", "2026-01-05")
    assert result.exit_code == 1
    assert "project 'ndr-nope' has no enabled routing record" in result.output and PROJECT in result.output
    assert (home / "dagster" / "dagster.yaml").is_file()
    assert not (cwd / ".ndr").exists()


def test_catalog_reads_the_store_of_ndr_home(scratch):
    cwd, home = scratch
    provision_project(home)
    result = invoke("catalog", "show", "--project", PROJECT)
    assert result.exit_code == 0, result.output
    assert "no item" not in result.output  # every spec came from the provisioned store
    assert not (cwd / ".ndr").exists()


def test_demo_resolves_ndr_home_and_checks_its_arguments_before_touching_it(scratch):
    cwd, home = scratch
    result = invoke("demo", "--days", "1")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"NDR home: {home} (emptied first)"
    assert "the demo needs traffic past 2026-04-02 (the first month boundary 2026-04-01 plus 1 training day(s))" \
        in result.output
    assert not home.exists() and not (cwd / ".ndr").exists()

    bad = cwd / "attacks.json"
    bad.write_text('[{"kind": "c2_beaconing", "period_s": -5}]')
    result = invoke("demo", "--scenarios", str(bad))
    assert result.exit_code == 2 and "Invalid value for --scenarios" in result.output
    assert not home.exists()


def test_an_explicit_option_wins_over_ndr_home(scratch, tmp_path):
    _cwd, home = scratch
    sqlite = tmp_path / "elsewhere" / "store.sqlite"
    result = invoke("seed", "provision", "--project", PROJECT, "--bucket", BUCKET, "--org1", "acme", "--org2", "finance",
                    "--sqlite-path", str(sqlite), "--lake-root", str(tmp_path / "elsewhere" / "lake"))
    assert result.exit_code == 0, result.output
    assert sqlite.is_file() and not (home / "parameters.sqlite").exists()

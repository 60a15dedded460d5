"""``ndr backfill`` exits 1 when a blocking check fails, with our message first and no Dagster traces."""

import gzip
import json

import pytest

from ndr_resources.lake import LocalLake
from tests.cli.conftest import BUCKET, PROJECT, provision_project, run_ndr


def _session(src: str, dst: str, sessionid: int) -> dict:
    return {
        "type": "TRAFFIC", "subtype": "end", "src": src, "dst": dst, "sport": 50000, "dport": 443, "proto": "tcp",
        "action": "allow", "bytes_sent": 100, "bytes_received": 200, "bytes": 300, "packets": 4,
        "start": "2026/01/05 00:10:00", "time_generated": "2026/01/05 00:12:00", "receive_time": "2026/01/05 00:12:00",
        "elapsed": 120, "session_end_reason": "tcp-fin", "app": "ssl", "rule": "allow-out", "from": "trust",
        "to": "untrust", "sessionid": sessionid, "serial": "007200001056",
    }


@pytest.fixture(scope="module")
def blocked_home(tmp_path_factory):
    """A project whose 00:08 window has one good and one malformed session: 50 % rejected, over the
    templates' ``dq.max_rejection_rate`` of 5 %, so the blocking DQ checks of delta and pair counts fail."""
    home, cwd = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("cwd")
    provision_project(home)
    records = [_session("10.10.0.5", "8.8.8.8", 1), _session("999.1.1.1", "10.10.0.5", 2)]
    LocalLake(root=str(home / "lake")).write_bytes(
        f"s3://{BUCKET}/paloalto/acme/finance/20260105T002200Z/part-00000.json.gz",
        gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()),
    )
    return home, cwd


ARGS = ["backfill", "--project", PROJECT, "--start", "2026-01-04-23:53", "--end", "2026-01-05-00:08"]


def test_a_failed_blocking_check_exits_1_with_our_message_alone(blocked_home):
    home, cwd = blocked_home
    result = run_ndr(ARGS, home=home, cwd=cwd)
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "error: ndr-acme-finance: traffic backfill 2026-01-04-23:53 .. 2026-01-05-00:08 failed: "
    ), result.stdout
    assert lines[0].endswith(
        "failed: blocking check(s) did not pass: delta.dq_rejection_rate_under_threshold, "
        "pair_counts.dq_rejection_rate_under_threshold"
    ), result.stdout
    assert "Traceback" not in result.stdout and "dagster." not in result.stdout, result.stdout


def test_verbose_shows_dagsters_events_and_traces(blocked_home):
    home, cwd = blocked_home
    result = run_ndr([*ARGS, "--verbose"], home=home, cwd=cwd)
    assert result.returncode == 1, result.stdout
    assert "STEP_FAILURE" in result.stdout and "dagster." in result.stdout, result.stdout


def test_a_corrupt_input_file_is_quarantined_and_reported_in_one_line_without_java_traces(tmp_path):
    """One bad file is not a bad range: the run publishes the rest and names the failed check."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    provision_project(home)
    # A gzip header followed by bytes that are no deflate stream.
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes(range(256)) * 8
    LocalLake(root=str(home / "lake")).write_bytes(
        f"s3://{BUCKET}/paloalto/acme/finance/20260105T000500Z/part-00000.json.gz", corrupt
    )
    result = run_ndr(["backfill", "--project", PROJECT, "--start", "2026-01-04-23:53", "--end", "2026-01-04-23:53"],
                     home=home, cwd=cwd)
    assert result.returncode == 0, result.stdout
    (line,) = result.stdout.splitlines()
    assert line.startswith("ndr-acme-finance: 1 partition(s) 2026-01-04-23:53 .. 2026-01-04-23:53 materialized in "), line
    assert line.endswith(
        "failed checks: delta.input_complete (non-blocking), pair_counts.input_complete (non-blocking)"
    ), line

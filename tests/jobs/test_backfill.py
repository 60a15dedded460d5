"""``ndr_jobs.backfill``: the outcome of a backfill run and what makes it a failure."""

import dataclasses

import pytest

from ndr_jobs.backfill import BackfillOutcome, check_blocking
from ndr_resources.errors import NdrError


def _outcome(**changes):
    fields = {"project": "ndr-acme-finance", "kind": "traffic", "first_partition": "2026-01-04-23:53",
                  "last_partition": "2026-01-05-23:38", "partitions": 96, "seconds": 1.0, "materializations": {},
                  "failed_checks": (), "blocking_failed_checks": ()}
    return BackfillOutcome(**{**fields, **changes})


def test_the_outcome_is_built_by_keyword_and_cannot_change():
    outcome = _outcome()
    with pytest.raises(TypeError):
        BackfillOutcome("ndr-acme-finance", "traffic", "2026-01-04-23:53", "2026-01-05-23:38", 96, 1.0, {}, (), ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.error = "changed later"


def test_only_a_failed_step_or_blocking_check_makes_a_backfill_fail():
    non_blocking = _outcome(failed_checks=("fg_a.row_count_sane",))
    assert non_blocking.ok and non_blocking.raise_on_failure() is non_blocking
    blocked = _outcome(failed_checks=("delta.dq_rejection_rate_under_threshold", "delta.row_count_sane"),
                       blocking_failed_checks=("delta.dq_rejection_rate_under_threshold",),
                       error="blocking check(s) did not pass: delta.dq_rejection_rate_under_threshold")
    assert not blocked.ok
    assert blocked.failure_message() == (
        "ndr-acme-finance: traffic backfill 2026-01-04-23:53 .. 2026-01-05-23:38 failed: "
        "blocking check(s) did not pass: delta.dq_rejection_rate_under_threshold"
    )
    with pytest.raises(NdrError, match="dq_rejection_rate_under_threshold"):
        blocked.raise_on_failure()
    failed_step = _outcome(error="s3://ndr-test/paloalto/acme/finance/x/part-00000.json.gz: corrupt gzip")
    assert failed_step.failure_message().endswith("failed: s3://ndr-test/paloalto/acme/finance/x/part-00000.json.gz: corrupt gzip")


def test_blocking_is_read_from_the_jobs_check_specs(tmp_path, monkeypatch):
    """No list of check names: whatever the assets declare (the asset refactor adds checks)."""
    from ndr_jobs.definitions import build_definitions
    from tests.cli.conftest import provision_project

    monkeypatch.setenv("NDR_HOME", str(tmp_path))
    monkeypatch.setenv("NDR_ENV", "local")
    provision_project(tmp_path)
    job = build_definitions().resolve_job_def("ndr_acme_finance__traffic_15m")
    blocking = check_blocking(job)
    assert blocking["delta.dq_rejection_rate_under_threshold"] is True
    assert blocking["delta.input_complete"] is False

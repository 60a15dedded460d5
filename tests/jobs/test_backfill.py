"""``ndr_jobs.backfill``: the outcome of a backfill run."""

import dataclasses

import pytest

from ndr_jobs.backfill import BackfillOutcome


def _outcome(**changes):
    fields = dict(project="ndr-acme-finance", kind="traffic", first_partition="2026-01-04-23:53",
                  last_partition="2026-01-05-23:38", partitions=96, seconds=1.0, materializations={},
                  failed_checks=())
    return BackfillOutcome(**{**fields, **changes})


def test_the_outcome_is_built_by_keyword_and_cannot_change():
    outcome = _outcome()
    with pytest.raises(TypeError):
        BackfillOutcome("ndr-acme-finance", "traffic", "2026-01-04-23:53", "2026-01-05-23:38", 96, 1.0, {}, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.error = "changed later"

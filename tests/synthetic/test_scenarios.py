"""Injected attack scenarios: ground truth rows and the sessions behind them."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
import pytest

from ndr_assets.transforms.windows import floor_to_window_start
from ndr_jobs.synthetic.scenarios import (
    BULK_EXFILTRATION,
    C2_BEACONING,
    GROUND_TRUTH_COLUMNS,
    INTERNAL_PORT_SCAN,
    RARE_EXTERNAL_PAIRS,
    SCENARIOS,
)


@pytest.fixture(scope="module")
def truth(jsonl_run) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(jsonl_run.lake.read_bytes(jsonl_run.summary.tenants[0].ground_truth_uri)))


@pytest.fixture(scope="module")
def records(jsonl_records) -> pd.DataFrame:
    out = jsonl_records.copy()
    out["window_start"] = [
        floor_to_window_start(datetime.strptime(t + "+0000", "%Y/%m/%d %H:%M:%S%z")).isoformat()
        for t in out["time_generated"]
    ]
    return out


def _scenario(run, name):
    return next(s for s in run.summary.tenants[0].scenarios if s.name == name)


def _sessions(records, scenario) -> pd.DataFrame:
    found = records[records["sessionid"].isin(scenario.session_ids)]
    assert len(found) == scenario.sessions
    assert set(found["src"]) == {scenario.host_ip}
    assert set(found["dst"]) <= set(scenario.peers)
    return found


def test_ground_truth_lists_every_scenario_with_its_windows(jsonl_run, truth):
    assert list(truth.columns) == GROUND_TRUTH_COLUMNS
    assert set(truth["scenario"]) == set(SCENARIOS)
    assert set(truth["org1"]) == {"acme"} and set(truth["org2"]) == {"finance"}
    for scenario in jsonl_run.summary.tenants[0].scenarios:
        rows = truth[truth["scenario"] == scenario.name]
        assert set(rows["host_ip"]) == {scenario.host_ip}
        assert sorted(rows["window_start"]) == scenario.window_starts
    assert len(truth) == jsonl_run.summary.tenants[0].ground_truth_rows
    assert truth["host_ip"].nunique() == len(SCENARIOS)  # one host per scenario


def test_every_ground_truth_window_holds_that_scenarios_sessions(jsonl_run, truth, records):
    for scenario in jsonl_run.summary.tenants[0].scenarios:
        found = _sessions(records, scenario)
        assert sorted(found["window_start"].unique()) == sorted(
            truth.loc[truth["scenario"] == scenario.name, "window_start"]
        )


def test_beacon_calls_one_rare_ip_every_minute_for_hours(jsonl_run, records):
    beacon = _scenario(jsonl_run, C2_BEACONING)
    assert len(beacon.peers) == 1
    sessions = _sessions(records, beacon)
    assert len(sessions) >= 100  # at least ~2 hours at one call a minute
    assert sessions["dport"].nunique() == 1 and int(sessions["dport"].iloc[0]) in (443, 8443)
    starts = pd.to_datetime(sessions["start"], format="%Y/%m/%d %H:%M:%S").sort_values()
    gaps = starts.diff().dt.total_seconds().dropna()
    assert 55 <= gaps.median() <= 65
    assert gaps.between(45, 75).all()
    assert sessions["bytes_sent"].median() < 1000
    # Nobody else ever talks to the C2 address.
    assert set(records.loc[records["dst"] == beacon.peers[0], "src"]) == {beacon.host_ip}


def test_exfiltration_sends_hundreds_of_megabytes_to_a_new_ip_within_three_windows(jsonl_run, records):
    exfil = _scenario(jsonl_run, BULK_EXFILTRATION)
    sessions = _sessions(records, exfil)
    assert 1 <= sessions["window_start"].nunique() <= 3
    assert sessions["bytes_sent"].sum() > 200_000_000
    assert (sessions["bytes_sent"] > sessions["bytes_received"]).all()
    assert set(records.loc[records["dst"] == exfil.peers[0], "src"]) == {exfil.host_ip}


def test_port_scan_touches_many_internal_hosts_and_ports_and_is_mostly_refused(jsonl_run, records):
    scan = _scenario(jsonl_run, INTERNAL_PORT_SCAN)
    sessions = _sessions(records, scan)
    assert sessions["window_start"].nunique() <= 2
    assert sessions["dst"].nunique() >= 30
    assert sessions["dport"].nunique() >= 10
    assert {22, 445, 3389} <= set(sessions["dport"])
    refused = ~sessions["action"].eq("allow") | sessions["session_end_reason"].isin(["tcp-rst-from-server", "aged-out"])
    assert refused.mean() > 0.7
    assert set(sessions["to"]) == {"trust"}


def test_rare_pairs_are_several_never_seen_external_ip_port_pairs(jsonl_run, records):
    rare = _scenario(jsonl_run, RARE_EXTERNAL_PAIRS)
    sessions = _sessions(records, rare)
    pairs = set(zip(sessions["dst"], sessions["dport"], strict=True))
    assert 5 <= len(pairs) <= 10
    assert sessions["window_start"].nunique() <= 2
    assert set(sessions["to"]) == {"untrust"}
    assert set(records.loc[records["dst"].isin(rare.peers), "src"]) == {rare.host_ip}
    assert rare.host_ip.startswith("10.30.")  # a server

"""Scenario files: the format, its errors, the default file's reproduction of the former hard-coded
scenarios, and the stealthy shapes the stealthy file asks for (several seeds)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ndr_assets.transforms.windows import SLICE_SECONDS
from ndr_jobs.synthetic.generate import generate_traffic
from ndr_jobs.synthetic.grid import to_epoch
from ndr_jobs.synthetic.network import build_network, tenant_rng
from ndr_jobs.synthetic.scenario_files import (
    DEFAULT_SCENARIO_FILE,
    STEALTHY_SCENARIO_FILE,
    ScenarioFileError,
    load_scenario_file,
    parse_duration,
    parse_scenarios,
)
from ndr_jobs.synthetic.scenarios import GROUND_TRUTH_COLUMNS, ground_truth, inject_scenarios
from ndr_jobs.synthetic.traffic import session_ends
from ndr_resources.lake import LocalLake

# hard_coded_scenarios.json: what the generator wrote with its former hard-coded scenarios (captured
# at commit 9fdd3dc, before scenario files existed) for these two runs.
HARD_CODED = json.loads((Path(__file__).parent / "data" / "hard_coded_scenarios.json").read_text())
RUNS = {
    "small_run": {
        "bucket": "ndr-test", "tenants": [("acme", "finance")], "start": datetime(2026, 1, 5, 0, 8, tzinfo=UTC),
        "days": 0.5, "seed": 11, "scale": 0.05,
    },
    "demo_like": {
        "bucket": "ndr-demo", "tenants": [("acme", "finance"), ("globex", "retail")],
        "start": datetime(2026, 3, 31, tzinfo=UTC), "days": 2.0, "seed": 7, "scale": 0.02,
        "attacks_from": datetime(2026, 4, 1, tzinfo=UTC),
    },
}
OLD_COLUMNS = ["org1", "org2", "host_ip", "window_start", "scenario"]


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("scenarios", [None, DEFAULT_SCENARIO_FILE])
def test_default_file_reproduces_the_hard_coded_scenarios(tmp_path, run, scenarios):
    lake = LocalLake(root=str(tmp_path))
    summary = generate_traffic(lake, **RUNS[run], scenarios=scenarios)
    for tenant in summary.tenants:
        expected = HARD_CODED[run][tenant.label]
        truth = pd.read_csv(io.BytesIO(lake.read_bytes(tenant.ground_truth_uri)))
        assert list(truth.columns) == GROUND_TRUTH_COLUMNS  # the old columns, then the name
        assert truth[OLD_COLUMNS].to_csv(index=False, lineterminator="\n") == expected["ground_truth_csv"]
        assert (truth["scenario_name"] == truth["scenario"]).all()  # one of each kind: named after it
        got = [{"name": s.name, "host_ip": s.host_ip, "peers": list(s.peers), "sessions": s.sessions}
               for s in tenant.scenarios]
        assert got == expected["scenarios"]


def test_durations():
    assert [parse_duration(v) for v in (90, "90s", "45m", "6h", "1d2h", "1h30m")] == [90, 90, 2700, 21600, 93600, 5400]
    for bad in ("", "6 hours", "0s", -5, "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_names_default_to_the_kind_and_are_numbered_when_a_kind_repeats():
    parsed = parse_scenarios(
        [{"kind": "c2_beaconing"}, {"kind": "internal_port_scan"}, {"kind": "c2_beaconing", "name": "slow"},
         {"kind": "c2_beaconing"}], "f.json",
    )
    assert [s.name for s in parsed.scenarios] == ["c2_beaconing-1", "internal_port_scan", "slow", "c2_beaconing-3"]
    assert parsed.scenarios[1].span_seconds is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "c2_beaconing"}, "f.json: Input should be a valid list"),
        ([{"kind": "c2_beaconing"}, {"kind": "ddos"}], "f.json: scenario 1 (ddos): key 'kind': unknown kind 'ddos'"),
        ([{"period_s": 5}], "f.json: scenario 0: key 'kind': missing"),
        ([{"kind": "c2_beaconing", "period_s": -5}], "f.json: scenario 0 (c2_beaconing): key 'period_s': Input should be greater than 0"),
        ([{"kind": "c2_beaconing", "perid_s": 5}], "f.json: scenario 0 (c2_beaconing): key 'perid_s': Extra inputs are not permitted"),
        ([{"kind": "bulk_exfiltration", "pace": 2, "sessions": 3}], "scenario 0 (bulk_exfiltration): key '(scenario)': give pace"),
        ([{"kind": "internal_port_scan", "spread": "4h", "duration": "1h"}], "give spread or duration, not both"),
        ([{"kind": "internal_port_scan", "ports": [22, 22]}], "key 'ports': a list of ports must be non-empty and without repeats"),
        ([{"kind": "rare_external_pairs", "duration": "2 hours"}], "key 'duration': not a duration"),
        ([{"kind": "rare_external_pairs", "start": "tomorrow"}], "key 'start': not an ISO date-time or '+<duration>'"),
        ([{"kind": "rare_external_pairs", "tenant": "acme"}], "key 'tenant': a tenant is 'org1/org2'"),
        ([{"kind": "rare_external_pairs", "name": "x"}, {"kind": "c2_beaconing", "name": "x"}],
         "f.json: scenario 1 (c2_beaconing): key 'name': 'x' is already the name of scenario 0"),
    ],
)
def test_errors_name_the_file_the_scenario_and_the_key(data, message):
    with pytest.raises(ScenarioFileError) as raised:
        parse_scenarios(data, "f.json")
    assert message in str(raised.value)
    assert str(raised.value).startswith("f.json: ")


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ScenarioFileError, match="missing.json: cannot read the scenario file"):
        load_scenario_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"kind": "c2_beaconing",}]')
    with pytest.raises(ScenarioFileError, match=r"broken.json: not valid JSON: .* at line 1 column 26"):
        load_scenario_file(broken)


NETWORK = build_network("acme", "finance", seed=3, total_hosts=120)
DAY = to_epoch(datetime(2026, 4, 1, 0, 8, tzinfo=UTC))  # a window start


def _inject(data, *, seed=3, start=DAY, end=DAY + 86400):
    return inject_scenarios(NETWORK, start=start, end=end, rng=tenant_rng(seed, "acme", "finance", 4),
                            scenarios=parse_scenarios(data, "f.json"))


def test_host_start_duration_and_tenant_come_from_the_file():
    host = NETWORK.hosts.loc[NETWORK.hosts["role"] == "workstation", "ip"].iloc[5]
    ip = f"{host >> 24}.{(host >> 16) & 255}.{(host >> 8) & 255}.{host & 255}"
    injected = _inject([
        {"kind": "c2_beaconing", "host": ip, "start": "+2h", "duration": "3h", "period_s": 600, "jitter_s": 0},
        {"kind": "rare_external_pairs", "host": "databases", "start": "2026-04-01T10:00", "duration": "30m", "pairs": 12},
        {"kind": "bulk_exfiltration", "tenant": "globex/retail"},  # another tenant's: not injected here
    ])
    beacon, rare = injected
    assert beacon.host_ip == ip and beacon.kind == beacon.name == "c2_beaconing"
    starts = np.sort(beacon.sessions["start"].to_numpy())
    # No jitter: a call every 600 s from 2 h after the attack start, for 3 h.
    assert starts[0] == DAY + 7200 + 600 and np.all(np.diff(starts) == 600) and len(starts) == 17
    assert rare.host_ip.startswith("10.40.")  # a database
    # 12 pairs (more than the 10 rare ports), within 10:00 .. 10:30 = the 09:53 and 10:08 windows.
    assert len(set(zip(rare.sessions["dst"], rare.sessions["dport"], strict=True))) == 12
    assert rare.window_starts == ["2026-04-01T09:53:00+00:00", "2026-04-01T10:08:00+00:00"]
    truth = ground_truth(NETWORK, injected)
    assert list(truth.columns) == GROUND_TRUTH_COLUMNS and len(truth) == len(beacon.window_starts) + 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"kind": "c2_beaconing", "host": "10.99.0.1"}], "f.json: scenario 0 (c2_beaconing): key 'host': 10.99.0.1 is not a host"),
        ([{"kind": "c2_beaconing", "host": "10.1.2"}], "key 'host': '10.1.2' is not an IPv4 address"),
        ([{"kind": "c2_beaconing", "host": "printers"}], "key 'host': 'printers' is neither an IP, a segment"),
        ([{"kind": "rare_external_pairs", "start": "2026-05-01T00:00"}], "key 'start': '2026-05-01T00:00' is outside"),
        ([{"kind": "bulk_exfiltration", "host": "dmz"}, {"kind": "rare_external_pairs", "host": "dmz"}],
         "f.json: scenario 1 (rare_external_pairs): key 'host': no host of 'dmz' is left"),
    ],
)
def test_scenarios_that_do_not_fit_the_tenant_or_range_are_named(data, message):
    with pytest.raises(ScenarioFileError) as raised:
        _inject(data)
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def stealthy():
    return load_scenario_file(STEALTHY_SCENARIO_FILE)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_stealthy_shapes_hold_for_every_seed(stealthy, seed):
    """Two days from 2026-04-01 00:08; the stealthy file's shapes, whatever the seed draws."""
    injected = {s.name: s for s in _inject(stealthy_data(), seed=seed, end=DAY + 2 * 86400)}
    spec = {s.name: s for s in stealthy.scenarios}
    assert len({s.host_ip for s in injected.values()}) == len(injected)  # one host each

    beacon, beacon_spec = injected["slow_jittered_beacon"], spec["slow_jittered_beacon"]
    gaps = np.diff(np.sort(beacon.sessions["start"].to_numpy()))
    period, jitter = beacon_spec.period_s, beacon_spec.jitter_s
    assert abs(np.median(gaps) - period) < jitter  # around the period ...
    assert gaps.min() >= period - 3.75 * jitter and gaps.max() <= period + 3.75 * jitter
    assert gaps.std() > jitter / 2  # ... and really jittered
    span = session_ends(beacon.sessions).max() - beacon.sessions["start"].min()
    assert beacon_spec.duration - 2 * (period + 3.75 * jitter) <= span <= beacon_spec.duration
    assert len(beacon.window_starts) < span / SLICE_SECONDS  # slower than one call a window: gaps in the truth

    exfil, exfil_spec = injected["low_and_slow_exfiltration"], spec["low_and_slow_exfiltration"]
    assert exfil.sessions["bytes_sent"].sum() == pytest.approx(exfil_spec.total_bytes, abs=len(exfil.sessions))
    assert len(exfil.sessions) == round(exfil_spec.pace * exfil_spec.duration / 3600)
    assert exfil.sessions["bytes_sent"].max() < 30_000_000  # no single big upload
    ends = session_ends(exfil.sessions)
    assert ends.max() - ends.min() > exfil_spec.duration * 0.75

    scan, scan_spec = injected["scan_spread_over_hours"], spec["scan_spread_over_hours"]
    assert set(scan.sessions["dport"]) == set(scan_spec.ports)
    assert 0.8 * scan_spec.targets <= scan.sessions["dst"].nunique() <= scan_spec.targets
    assert len(scan.window_starts) == scan_spec.spread // SLICE_SECONDS  # every window of the spread, none more

    rare, rare_spec = injected["few_rare_contacts"], spec["few_rare_contacts"]
    assert len(set(zip(rare.sessions["dst"], rare.sessions["dport"], strict=True))) == rare_spec.pairs


def stealthy_data():
    return json.loads(STEALTHY_SCENARIO_FILE.read_text())


def test_cli_takes_a_scenario_file_and_names_a_bad_one(tmp_path):
    import typer
    from typer.testing import CliRunner

    from ndr_jobs.synthetic.cli import generate

    app = typer.Typer()
    app.command("generate")(generate)
    app.command("noop")(lambda: None)
    scenarios = tmp_path / "two_beacons.json"
    scenarios.write_text(json.dumps([{"kind": "c2_beaconing", "name": "fast"},
                                     {"kind": "c2_beaconing", "name": "slow", "period_s": 900, "jitter_s": 120}]))
    args = ["generate", "--lake-root", str(tmp_path / "lake"), "--tenants", "acme/finance", "--days", "0.5",
            "--scale", "0.02", "--scenarios"]
    result = CliRunner().invoke(app, [*args, str(scenarios)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    truth = pd.read_csv(tmp_path / "lake" / "ndr-demo" / "synthetic" / "acme" / "finance" / "ground_truth.csv")
    assert set(truth["scenario"]) == {"c2_beaconing"} and set(truth["scenario_name"]) == {"fast", "slow"}
    assert "slow (c2_beaconing)" in result.output

    scenarios.write_text(json.dumps([{"kind": "c2_beaconing", "period_s": "often"}]))
    result = CliRunner().invoke(app, [*args, str(scenarios)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "two_beacons.json: scenario 0 (c2_beaconing): key 'period_s'" in " ".join(result.output.split())

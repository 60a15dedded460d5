"""Normal behaviour: daily and weekly rhythm, services, tenant networks."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ndr_assets.transforms.windows import floor_to_window_start
from ndr_jobs.synthetic.grid import to_epoch
from ndr_jobs.synthetic.network import build_network, ip_to_int, ips_to_strings, segment_of
from ndr_jobs.synthetic.traffic import generate_normal_sessions


def _sessions(day: datetime, seed: int = 3) -> pd.DataFrame:
    network = build_network("acme", "finance", seed=1)
    start = to_epoch(day)
    return generate_normal_sessions(network, start=start, end=start + 86400, rng=np.random.default_rng(seed), scale=0.3)


def test_working_hour_windows_are_busier_than_night_windows_on_a_weekday(jsonl_records):
    ends = pd.to_datetime(jsonl_records["time_generated"], format="%Y/%m/%d %H:%M:%S").dt.tz_localize(UTC)
    per_window = ends.map(floor_to_window_start).value_counts()
    hours = pd.DatetimeIndex(per_window.index).hour
    night = per_window[hours.isin([1, 2, 3, 4])]
    working = per_window[hours.isin([9, 10, 11])]
    assert len(night) == 16 and len(working) == 12
    assert working.median() > 4 * night.median()
    assert working.min() > night.max()


def test_weekend_days_are_quieter_than_weekdays():
    monday = _sessions(datetime(2026, 1, 5, tzinfo=UTC))
    saturday = _sessions(datetime(2026, 1, 10, tzinfo=UTC))
    assert len(saturday) < 0.5 * len(monday)
    assert len(monday) > 0.3 * 25_000  # scale 0.3 of a ~30k-session weekday


def test_same_generator_state_gives_the_same_sessions_and_another_seed_does_not():
    day = datetime(2026, 1, 5, tzinfo=UTC)
    pd.testing.assert_frame_equal(_sessions(day, seed=3), _sessions(day, seed=3))
    assert not _sessions(day, seed=3).equals(_sessions(day, seed=4))


def test_services_use_their_ports_and_destinations():
    sessions = _sessions(datetime(2026, 1, 5, tzinfo=UTC))
    dst_segment = segment_of(sessions["dst"].to_numpy())
    dns = sessions[(sessions["app"] == "dns") & (segment_of(sessions["src"].to_numpy()) == "workstations")]
    assert set(dns["dport"]) == {53}
    assert set(dns["proto"]) == {"udp"}
    assert set(segment_of(dns["dst"].to_numpy())) == {"domain_controllers"}
    smb = sessions[sessions["rule"] == "allow-file-shares"]
    assert set(smb["dport"]) == {445}
    assert set(segment_of(smb["dst"].to_numpy())) == {"servers"}
    db = sessions[sessions["rule"] == "allow-app-to-db"]
    assert set(db["dport"]) <= {1433, 1521, 3306, 5432, 27017, 6379}
    assert set(segment_of(db["dst"].to_numpy())) == {"databases"}
    ssh = sessions[(sessions["dport"] == 22) & (sessions["rule"] == "allow-admin-access")]
    assert 1 <= ssh["src"].nunique() <= 3  # only the admin workstations
    inbound = sessions[(dst_segment == "dmz") & (sessions["rule"] != "allow-monitoring")]
    assert set(segment_of(inbound["src"].to_numpy())) == {"external"}
    assert set(inbound["dport"]) >= {80, 443, 22, 3389}  # web clients and dropped probes
    web_out = sessions[sessions["rule"] == "allow-web-outbound"]
    assert set(segment_of(web_out["dst"].to_numpy())) == {"external"}
    # Heavy-tailed volumes: the biggest transfers dwarf the typical one.
    assert web_out["bytes_received"].max() > 100 * web_out["bytes_received"].median()


def test_network_layout_follows_the_segment_cidrs():
    network = build_network("acme", "finance", seed=7)
    hosts = network.hosts
    assert 110 <= len(hosts) <= 130
    assert (segment_of(hosts["ip"].to_numpy()) == hosts["segment"].to_numpy()).all()
    assert hosts.loc[hosts["segment"] == "vdi", "machine_name"].str.startswith("VDI-").all()
    assert not hosts.loc[hosts["segment"] == "vdi", "persistent"].any()
    assert hosts.loc[hosts["segment"] == "workstations", "machine_name"].str.startswith("WS-").all()
    assert set(hosts.loc[hosts["segment"] == "domain_controllers", "machine_name"]) == {"DC-0001", "DC-0002", "DC-0003"}
    assert list(ips_to_strings(hosts.loc[hosts["role"] == "dmz_web", "ip"].to_numpy())) == ["172.16.1.10"]
    # The external pools never use the first octets reserved for attack scenarios.
    assert not np.isin(network.long_tail_ips >> 24, [45, 91, 185, 193, 194]).any()
    assert segment_of(np.array([ip_to_int("8.8.8.8")]))[0] == "external"


def test_networks_are_deterministic_per_seed_and_tenant():
    first = build_network("acme", "finance", seed=7)
    pd.testing.assert_frame_equal(first.hosts, build_network("acme", "finance", seed=7).hosts)
    assert not first.hosts["ip"].equals(build_network("globex", "retail", seed=7).hosts["ip"])

"""Mini-batch layout: reproducibility, window membership, late arrivals, injected defects."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from ndr_assets.transforms.actions import KNOWN_ACTIONS
from ndr_assets.transforms.windows import floor_to_window_start, mini_batch_landing_time
from ndr_jobs.synthetic.generate import ALTERNATE_SPELLINGS, generate_traffic
from ndr_resources.lake import LocalLake
from tests.synthetic.conftest import MONDAY_MIDNIGHT, SMALL_RUN, run_generator

FIFTEEN_MINUTES = timedelta(minutes=15)


def _parse(panos_time: str) -> datetime:
    return datetime.strptime(panos_time + "+0000", "%Y/%m/%d %H:%M:%S%z")


def _with_windows(records: pd.DataFrame) -> pd.DataFrame:
    out = records.copy()
    out["end_window"] = [floor_to_window_start(_parse(t)) for t in out["time_generated"]]
    out["batch_window"] = [floor_to_window_start(mini_batch_landing_time(m)) for m in out["mini_batch_id"]]
    return out


def _redelivered(records: pd.DataFrame) -> pd.Series:
    """True for the second delivery of a record (the same log again in a later mini-batch)."""
    logged = [c for c in records.columns if c != "mini_batch_id"]
    return records.sort_values("mini_batch_id", kind="stable").duplicated(logged).reindex(records.index)


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path, jsonl_run):
    again = run_generator(tmp_path / "again", fmt="jsonl")
    other = run_generator(tmp_path / "other", fmt="jsonl", seed=12)
    uris = jsonl_run.lake.list_objects(f"s3://{SMALL_RUN['bucket']}/")
    assert uris == again.lake.list_objects(f"s3://{SMALL_RUN['bucket']}/")
    for uri in uris:
        assert jsonl_run.lake.read_bytes(uri) == again.lake.read_bytes(uri), uri
    batch = (
        jsonl_run.summary.tenants[0].raw_prefix
        + jsonl_run.summary.tenants[0].mini_batch_ids[30]
        + "/part-00000.json.gz"
    )
    assert jsonl_run.lake.read_bytes(batch) != other.lake.read_bytes(batch)


def test_one_mini_batch_per_window_named_by_its_landing_time(jsonl_run):
    tenant = jsonl_run.summary.tenants[0]
    assert tenant.windows == 48
    assert tenant.mini_batches == 48
    assert tenant.mini_batch_ids[0] == "20260105T002250Z"  # window 00:08-00:23 lands at 00:22:50
    assert tenant.mini_batch_ids[-1] == "20260105T120750Z"  # window 11:53-12:08
    assert jsonl_run.lake.list_children(tenant.raw_prefix) == sorted(tenant.mini_batch_ids)
    assert jsonl_run.summary.start == MONDAY_MIDNIGHT


def test_every_session_ends_in_its_batch_window_except_late_ones_which_ride_in_the_next(jsonl_run, jsonl_records):
    records = _with_windows(jsonl_records)
    records = records[~_redelivered(jsonl_records)]
    on_time = records["end_window"] == records["batch_window"]
    late = records[~on_time]
    assert len(late) == jsonl_run.summary.tenants[0].late_sessions
    assert len(late) > 20  # 2% of a few thousand sessions
    assert (late["batch_window"] == late["end_window"] + FIFTEEN_MINUTES).all()


def test_records_are_received_after_the_session_end_in_their_batch_window(jsonl_records):
    records = _with_windows(jsonl_records)[~_redelivered(jsonl_records)]
    received = records["receive_time"].map(_parse)
    assert (received >= records["time_generated"].map(_parse)).all()
    assert (received.map(floor_to_window_start) == records["batch_window"]).all()


def test_session_ids_are_unique_and_records_are_complete(jsonl_records):
    first_deliveries = jsonl_records[~_redelivered(jsonl_records)]
    sessions = first_deliveries[first_deliveries["subtype"] != "start"]
    assert sessions["sessionid"].is_unique
    assert set(jsonl_records["serial"]) == {jsonl_records["serial"].iloc[0]}
    assert set(jsonl_records["type"]) == {"TRAFFIC"}
    assert set(jsonl_records["from"]) <= {"trust", "untrust", "dmz"}
    assert jsonl_records.drop(columns=["dport"]).notna().all().all()


def test_malformed_rows_are_exactly_the_counted_ones(jsonl_run, jsonl_records):
    counted = jsonl_run.summary.tenants[0].malformed
    found = {
        "bad_ip": int((jsonl_records["src"] == "999.1.1.1").sum()),
        "negative_elapsed": int((jsonl_records["elapsed"] < 0).sum()),
        "negative_bytes": int((jsonl_records["bytes_sent"] < 0).sum()),
        "null_dport": int(jsonl_records["dport"].isna().sum()),
    }
    assert found == counted
    assert all(n > 0 for n in counted.values())


def test_well_formed_sessions_are_internally_consistent(jsonl_records):
    clean = jsonl_records[(jsonl_records["elapsed"] >= 0) & (jsonl_records["bytes_sent"] >= 0)]
    assert (
        (clean["time_generated"].map(_parse) - clean["start"].map(_parse)).dt.total_seconds() == clean["elapsed"]
    ).all()
    assert (clean["bytes"] == clean["bytes_sent"] + clean["bytes_received"]).all()
    assert (clean["packets"] == clean["pkts_sent"] + clean["pkts_received"]).all()
    blocked = clean[clean["action"].isin(["deny", "drop"])]
    assert len(blocked) > 0
    assert (blocked["session_end_reason"] == "policy-deny").all()
    assert (blocked["bytes_received"] == 0).all()
    assert set(blocked["subtype"]) == {"deny", "drop"}
    allowed_udp = clean[(clean["action"] == "allow") & (clean["proto"] == "udp") & (clean["subtype"] == "end")]
    assert set(allowed_udp["session_end_reason"]) == {"aged-out"}
    assert (clean["action"] == "allow").mean() > 0.9


def test_start_logs_open_an_allowed_session_in_the_same_or_an_earlier_mini_batch(jsonl_run, jsonl_records):
    tenant = jsonl_run.summary.tenants[0]
    starts = jsonl_records[jsonl_records["subtype"] == "start"]
    assert len(starts) == tenant.start_logs > 50
    assert (starts["time_generated"] == starts["start"]).all()
    assert (starts["elapsed"] == 0).all() and set(starts["session_end_reason"]) == {"n/a"}
    ends = jsonl_records[(jsonl_records["subtype"] == "end") & ~_redelivered(jsonl_records)]
    pairs = starts.merge(ends, on=["serial", "sessionid", "start"], suffixes=("_start", "_end"), validate="1:1")
    assert len(pairs) == len(starts)
    assert set(pairs["action_end"]) == {"allow"}
    assert (pairs["mini_batch_id_start"] <= pairs["mini_batch_id_end"]).all()
    assert (pairs["mini_batch_id_start"] < pairs["mini_batch_id_end"]).any()  # long sessions open earlier


def test_redeliveries_are_the_same_record_in_the_next_windows_mini_batch(jsonl_run, jsonl_records):
    again = _with_windows(jsonl_records)[_redelivered(jsonl_records)]
    assert len(again) == jsonl_run.summary.tenants[0].redelivered > 0
    assert (again["batch_window"] == again["end_window"] + FIFTEEN_MINUTES).all()
    assert set(again["subtype"]) <= {"end", "deny", "drop"}


def test_actions_are_written_in_both_spellings_and_the_other_spelling_is_counted(jsonl_run, jsonl_records):
    actions = jsonl_records["action"]
    respelled = actions.isin(ALTERNATE_SPELLINGS.values())
    assert respelled.sum() == jsonl_run.summary.tenants[0].respelled_actions > 0
    assert set(actions) <= set(KNOWN_ACTIONS) | set(ALTERNATE_SPELLINGS.values())
    assert {"drop-icmp", "drop ICMP"} <= set(actions)


def test_nothing_is_late_out_of_the_last_window(jsonl_records):
    """There is no mini-batch after the range, so the last window's sessions all arrive on time."""
    records = _with_windows(jsonl_records)
    last_window = MONDAY_MIDNIGHT + 47 * FIFTEEN_MINUTES
    assert records["batch_window"].max() == last_window
    assert (records.loc[records["end_window"] == last_window, "batch_window"] == last_window).all()


def test_start_is_floored_onto_the_grid(tmp_path):
    summary = generate_traffic(
        LocalLake(root=str(tmp_path)), **{**SMALL_RUN, "start": MONDAY_MIDNIGHT + timedelta(minutes=10), "days": 1 / 24}
    )
    assert summary.start == MONDAY_MIDNIGHT
    assert summary.tenants[0].windows == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"fmt": "xml"}, "format 'xml'"),
        ({"tenants": [("acme", "fin/ance")]}, "without '/'"),
        ({"days": 0}, "days must be positive"),
        ({"late_rate": 1.5}, "late_rate must be in"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        generate_traffic(LocalLake(root=str(tmp_path)), **{**SMALL_RUN, **override})

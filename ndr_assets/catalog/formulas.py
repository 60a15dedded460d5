"""Formula registry of the delta, pair-count and FG-A columns, written from their builders' docstrings.

The definitions follow ``ndr_assets.transforms.delta`` (per-slice base metrics), ``fg_a``,
``fg_a_peers`` and ``fg_a_novelty`` (windows, derived, novelty, high-risk and time features) and
``pair_counts``. Names come from ``schemas.py``; a test fails when a schema gains a column that has
no entry here. FG-B, pair rarity and FG-C formulas live beside their code (``FORMULAS`` dicts, see
``helper_formulas``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ndr_assets.transforms.actions import ALLOWED_ACTIONS, DENIED_ACTIONS, RESET_ACTIONS
from ndr_assets.transforms.fg_a import NIGHT_END_HOUR, NIGHT_START_HOUR
from ndr_assets.transforms.schemas import ADDITIVE_METRICS, DISTRIBUTION_METRICS, MAX_METRICS
from ndr_assets.transforms.windows import WINDOW_LENGTHS_MINUTES


@dataclass(frozen=True)
class ColumnDoc:
    """Formula, description and the inputs a column is computed from."""

    formula: str
    description: str
    inputs: tuple[str, ...] = ()


# ---------------------------------------------------------------- delta: the 31 base metrics per slice

# Formula per (host_ip, role, slice); "count" = number of the host's role-session rows in the slice.
# The action classes of ndr_assets.transforms.actions, the same tuples the delta builder counts.
_DENY_ACTIONS = ", ".join(DENIED_ACTIONS)
_RESET_ACTIONS = ", ".join(RESET_ACTIONS)
BASE_METRIC_DOCS: dict[str, ColumnDoc] = {
    "sessions_cnt": ColumnDoc("count(*)", "Sessions of the host in its role.", ("traffic",)),
    "allow_cnt": ColumnDoc(
        f"count(action in ({', '.join(ALLOWED_ACTIONS)}))", "Sessions the firewall allowed.", ("traffic.action",)
    ),
    "deny_cnt": ColumnDoc(
        f"count(action in ({_DENY_ACTIONS}))",
        "Sessions the firewall refused (the earlier system's drop_cnt).",
        ("traffic.action",),
    ),
    "alert_cnt": ColumnDoc(
        "count(action == 'alert' or session_end_reason in (threat, policy-deny) or session_end_reason like 'decrypt-%')",
        "Sessions a security policy acted on (threat or policy verdict in the end reason).",
        ("traffic.action", "traffic.session_end_reason"),
    ),
    "rst_cnt": ColumnDoc(
        f"count(session_end_reason like 'tcp-rst%' or action in ({_RESET_ACTIONS}))",
        "Sessions ended by a TCP reset.",
        ("traffic.action", "traffic.session_end_reason"),
    ),
    "aged_out_cnt": ColumnDoc(
        "count(session_end_reason == 'aged-out')",
        "Sessions closed by the firewall's idle timeout.",
        ("traffic.session_end_reason",),
    ),
    "zero_reply_cnt": ColumnDoc(
        "count(destination_bytes == 0)",
        "Sessions whose responder sent nothing (outbound: the peer never answered; inbound: the host never answered).",
        ("traffic.destination_bytes",),
    ),
    "short_session_cnt": ColumnDoc(
        "count(duration_s < short_session_max_s), short_session_max_s default 1.0 (operator short_session)",
        "Very short sessions (scans, failed connects); a null duration is not short.",
        ("traffic.duration_s",),
    ),
    "bytes_src_sum": ColumnDoc(
        "sum(coalesce(bytes_sent, 0)), bytes_sent = the host's side of the session",
        "Bytes the host sent (earlier bytes_sent_sum).",
        ("traffic.source_bytes", "traffic.destination_bytes"),
    ),
    "bytes_dst_sum": ColumnDoc(
        "sum(coalesce(bytes_recv, 0)), bytes_recv = the peer's side of the session",
        "Bytes the host received (earlier bytes_recv_sum).",
        ("traffic.source_bytes", "traffic.destination_bytes"),
    ),
    "duration_sum": ColumnDoc(
        "sum(coalesce(duration_s, 0)) in seconds", "Total session duration.", ("traffic.duration_s",)
    ),
    "tcp_cnt": ColumnDoc("count(protocol == 'tcp')", "TCP sessions.", ("traffic.protocol",)),
    "udp_cnt": ColumnDoc("count(protocol == 'udp')", "UDP sessions.", ("traffic.protocol",)),
    "icmp_cnt": ColumnDoc("count(protocol in (icmp, ipv6-icmp, icmp6))", "ICMP sessions.", ("traffic.protocol",)),
    "threat_cnt": ColumnDoc(
        "count(session_end_reason == 'threat')",
        "Sessions ended because of a detected threat.",
        ("traffic.session_end_reason",),
    ),
    "traffic_cnt": ColumnDoc(
        "count(upper(log_type) == 'TRAFFIC' or log_type is null)",
        "TRAFFIC records; equals sessions_cnt unless a source mixes in other log types.",
        ("traffic.log_type",),
    ),
    "peer_ip_nunique": ColumnDoc(
        "count(distinct peer_ip)", "Distinct peer addresses.", ("traffic.source_ip", "traffic.destination_ip")
    ),
    "peer_port_nunique": ColumnDoc(
        "count(distinct peer_port), peer_port = the session's destination port",
        "Distinct service ports.",
        ("traffic.destination_port",),
    ),
    "peer_segment_nunique": ColumnDoc(
        "count(distinct peer_segment), peer_segment = segment_mapping segment of peer_ip",
        "Distinct network segments of the peers.",
        ("traffic.source_ip", "traffic.destination_ip", "delta_builder.enrichment.segment_mapping"),
    ),
    "peer_ip_entropy": ColumnDoc(
        "-sum(p_i * ln p_i), p_i = n_i / N over peer IPs (n_i sessions with peer i, N all sessions); 0 for one peer",
        "Shannon entropy (nats) of the sessions over peer IPs: how spread the host's conversations are.",
        ("traffic.source_ip", "traffic.destination_ip"),
    ),
    "peer_port_entropy": ColumnDoc(
        "-sum(p_i * ln p_i), p_i = n_i / N over peer ports; 0 for one port",
        "Shannon entropy (nats) of the sessions over service ports.",
        ("traffic.destination_port",),
    ),
    "peer_ip_top1_sessions_share": ColumnDoc(
        "max_i(n_i) / N over peer IPs",
        "Share of the sessions that go to the busiest peer.",
        ("traffic.source_ip", "traffic.destination_ip"),
    ),
    "peer_port_top1_sessions_share": ColumnDoc(
        "max_i(n_i) / N over peer ports",
        "Share of the sessions on the busiest port.",
        ("traffic.destination_port",),
    ),
    "peer_ip_top1_bytes_share": ColumnDoc(
        "max_i(b_i) / B over peer IPs, b_i = bytes sent + received with peer i, B = sum(b_i); 0 when B == 0",
        "Share of the bytes exchanged with the top peer by bytes.",
        ("traffic.source_ip", "traffic.destination_ip", "traffic.source_bytes", "traffic.destination_bytes"),
    ),
    "peer_port_top1_bytes_share": ColumnDoc(
        "max_i(b_i) / B over peer ports; 0 when B == 0",
        "Share of the bytes on the top port by bytes.",
        ("traffic.destination_port", "traffic.source_bytes", "traffic.destination_bytes"),
    ),
    "max_sessions_per_minute": ColumnDoc(
        "max over event_end buckets of count(*), buckets of bucket_seconds (default 60, operator "
        "max_sessions_per_minute) aligned to the epoch",
        "Peak session rate: the busiest minute's sessions.",
        ("traffic.event_end",),
    ),
}
_PORT_CLASSES = ("high_risk", "admin", "fileshare", "directory", "db")
BASE_METRIC_DOCS.update(
    {
        f"{port_class}_port_sessions_cnt": ColumnDoc(
            f"count(peer_port in port_sets.{port_class})",
            f"Sessions on {port_class.replace('_', '-')} ports (seeds/reference/port_sets.json).",
            ("traffic.destination_port", "port_sets"),
        )
        for port_class in _PORT_CLASSES
    }
)

DELTA_KEY_DOCS: dict[str, ColumnDoc] = {
    "host_ip": ColumnDoc(
        "the role's host column: source_ip (outbound) or destination_ip (inbound)",
        "The host the row describes.",
        ("traffic.source_ip", "traffic.destination_ip"),
    ),
    "role": ColumnDoc(
        "'outbound' (host = session source) or 'inbound' (host = session destination), delta_builder.roles",
        "Direction of the host in the session.",
        ("delta_builder.roles",),
    ),
    "slice_start": ColumnDoc(
        "window_start of the mini-batch that delivered the session (processing-time windowing)",
        "Start of the 15-minute slice.",
        ("traffic.mini_batch_id",),
    ),
    "slice_end": ColumnDoc("slice_start + 15 min", "End of the 15-minute slice.", ("traffic.mini_batch_id",)),
}
DELTA_EXTRA_DOCS: dict[str, ColumnDoc] = {
    "packets_sum": ColumnDoc(
        "sum(packets); null when every row's packets is null",
        "Packets of the host's sessions (delta only, not an FG-A input).",
        ("traffic.packets",),
    ),
    "duration_max": ColumnDoc(
        "max(duration_s); 0 when none is known",
        "Longest session (delta only, not an FG-A input).",
        ("traffic.duration_s",),
    ),
}
PEER_SLICE_DOCS: dict[str, ColumnDoc] = {
    "peer_ip": ColumnDoc(
        "the role's peer column: destination_ip (outbound) or source_ip (inbound)",
        "The other end of the host's sessions.",
        ("traffic.source_ip", "traffic.destination_ip"),
    ),
    "peer_port": ColumnDoc(
        "destination_port (the service port in both default roles)",
        "Service port of the sessions with the peer.",
        ("traffic.destination_port",),
    ),
    "peer_segment": ColumnDoc(
        "segments.assign_segment(peer_ip, delta_builder.enrichment.segment_mapping)",
        "Network segment of the peer.",
        ("traffic.source_ip", "traffic.destination_ip", "delta_builder.enrichment.segment_mapping"),
    ),
    "sessions_cnt": ColumnDoc(
        "count(*) per (host_ip, role, slice, peer_ip, peer_port, peer_segment)",
        "Sessions with this peer endpoint in the slice.",
        ("traffic",),
    ),
    "bytes_sum": ColumnDoc(
        "sum(coalesce(bytes_sent, 0) + coalesce(bytes_recv, 0))",
        "Bytes sent and received with this peer endpoint in the slice.",
        ("traffic.source_bytes", "traffic.destination_bytes"),
    ),
    "session_timeline": ColumnDoc(
        "array_sort(collect_list(struct(unix_seconds(event_start) AS event_start_s, coalesce(bytes_sent, 0) AS "
        "bytes_sent))) over the slice's sessions with the peer endpoint, role 'outbound' only ([] for inbound rows)",
        "Start time and bytes sent of each outbound session with this peer endpoint in the slice (FG-A's beacon cadence).",
        ("traffic.event_start", "traffic.source_bytes", "traffic.destination_bytes"),
    ),
}

# ---------------------------------------------------------------- pair counts

PAIR_COUNTS_DOCS: dict[str, ColumnDoc] = {
    "src_ip": ColumnDoc("source_ip", "Source of the sessions (the host for outbound traffic).", ("traffic.source_ip",)),
    "dst_ip": ColumnDoc("destination_ip", "Destination of the sessions.", ("traffic.destination_ip",)),
    "dst_port": ColumnDoc("cast(destination_port as int)", "Destination port.", ("traffic.destination_port",)),
    "event_ts": ColumnDoc(
        "window_start + 15 min (the window END of the mini-batch that delivered the sessions)",
        "The 15-minute window of the count; FG-B pair rarity measures its horizons against it.",
        ("traffic.mini_batch_id",),
    ),
    "sessions_cnt": ColumnDoc(
        "count(*) per (src_ip, dst_ip, dst_port, window) after pair_counts_builder.filters",
        "Sessions of the pair in the window (rows failing a filter are counted, not kept).",
        ("traffic",),
    ),
}

# ---------------------------------------------------------------- FG-A

# How a base metric of a window longer than one slice is combined from the delta slices.
WINDOW_COMBINATION = {
    **dict.fromkeys(ADDITIVE_METRICS, "sum of the window's delta host slices"),
    **dict.fromkeys(MAX_METRICS, "maximum over the window's delta host slices"),
    **dict.fromkeys(DISTRIBUTION_METRICS, "exact, over the per-peer totals of the window's delta peer slices"),
}

DERIVED_METRIC_DOCS: dict[str, ColumnDoc] = {
    "duration_mean": ColumnDoc(
        "duration_sum / sessions_cnt (0 when sessions_cnt = 0)",
        "Mean session duration in seconds.",
        ("duration_sum", "sessions_cnt"),
    ),
    "deny_ratio": ColumnDoc(
        "deny_cnt / sessions_cnt (0 when sessions_cnt = 0)",
        "Share of the sessions the firewall refused.",
        ("deny_cnt", "sessions_cnt"),
    ),
    "bytes_asymmetry_ratio": ColumnDoc(
        "(bytes_src_sum - bytes_dst_sum) / (bytes_src_sum + bytes_dst_sum), 0 when both are 0",
        "Direction of the byte flow in [-1, 1]: +1 = the host only sends (exfiltration shape), -1 = only receives.",
        ("bytes_src_sum", "bytes_dst_sum"),
    ),
    "transport_tcp_ratio": ColumnDoc(
        "tcp_cnt / sessions_cnt (0 when sessions_cnt = 0)", "Share of TCP sessions.", ("tcp_cnt", "sessions_cnt")
    ),
    "transport_udp_ratio": ColumnDoc(
        "udp_cnt / sessions_cnt (0 when sessions_cnt = 0)", "Share of UDP sessions.", ("udp_cnt", "sessions_cnt")
    ),
    "transport_icmp_ratio": ColumnDoc(
        "icmp_cnt / sessions_cnt (0 when sessions_cnt = 0)", "Share of ICMP sessions.", ("icmp_cnt", "sessions_cnt")
    ),
    "has_high_risk_port_activity": ColumnDoc(
        "1 if high_risk_port_sessions_cnt > 0 else 0",
        "Whether any session used a high-risk port.",
        ("high_risk_port_sessions_cnt",),
    ),
}

# H: the lookback before the window up to the window's first slice (W = window_end_ts - 15 min,
# L = the window length; lookback days = fg_a_builder.lookback30d.days, default 30).
NOVELTY_HISTORY = (
    "H = the host's same-role peer slices starting in [window_end_ts - 15 min - lookback30d.days, window_end_ts - L), "
    "L = the window length"
)
_NOVELTY_INPUTS = ("delta_peer_slices", "delta_peer_slices (lookback30d)")
NOVELTY_METRIC_DOCS: dict[str, ColumnDoc] = {
    "new_peer_cnt_lookback30d": ColumnDoc(
        "count(distinct peer_ip of the window with no occurrence in H)",
        "Peers the host never talked to in the previous 30 days (in this role).",
        _NOVELTY_INPUTS,
    ),
    "rare_peer_cnt_lookback30d": ColumnDoc(
        "count(distinct peer_ip of the window seen in H on >= 1 and < rare_thresholds.peer_days (default 3) distinct UTC days)",
        "Peers the host talked to on only a few days of the previous 30.",
        _NOVELTY_INPUTS,
    ),
    "new_peer_ratio_lookback30d": ColumnDoc(
        "new_peer_cnt_lookback30d / peer_ip_nunique (0 when peer_ip_nunique = 0)",
        "Share of the window's peers that are new.",
        _NOVELTY_INPUTS,
    ),
    "new_dst_port_cnt_lookback30d": ColumnDoc(
        "count(distinct peer_port of the window with no occurrence in H)",
        "Service ports the host never used in the previous 30 days.",
        _NOVELTY_INPUTS,
    ),
    "rare_dst_port_cnt_lookback30d": ColumnDoc(
        "count(distinct peer_port of the window seen in H on >= 1 and < rare_thresholds.port_days (default 3) distinct UTC days)",
        "Service ports the host used on only a few days of the previous 30.",
        _NOVELTY_INPUTS,
    ),
    "new_pair_cnt_lookback30d": ColumnDoc(
        "count(distinct (peer_ip, peer_port) of the window with no occurrence in H)",
        "New (peer, port) pairs.",
        _NOVELTY_INPUTS,
    ),
    "new_src_dst_port_cnt_lookback30d": ColumnDoc(
        "count(distinct (peer_segment, peer_port) services of the window with no occurrence in H)",
        "New services: a port in a network segment the host never reached (or was reached from) in 30 days.",
        _NOVELTY_INPUTS,
    ),
}
_HIGH_RISK = "peer_segment in fg_a_builder.high_risk_segments"
HIGH_RISK_SEGMENT_DOCS: dict[str, ColumnDoc] = {
    "high_risk_segment_sessions_cnt": ColumnDoc(
        f"sum(sessions_cnt of the window's peer slices with {_HIGH_RISK}); 0 without the list",
        "Sessions with high-risk segments (domain controllers, databases by default).",
        ("delta_peer_slices", "fg_a_builder.high_risk_segments"),
    ),
    "high_risk_segment_unique_dsts": ColumnDoc(
        f"count(distinct peer_ip with {_HIGH_RISK}); 0 without the list",
        "Distinct peers in high-risk segments.",
        ("delta_peer_slices", "fg_a_builder.high_risk_segments"),
    ),
    "has_high_risk_segment_interaction": ColumnDoc(
        "1 if high_risk_segment_unique_dsts > 0 else 0",
        "Whether the host touched a high-risk segment.",
        ("delta_peer_slices", "fg_a_builder.high_risk_segments"),
    ),
}

_BAND_RULE = (
    f"weekend if the local day is Saturday or Sunday, else night if the local hour is in "
    f"[{NIGHT_START_HOUR:02d}:00, {NIGHT_END_HOUR:02d}:00), else work_hours if it is in fg_a_builder.working_hours "
    f"[start, end) (default 08-18), else after_hours; local = window_end_ts in fg_a_builder.time_zone"
)
_TIME_INPUTS = ("fg_a.window_end_ts", "fg_a_builder.time_zone", "fg_a_builder.working_hours")
FG_A_KEY_DOCS: dict[str, ColumnDoc] = {
    "host_ip": ColumnDoc(
        "host_ip of a delta host slice (either role) starting at window_end_ts - 15 min",
        "A host active in the 15-minute window (inactive host-windows have no row).",
        ("delta_host_slices",),
    ),
    "window_label": ColumnDoc(_BAND_RULE, "Time band of the window end: work_hours, after_hours, night or weekend.", _TIME_INPUTS),
    "window_end_ts": ColumnDoc(
        "window start + 15 min (UTC), the window on the 08/23/38/53 grid",
        "End of the 15-minute window the row describes.",
        ("delta_host_slices.slice_end",),
    ),
}
TIME_FEATURE_DOCS: dict[str, ColumnDoc] = {
    "hour_of_day": ColumnDoc(
        "hour (0-23) of window_end_ts in fg_a_builder.time_zone", "Local hour of the window end.", _TIME_INPUTS
    ),
    "is_working_hours": ColumnDoc("1 if window_label == 'work_hours' else 0", "Window ends in working hours.", _TIME_INPUTS),
    "is_after_hours": ColumnDoc(
        "1 if window_label == 'after_hours' else 0",
        "Window ends on a weekday outside working hours and night.",
        _TIME_INPUTS,
    ),
    "is_night": ColumnDoc("1 if window_label == 'night' else 0", "Window ends at night on a weekday.", _TIME_INPUTS),
    "is_weekend": ColumnDoc("1 if window_label == 'weekend' else 0", "Window ends on a Saturday or Sunday.", _TIME_INPUTS),
}

DIRECTION_TEXT = {
    "": "outbound direction (the host is the session source)",
    "in_": "in_ prefix = inbound direction (the host is the session destination)",
}


def window_phrase(label: str) -> str:
    """``w_1h`` -> ``1 h``, ``w_15m`` -> ``15 min`` (from ``WINDOW_LENGTHS_MINUTES``)."""
    minutes = WINDOW_LENGTHS_MINUTES[label]
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def windowed_formula(metric_formula: str, label: str, prefix: str, how: str | None = None) -> str:
    """``<metric formula> over the trailing <window> ending at window_end_ts`` (+ how, direction)."""
    parts = [f"{metric_formula} over the trailing {window_phrase(label)} ending at window_end_ts"]
    if how:
        parts.append(how)
    parts.append(DIRECTION_TEXT[prefix])
    return "; ".join(parts)


# ---------------------------------------------------------------- FG-A: beacon cadence (fg_a_cadence)

_CADENCE_PAIR = (
    "of the host's most regular outbound pair (peer_ip, peer_port) over the delta peer slices of the trailing 24 h "
    "(slices starting in [E - 24 h, E - 15 min]): the pair with the highest cadence score among pairs with at least "
    "6 distinct session start seconds (ties: more connections, then larger peer_ip, peer_port); 0 without such a pair"
)
_CADENCE_TERMS = (
    "t = the pair's sorted distinct session starts (session_timeline.event_start_s), d = intervals t[i+1] - t[i], "
    "b = bytes sent per session; quartiles q1, q2, q3 exact with linear interpolation; "
    "MAD(x) = median(|x - median(x)|); bowley(x) = (q1 + q3 - 2 q2) / (q3 - q1), 0 when q3 = q1"
)
_CADENCE_INPUTS = ("delta_peer_slices.session_timeline",)
BEACON_CADENCE_DOCS: dict[str, ColumnDoc] = {
    "beacon_cadence_score_w_24h": ColumnDoc(
        "mad_score * (2 * regularity + data_score + persistence) / 4, mad_score = max(0, 1 - MAD(d) / q2(d)), "
        "regularity = (1 - |bowley(d)| + mad_score) / 2, persistence = (min(1, size(t) * q2(d) / 86400) + "
        "hourly_coverage) / 2, data_score = (1 - |bowley(b)| + max(0, 1 - MAD(b) / max(median(b), 1))) / 2; "
        f"{_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "RITA-style beacon score in [0, 1] (1 = a timer-driven connection of constant size around the clock), "
        "of the host's most regular outbound pair over 24 h.",
        _CADENCE_INPUTS,
    ),
    "beacon_pair_conn_cnt_w_24h": ColumnDoc(
        f"size(session_timeline entries of the pair in the window); {_CADENCE_PAIR}",
        "Sessions of the host's most regular outbound pair over 24 h.",
        _CADENCE_INPUTS,
    ),
    "beacon_interval_median_s_w_24h": ColumnDoc(
        f"q2(d) in seconds; {_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "Median inter-arrival time (seconds) of the host's most regular outbound pair over 24 h.",
        _CADENCE_INPUTS,
    ),
    "beacon_interval_mad_ratio_w_24h": ColumnDoc(
        f"MAD(d) / q2(d); {_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "Relative dispersion of the inter-arrival times (0 = a perfect timer) of the most regular pair.",
        _CADENCE_INPUTS,
    ),
    "beacon_interval_bowley_skew_w_24h": ColumnDoc(
        f"bowley(d); {_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "Quartile skewness of the inter-arrival times (0 = symmetric jitter) of the most regular pair.",
        _CADENCE_INPUTS,
    ),
    "beacon_bytes_skew_w_24h": ColumnDoc(
        f"bowley(b); {_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "Quartile skewness of the bytes sent per session of the most regular pair.",
        _CADENCE_INPUTS,
    ),
    "beacon_bytes_mad_w_24h": ColumnDoc(
        f"MAD(b) in bytes; {_CADENCE_TERMS}; {_CADENCE_PAIR}",
        "Median absolute deviation of the bytes sent per session of the most regular pair.",
        _CADENCE_INPUTS,
    ),
    "beacon_hourly_coverage_w_24h": ColumnDoc(
        "count(distinct floor((slice_start - (E - 24 h)) / 3600) over the pair's sessions in the window) / 24; "
        f"{_CADENCE_PAIR}",
        "Share of the 24 hours in which the most regular pair was contacted.",
        _CADENCE_INPUTS,
    ),
}

"""PAN-OS TRAFFIC actions: the one definition of how an action is spelled and what it means.

PAN-OS documents seven TRAFFIC actions: ``allow``, ``deny``, ``drop``, ``drop-icmp``,
``reset-client``, ``reset-server``, ``reset-both``. Real logs spell them in several ways
(``reset-both``, ``reset both``, ``drop ICMP``), so every reader and metric compares the
:func:`normalized_action` spelling: trimmed, lower case, each run of spaces/underscores/hyphens
written as one ``-``. The reader, the delta metrics and the feature catalog all read the tuples
below; an action outside them is an ``unknown_action`` (counted by the reader, kept as a session,
neither allowed nor denied).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

ALLOWED_ACTIONS = ("allow",)
RESET_ACTIONS = ("reset-client", "reset-server", "reset-both")
# Every action that refused the session (the earlier system's drop_cnt, spec 003 item 7).
DENIED_ACTIONS = ("deny", "drop", "drop-icmp", *RESET_ACTIONS)
KNOWN_ACTIONS = ALLOWED_ACTIONS + DENIED_ACTIONS


def normalized_action(action: Column) -> Column:
    """``action`` trimmed, lower case, with runs of spaces, underscores and hyphens as one ``-``."""
    return F.regexp_replace(F.lower(F.trim(action)), r"[\s_-]+", "-")


def is_allowed(action: Column) -> Column:
    """True for an allowed action (any spelling); null for a null action."""
    return normalized_action(action).isin(*ALLOWED_ACTIONS)


def is_denied(action: Column) -> Column:
    """True for an action that refused the session (any spelling); null for a null action."""
    return normalized_action(action).isin(*DENIED_ACTIONS)


def is_reset(action: Column) -> Column:
    """True for a reset action (any spelling); null for a null action."""
    return normalized_action(action).isin(*RESET_ACTIONS)


def is_unknown_action(action: Column) -> Column:
    """True for a non-null action that is none of :data:`KNOWN_ACTIONS`."""
    return F.coalesce(~normalized_action(action).isin(*KNOWN_ACTIONS), F.lit(False))

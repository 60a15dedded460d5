"""PAN-OS action spellings and classes (``ndr_assets.transforms.actions``)."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from ndr_assets.catalog.formulas import BASE_METRIC_DOCS
from ndr_assets.transforms.actions import (
    DENIED_ACTIONS,
    KNOWN_ACTIONS,
    is_allowed,
    is_denied,
    is_unknown_action,
    normalized_action,
)


def test_spellings_normalize_and_classify(spark):
    texts = spark.createDataFrame(
        [("reset-both",), ("reset both",), (" RESET  BOTH ",), ("reset_both",), ("drop ICMP",), ("Allow",),
         ("continue",), (None,)],
        "action string",
    )  # fmt: skip
    a = F.col("action")
    result = texts.select(
        "action",
        normalized_action(a).alias("normalized"),
        is_allowed(a).alias("allowed"),
        is_denied(a).alias("denied"),
        is_unknown_action(a).alias("unknown"),
    )
    expected = spark.createDataFrame(
        [
            ("reset-both", "reset-both", False, True, False),
            ("reset both", "reset-both", False, True, False),
            (" RESET  BOTH ", "reset-both", False, True, False),
            ("reset_both", "reset-both", False, True, False),
            ("drop ICMP", "drop-icmp", False, True, False),
            ("Allow", "allow", True, False, False),
            ("continue", "continue", False, False, True),
            (None, None, None, None, False),
        ],
        "action string, normalized string, allowed boolean, denied boolean, unknown boolean",
    )
    assertDataFrameEqual(result, expected)


def test_the_seven_documented_actions_and_the_catalog_formula_use_the_same_classes():
    assert KNOWN_ACTIONS == ("allow", "deny", "drop", "drop-icmp", "reset-client", "reset-server", "reset-both")
    assert BASE_METRIC_DOCS["deny_cnt"].formula == f"count(action in ({', '.join(DENIED_ACTIONS)}))"

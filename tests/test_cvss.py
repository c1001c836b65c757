"""CVSS v3 base scores and the one rating a finding gets (what policies compare)."""

from __future__ import annotations

import pytest

from provenance.deps.cvss import UNKNOWN, base_score, rating


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N/E:P", 5.3),  # temporal metrics ignored
    ],
)
def test_base_scores_match_the_specification(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # a base metric missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # an unknown value
        "CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # a metric twice
        "",
    ],
)
def test_what_is_not_a_v3_vector_has_no_score(vector: str) -> None:
    assert base_score(vector) is None


def test_a_finding_is_rated_by_its_highest_score_or_label_else_unknown() -> None:
    low = ("CVSS_V3", "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N")
    critical = ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    assert rating([low, critical]) == "CRITICAL"
    assert rating([low]) == "LOW"
    assert rating([("GHSA", "MODERATE")]) == "MEDIUM"
    assert rating([low, ("GHSA", "CRITICAL")]) == "CRITICAL"  # a label above the score wins
    assert rating([("GHSA", "HIGH"), ("GHSA", "LOW")]) == "HIGH"
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    assert rating([("CVSS_V4", v4)]) == UNKNOWN  # not scored here: a policy must not pass it
    assert rating([]) == UNKNOWN

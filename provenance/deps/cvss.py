"""Severity ratings for vulnerability findings: CVSS v3 base scores, and qualitative labels.

OSV records carry severity as CVSS vector strings, and some databases add a qualitative label
(GitHub's ``database_specific.severity``). A policy needs one comparable value per finding, so
each finding gets a rating: the highest of its CVSS v3.0/v3.1 base scores mapped to the CVSS
qualitative scale (the FIRST specification, sections 5 and 7.4) and of the databases'
labels, or ``UNKNOWN`` when there is neither -- which a policy must treat as failing
(``rating in ["NONE", "LOW", "MEDIUM"]`` does). CVSS v2 and v4 vectors are not scored here:
v4 needs the specification's large lookup tables; a finding that only has those is rated by
its label or ``UNKNOWN``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RATINGS = ("NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")
UNKNOWN = "UNKNOWN"

# CVSS v3.1 specification, section 7.4 (metric values).
_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}
_BASE_METRICS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")
# Qualitative labels other databases use, mapped onto the CVSS scale.
_LABELS = {
    "NONE": "NONE",
    "LOW": "LOW",
    "MODERATE": "MEDIUM",
    "MEDIUM": "MEDIUM",
    "HIGH": "HIGH",
    "IMPORTANT": "HIGH",
    "CRITICAL": "CRITICAL",
}


def _round_up(value: float) -> float:
    """The specification's Roundup (Appendix A): the smallest one-decimal number >= value,
    computed on integers so that floating-point noise cannot push 4.0 to 4.1."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def _metrics(vector: str) -> dict[str, str] | None:
    """The metrics of a CVSS v3.0/v3.1 vector with every base metric, or None."""
    parts = vector.strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        name, _, value = part.partition(":")
        if not value or name in metrics:
            return None
        metrics[name] = value
    return metrics if all(m in metrics for m in _BASE_METRICS) else None


def base_score(vector: str) -> float | None:
    """The CVSS v3.0/v3.1 base score of ``vector``, or None if it is not a valid v3 vector."""
    metrics = _metrics(vector)
    if metrics is None:
        return None
    try:
        scope = metrics["S"]
        privileges = _PRIVILEGES[scope][metrics["PR"]]
        av, ac, ui = (_WEIGHTS[m][metrics[m]] for m in ("AV", "AC", "UI"))
        c, i, a = (_WEIGHTS[m][metrics[m]] for m in ("C", "I", "A"))
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * av * ac * privileges * ui
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _round_up(min(total, 10))


def rating_of_score(score: float) -> str:
    """The CVSS qualitative rating of a base score."""
    if score == 0:
        return "NONE"
    if score < 4.0:
        return "LOW"
    if score < 7.0:
        return "MEDIUM"
    if score < 9.0:
        return "HIGH"
    return "CRITICAL"


def rating(severities: Iterable[tuple[str, str]]) -> str:
    """One rating for a finding's ``(method, score)`` severities (see the module docstring)."""
    scores: list[float] = []
    labels: list[str] = []
    for _method, value in severities:
        score = base_score(value)
        if score is not None:
            scores.append(score)
        elif value.strip().upper() in _LABELS:
            labels.append(_LABELS[value.strip().upper()])
    found = [rating_of_score(score) for score in scores] + labels
    return max(found, key=RATINGS.index) if found else UNKNOWN

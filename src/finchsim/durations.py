"""Durations in harness files, in the one grammar Prometheus accepts.

Every duration a user writes (targets' RTO/RPO, load-profile stages, the local platform's
Prometheus scrape interval) is read by `parse_duration`, so a value that passes `finchsim
validate` is also one Prometheus takes when it is handed to it."""

from __future__ import annotations

import re

# prometheus/common model/time.go, `ParseDuration` (what Prometheus parses every duration in its
# configuration with): optional `<digits><unit>` parts, units in the order y, w, d, h, m, s, ms
# with each at most once (`1h30m`, not `30m1h` or `1d1d`), ASCII digits only, no sign, no
# fraction, no spaces, or a bare "0"; the empty string is an error ("empty duration string"),
# and so is a total beyond time.Duration's int64 nanoseconds ("duration out of range"). A year
# is 365d, a week 7d. Checked against Debian's Prometheus 2.42 with `promtool check config`.
_PROMETHEUS_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_UNIT_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
_MAX_NS = 2**63 - 1


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`90s`, `30m`, `1h30m`, `7d`, `500ms`, `0`).

    Raises ValueError naming the text for anything Prometheus would refuse."""
    match = _PROMETHEUS_DURATION.fullmatch(text) if isinstance(text, str) else None
    if text == "0":
        return 0.0
    if not text or match is None:
        raise ValueError(f"expected a duration like 30s, 30m, 1h or 7d, got {text!r}")
    ms = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_MS, strict=True) if n)
    if ms * 1_000_000 > _MAX_NS:
        raise ValueError(f"duration out of range (at most about 292 years), got {text!r}")
    return ms / 1000


def positive_duration(text: str) -> str:
    """A pydantic field check: a Prometheus duration longer than zero (returned unchanged)."""
    if parse_duration(text) <= 0:
        raise ValueError(f"must be longer than 0s, got {text!r}")
    return text

"""Harness files load into strict models; every problem is reported with its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from finchsim.analysis.targets import load_targets
from finchsim.durations import parse_duration
from finchsim.errors import InputError

GOOD = """\
apiVersion: finchsim/v1
kind: Targets
recovery: {rto: 30m, rpo: 1h}
ingress: {rateLimitPerIpPerMinute: 100}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return path


def test_good_targets_load_with_seconds(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path, GOOD))
    assert (targets.recovery.rto_seconds, targets.recovery.rpo_seconds) == (1800, 3600)


def test_every_problem_is_listed_with_file_and_field(tmp_path: Path) -> None:
    bad = GOOD.replace("rpo: 1h", "rpo: soon").replace("100}", "0, burts: 5}")
    with pytest.raises(InputError) as info:
        load_targets(write(tmp_path, bad), "analysis/targets.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        "analysis/targets.yaml: recovery.rpo: Value error, expected a duration like 30s, 30m, "
        "1h or 7d, got 'soon'",
        "analysis/targets.yaml: ingress.rateLimitPerIpPerMinute: Input should be greater than 0",
        "analysis/targets.yaml: ingress.burts: unknown field (check the spelling)",
    ]


def test_wrong_api_version_names_expected_value(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_targets(write(tmp_path, GOOD.replace("finchsim/v1", "finchsim/v2")), "t.yaml")
    assert str(info.value) == "t.yaml: apiVersion: expected 'finchsim/v1', got 'finchsim/v2'"


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_targets(write(tmp_path, GOOD + "slos: [\n"), "t.yaml")
    assert str(info.value).startswith("t.yaml: line 6: invalid YAML")


# Vectors from Prometheus' own grammar (prometheus/common model/time.go ParseDuration and its
# tests), checked with Debian's Prometheus 2.42: `promtool check config` with each value as
# global.scrape_interval accepts exactly the first list and refuses the second.
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h", 3600),
        ("7d", 604800),
        ("0", 0),
        ("0s", 0),
        ("500ms", 0.5),
        ("1m30s", 90),
        ("2w", 14 * 86400),
        ("1y", 365 * 86400),
        ("1y2w3d4h5m6s7ms", 365 * 86400 + 17 * 86400 + 4 * 3600 + 5 * 60 + 6.007),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "1", "5", "-5m", "5 m", "5 seconds", "1.5s", "5S", "30m1h", "1d1d", "5s\n", "\u0661s"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_parse_duration_rejects_what_overflows_prometheus() -> None:
    assert parse_duration("292y") == 292 * 365 * 86400
    with pytest.raises(ValueError, match="duration out of range"):
        parse_duration("293y")

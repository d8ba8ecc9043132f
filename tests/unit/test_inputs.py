"""Harness files load into strict models; every problem is reported with its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from finchsim.analysis.targets import load_targets, parse_duration
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


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "1h30m", "-5m", "5 m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)

"""Load profiles: good ones load with every default filled, bad ones list every problem with
file and field, and the launcher accepts loopback base URLs only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from finchsim.errors import InputError
from finchsim.load import check_loopback, load_profile
from tests.conftest import REPO

HEAD = "apiVersion: finchsim/v1\nkind: LoadProfile\n"
MINIMAL = (
    HEAD
    + """\
stages: [{duration: 20s, users: 5, spawnRate: 5}, {duration: 1m, users: 20, spawnRate: 2}]
maxRequests: 100
maxDuration: 2m
"""
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        load_profile(write(tmp_path, text), "loadtests/profiles/p.yaml")
    return str(info.value).splitlines()


def test_minimal_profile_fills_defaults_and_resolves_seconds(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL))
    assert (profile.stages_seconds, profile.max_duration_seconds, profile.planned_seconds) == (
        80,
        120,
        80,
    )
    runtime = profile.runtime("p")
    assert runtime["name"] == "p"
    assert runtime["stages"] == [
        {"duration": 20, "users": 5, "spawnRate": 5.0},
        {"duration": 60, "users": 20, "spawnRate": 2.0},
    ]
    assert (runtime["maxDuration"], runtime["requestTimeout"]) == (120, 10)
    assert runtime["users"]["ApiUser"] == {
        "weight": 1,
        "wait": {"type": "between", "min": 1.0, "max": 3.0},
        "tasks": {
            "accountSummary": 6,
            "listTransactions": 3,
            "createTransaction": 1,
            "compute": 1,
            "taskStats": 1,
        },
    }
    assert runtime["hosts"] == {"api": "api.finch.example.com", "frontend": "finch.example.com"}
    assert (runtime["sharedClientIp"], runtime["verifyTls"]) == (False, False)
    assert runtime["rateLimitStatuses"] == [429]


def test_maxduration_shorter_than_stages_caps_the_plan(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL.replace("maxDuration: 2m", "maxDuration: 30s")))
    assert profile.planned_seconds == 30


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("maxRequests: 100", "maxRequests: 0"),
            ["maxRequests: Input should be greater than or equal to 1"],
        ),
        (
            ("maxDuration: 2m", "maxDuration: 2 minutes"),
            ["maxDuration: expected a duration like 30s, 30m, 1h or 7d, got '2 minutes'"],
        ),
        (("duration: 20s", "duration: 0s"), ["stages[0].duration: must be longer than 0s"]),
        (
            ("users: 20,", "users: 0,"),
            ["stages[1].users: Input should be greater than or equal to 1"],
        ),
        (
            ("spawnRate: 2}", "spawnRate: 0}"),
            ["stages[1].spawnRate: Input should be greater than 0"],
        ),
        (
            ("spawnRate: 2}", "spawnRate: 2, user: 3}"),
            ["stages[1].user: unknown field (check the spelling)"],
        ),
        (
            ("maxRequests: 100", "maxRequests: 100\nmaxRequest: 5"),
            ["maxRequest: unknown field (check the spelling)"],
        ),
        (
            ("maxRequests: 100", "maxRequests: 100\nrateLimitStatuses: [200]"),
            ["rateLimitStatuses[0]: Input should be greater than or equal to 400"],
        ),
    ],
    ids=[
        "maxRequests",
        "maxDuration",
        "zero-stage",
        "users",
        "spawnRate",
        "stage-typo",
        "top-typo",
        "status",
    ],
)
def test_bad_field_is_reported_with_file_and_field(
    tmp_path: Path, change: tuple[str, str], expected: list[str]
) -> None:
    assert problems(tmp_path, MINIMAL.replace(*change)) == [
        f"loadtests/profiles/p.yaml: {line}" for line in expected
    ]


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        (
            "{ApiUser: {weight: 0}, BrowserUser: {weight: 0}}",
            "users: at least one user class weight must be above 0",
        ),
        (
            "{ApiUser: {weight: -1}}",
            "users.ApiUser.weight: Input should be greater than or equal to 0",
        ),
        (
            "{ApiUser: {tasks: {accountSummary: 0, listTransactions: 0, createTransaction: 0, "
            "compute: 0, taskStats: 0}}}",
            "users.ApiUser.tasks: at least one task weight must be above 0",
        ),
        (
            "{BrowserUser: {tasks: {pageView: -2}}}",
            "users.BrowserUser.tasks.pageView: Input should be greater than or equal to 0",
        ),
        (
            "{BrowserUser: {tasks: {compute: 1}}}",
            "users.BrowserUser.tasks.compute: unknown field (check the spelling)",
        ),
        ("{MobileUser: {weight: 1}}", "users.MobileUser: unknown field (check the spelling)"),
        (
            "{ApiUser: {wait: {type: between, min: 3, max: 1}}}",
            "users.ApiUser.wait.between: min must not be above max",
        ),
        (
            "{ApiUser: {wait: {type: constantThroughput, perSecond: 0}}}",
            "users.ApiUser.wait.constantThroughput.perSecond: Input should be greater than 0",
        ),
        (
            "{ApiUser: {wait: {type: constant, secs: 1}}}",
            "users.ApiUser.wait.constant.seconds: Field required",
        ),
        (
            "{ApiUser: {wait: {type: poisson}}}",
            "users.ApiUser.wait: Input tag 'poisson' found using 'type' does not match any of the "
            "expected tags: 'between', 'constant', 'constantThroughput'",
        ),
    ],
    ids=[
        "all-classes-zero",
        "negative-weight",
        "all-tasks-zero",
        "negative-task",
        "task-typo",
        "unknown-class",
        "between-order",
        "throughput-zero",
        "constant-field",
        "wait-type",
    ],
)
def test_bad_user_mix_is_reported(tmp_path: Path, users: str, expected: str) -> None:
    lines = problems(tmp_path, MINIMAL + f"users: {users}\n")
    assert f"loadtests/profiles/p.yaml: {expected}" in lines


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = HEAD + "stages: []\nmaxRequests: 0\nmaxDuration: soon\nsharedIp: true\n"
    assert problems(tmp_path, text) == [
        "loadtests/profiles/p.yaml: stages: at least one stage is needed",
        "loadtests/profiles/p.yaml: maxRequests: Input should be greater than or equal to 1",
        "loadtests/profiles/p.yaml: maxDuration: expected a duration like 30s, 30m, 1h or 7d, "
        "got 'soon'",
        "loadtests/profiles/p.yaml: sharedIp: unknown field (check the spelling)",
    ]


def test_missing_caps_are_required(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + "stages: [{duration: 5s, users: 1, spawnRate: 1}]\n") == [
        "loadtests/profiles/p.yaml: maxRequests: Field required",
        "loadtests/profiles/p.yaml: maxDuration: Field required",
    ]


def test_wrong_kind_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL.replace("LoadProfile", "Scenario")) == [
        "loadtests/profiles/p.yaml: kind: expected 'LoadProfile', got 'Scenario'"
    ]


@pytest.mark.parametrize(
    "path", sorted((REPO / "loadtests/profiles").glob("*.yaml")), ids=lambda p: p.stem
)
def test_shipped_profile_loads(path: Path) -> None:
    profile = load_profile(path)
    assert profile.runtime(path.stem)["maxRequests"] == profile.maxRequests


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "https://127.0.0.1:8443/",
        "http://127.9.9.9:1",
        "http://localhost:80",
        "https://[::1]:8443",
    ],
)
def test_loopback_base_urls_are_accepted(url: str) -> None:
    check_loopback(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (
            "http://10.0.0.5:80",
            "refusing a non-loopback host: load goes to 127.0.0.0/8, ::1 or localhost",
        ),
        (
            "https://api.finch.example.com",
            "refusing a non-loopback host: load goes to 127.0.0.0/8, ::1 or localhost",
        ),
        ("127.0.0.1:8080", "expected http://HOST:PORT or https://HOST:PORT"),
        (
            "http://127.0.0.1:8080/api",
            "expected no path: the Host header, not the URL, selects the virtual host",
        ),
    ],
)
def test_other_base_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InputError) as info:
        check_loopback(url)
    assert str(info.value) == f"base URL: {url}: {why}"

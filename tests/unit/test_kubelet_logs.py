"""The kubelet's containerLogs request: its path, and PodLogOptions' tailLines, limitBytes and
timestamps applied in the API's order."""

from __future__ import annotations

import re

import pytest

from finchsim.platform.kubelet.logs import parse, select

LOG = b"one\ntwo\nthree\n"


def test_the_path_names_namespace_pod_and_container() -> None:
    assert parse("/containerLogs/ns/pod-1/main?tailLines=2&follow=true") == (
        ("ns", "pod-1", "main"),
        {"tailLines": "2", "follow": "true"},
    )
    assert parse("/containerLogs/ns/pod-1") is None
    assert parse("/metrics/resource") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, LOG),
        ({"tailLines": "2"}, b"two\nthree\n"),
        ({"tailLines": "0"}, b""),
        ({"limitBytes": "5"}, b"one\nt"),
        ({"tailLines": "1", "limitBytes": "3"}, b"thr"),
    ],
)
def test_tail_then_limit(query: dict[str, str], expected: bytes) -> None:
    assert select(LOG, query) == expected


def test_timestamps_prefix_every_line() -> None:
    lines = select(LOG, {"timestamps": "true"}).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in lines)


def test_a_bad_number_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        select(LOG, {"tailLines": "many"})

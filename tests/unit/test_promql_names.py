"""The PromQL tokenizer finds the metric names (and matcher labels) an expression selects, and
nothing else: no function, aggregation, keyword, label list, duration or string."""

from __future__ import annotations

import pytest

from finchsim.platform.exporters.promql import metric_names, selectors

CASES = [
    ("up == 0", {"up"}),
    ('rate(http_requests_total{status=~"5.."}[5m]) > 0.1', {"http_requests_total"}),
    (
        "sum by (namespace, pod) (pg_stat_activity_count)"
        " / max by (namespace, pod) (pg_settings_max_connections) > 0.8",
        {"pg_stat_activity_count", "pg_settings_max_connections"},
    ),
    ("sum(rate(x_total[5m])) without (instance)", {"x_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    (
        'time() - kube_cronjob_status_last_successful_time{cronjob=~".*backup.*"} > 25 * 3600'
        " or (time() - kube_cronjob_created > 25 * 3600"
        " unless on (namespace, cronjob) kube_cronjob_status_last_successful_time)",
        {"kube_cronjob_status_last_successful_time", "kube_cronjob_created"},
    ),
    ("a * on (pod) group_left (node, owner) b", {"a", "b"}),
    ("a offset 5m and bool b", {"a", "b"}),
    ('{__name__="via_matcher", job="x"}', {"via_matcher"}),
    ('{__name__=~"regex_.*"}', set()),
    ("max_over_time(deriv(q[10m])[1h:1m])", {"q"}),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ('count_values("version", build_info)', {"build_info"}),
    ("topk(5, m) @ 1700000000", {"m"}),
    ("m @ start()", {"m"}),
    ("1e3 + 0x1F + .5 + Inf - NaN", set()),
    ("rate(m[$__rate_interval]) > $threshold", {"m"}),
    ('m{namespace=~"$namespace", pod="${pod}"} # a comment naming fake_metric', {"m"}),
    ("sum(m) by (ns) / ignoring(type) n", {"m", "n"}),
    ("recording:rule:name", {"recording:rule:name"}),
    ("quantile_over_time(0.95, rate(m[5m])[$__range:1m])", {"m"}),
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_names(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_matcher_labels_are_read_per_selector() -> None:
    found = selectors(
        'kube_pod_container_resource_limits{namespace=~"finch-.*", resource="memory"}'
        ' / on (pod) kube_pod_info{node!=""}'
    )
    assert [(s.name, s.labels) for s in found] == [
        ("kube_pod_container_resource_limits", {"namespace", "resource"}),
        ("kube_pod_info", {"node"}),
    ]


def test_a_string_with_braces_and_quotes_does_not_confuse_the_matchers() -> None:
    found = selectors(r'm{path="/a{b}\"c", method="GET"} + n')
    assert [(s.name, s.labels) for s in found] == [("m", {"path", "method"}), ("n", set())]

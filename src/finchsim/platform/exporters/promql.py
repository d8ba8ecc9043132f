"""The metric names (and the label names matched on each) a PromQL expression selects.

A small tokenizer, not a parser: it skips string literals, comments, range and subquery
brackets (`[5m]`, `[1h:1m]`), numbers and durations, the label lists of `by`/`without`/`on`/
`ignoring`/`group_left`/`group_right`, function and aggregation names (an identifier followed
by `(`, or an aggregation followed by `by`/`without`), keywords and binary set operators. What
remains are vector selectors: a bare identifier, or `{__name__="x"}`. The expression is assumed
to parse (promtool checks that separately)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?[a-zA-Z0-9]*")
_MATCH_OP = re.compile(r"\s*(=~|!~|!=|=)\s*")
# Grafana's template variables ($namespace, ${var}, [[var]]) may stand where a number is.
_GRAFANA_VAR = re.compile(
    r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*(?::[a-z]+)?\}?|\[\[[a-zA-Z_][a-zA-Z0-9_]*\]\]"
)


@dataclass
class Selector:
    """One vector selector: its metric name (None for `{job="x"}` without a name, or a regex
    on `__name__`), the label names its matchers use, and the matchers (label, op, value)."""

    name: str | None
    labels: set[str] = field(default_factory=set)
    matchers: list[tuple[str, str, str]] = field(default_factory=list)


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_balanced(expr: str, i: int, open_: str, close: str) -> int:
    depth = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        depth += ch == open_
        depth -= ch == close
        i += 1
        if depth == 0:
            break
    return i


def _next_char(expr: str, i: int) -> tuple[str, int]:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return (expr[i] if i < len(expr) else ""), i


def _matchers(expr: str, i: int, selector: Selector) -> int:
    """Read `{...}` at `i` into `selector`; returns the index after `}`."""
    i += 1
    while i < len(expr):
        ch, i = _next_char(expr, i)
        if ch in ",":
            i += 1
            continue
        if ch == "}" or not ch:
            return i + 1
        found = _IDENT.match(expr, i) if ch not in "\"'`" else None
        if found is None:  # a quoted label name (UTF-8 names); skip it
            i = _skip_string(expr, i)
            label = None
        else:
            label = found.group()
            i = found.end()
        op = _MATCH_OP.match(expr, i)
        if op is None:
            return i
        i = op.end()
        value_start = i
        i = _skip_string(expr, i) if i < len(expr) and expr[i] in "\"'`" else i + 1
        text = expr[value_start + 1 : i - 1]
        if label == "__name__":
            if op.group(1) == "=" and selector.name is None:
                selector.name = text
        elif label:
            selector.labels.add(label)
            selector.matchers.append((label, op.group(1), text))
    return i


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`, in order."""
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif ch in "\"'`":
            i = _skip_string(expr, i)
        elif (var := _GRAFANA_VAR.match(expr, i)) is not None:
            i = var.end()
        elif ch == "[":
            i = _skip_balanced(expr, i, "[", "]")
        elif ch == "{":
            selector = Selector(None)
            i = _matchers(expr, i, selector)
            found.append(selector)
        elif ch.isdigit() or (ch == "." and expr[i + 1 : i + 2].isdigit()):
            number = _NUMBER.match(expr, i)
            i = number.end() if number else i + 1
        elif _IDENT.match(expr, i):
            i = _identifier(expr, i, found)
        else:
            i += 1
    return found


def _identifier(expr: str, i: int, found: list[Selector]) -> int:
    ident = _IDENT.match(expr, i)
    assert ident is not None
    word, i = ident.group(), ident.end()
    lower = word.lower()
    after, j = _next_char(expr, i)
    if lower in LABEL_LIST_KEYWORDS:
        return _skip_balanced(expr, j, "(", ")") if after == "(" else i
    if lower in KEYWORDS:
        return i
    if after == "(":  # a function call or an aggregation: its arguments are read on
        return i
    if lower in AGGREGATIONS:
        nxt = _IDENT.match(expr, j)
        if nxt and nxt.group().lower() in ("by", "without"):
            return i
    selector = Selector(word)
    if after == "{":
        j = _matchers(expr, j, selector)
        found.append(selector)
        return j
    found.append(selector)
    return i


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (selectors with a literal name only)."""
    return {s.name for s in selectors(expr) if s.name}

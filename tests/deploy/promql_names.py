"""The metric names a PromQL expression (or a Grafana variable query) reads.

Not a PromQL parser: enough of one for dashboard queries. Everything that can hold an
identifier that is not a metric goes first: string literals (label values, regexes,
``label_replace`` arguments), ``{...}`` label matchers, ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right`` label lists, ``[...]`` ranges, Grafana's ``$variables``. Of what
is left, an identifier is a metric unless a ``(`` follows it (a function or an aggregation) or
it is one of PromQL's keywords; digits before it (``1e3``, ``5m``) make it part of a number.
Grafana's ``label_values(metric, label)`` names a label last, which is dropped too.
"""

from __future__ import annotations

import re

KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_RANGE = re.compile(r"\[[^\[\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_LABEL_VALUES = re.compile(r"\blabel_values\s*\((?:(.*),)?\s*[A-Za-z_]\w*\s*\)\s*$", re.DOTALL)
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(query: str) -> set[str]:
    """Every metric name ``query`` selects (PromQL, or Grafana's ``label_values(...)``)."""
    text = _VARIABLE.sub(" ", _STRING.sub('""', query))
    if (label_values := _LABEL_VALUES.search(text)) is not None:
        text = label_values.group(1) or ""
    for pattern in (_MATCHERS, _LABEL_LIST, _RANGE):
        text = pattern.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in KEYWORDS
    }

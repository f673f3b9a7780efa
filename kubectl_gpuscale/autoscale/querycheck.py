"""One live check of a scaling query against Prometheus, shared by `doctor` (GS004/GS005/GS007)
and `migrate-hpa --apply`'s preflight: how many series it returns (KEDA needs exactly one), the
value now against the threshold, and, when it returns nothing, why (the colon/underscore form
Prometheus holds, an engine rename such as vLLM's gpu_cache_usage_perc -> kv_cache_usage_perc,
or labels matching no series).

Pure: Prometheus is injected (anything with the `PromSource` methods; `kubectl_gpuscale.prom.Prometheus`
has them), so nothing here imports prometheus_api_client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubectl_gpuscale import engines
from kubectl_gpuscale.errors import GpuscaleError

_STRING_READ = re.compile(r'"(?:[^"\\]|\\.)*')  # how far a PromQL double-quoted string's read gets
_STRING = re.compile(_STRING_READ.pattern + '"')  # a whole one
_BRACE, _BRACKET = re.compile(r"\{"), re.compile(r"\[")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(")
_NAME_MATCHER = re.compile(r'__name__\s*=~?\s*"([^"]+)"')
_METRIC_TOKEN = re.compile(r"(?<![\w:\"'.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*(\{|\[|\)|$|\s|[-+*/><=!]))")
_PROMQL_WORDS = frozenset(
    {
        "sum",
        "avg",
        "max",
        "min",
        "count",
        "by",
        "without",
        "rate",
        "irate",
        "increase",
        "bool",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "scalar",
        "vector",
        "histogram_quantile",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "stdvar",
        "count_values",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_max",
        "clamp_min",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "sum_over_time",
        "delta",
        "deriv",
        "time",
        "absent",
        "label_replace",
        "group",
        "le",
        "inf",
        "nan",
        "atan2",
    }
)


class PromSource(Protocol):
    """What the live checks need from Prometheus (`kubectl_gpuscale.prom.Prometheus` has it)."""

    def query(self, promql: str) -> Sequence[Any]: ...

    def name_forms(self, name: str) -> list[str]: ...

    def pod_labels(self, metric: str) -> Any: ...


def metric_names(query: str) -> list[str]:
    """The metric names a PromQL expression mentions (label names, functions and keywords left out)."""
    text = _blank_spans(_blank_strings(query), _BRACE, "}", "{}")
    text = _blank_spans(text, _GROUPING, ")", " ")
    text = _blank_spans(text, _BRACKET, "]", "[]")
    names = []
    for match in _METRIC_TOKEN.finditer(text):
        token = match.group(1)
        if token.lower() in _PROMQL_WORDS or re.fullmatch(r"\d.*", token):
            continue
        if token not in names:
            names.append(token)
    for plain in regex_names(query):
        if plain not in names:
            names.append(plain)
    return names


def _blank_strings(text: str) -> str:
    """`text` with each double-quoted string (escapes read) replaced by ``""``, in linear time.

    It returns what ``re.sub(_STRING.pattern, '""', text)`` does. That sub tries again at every later
    quote of an unterminated string, each try reading to the end: quadratic on forged text.
    A quote the failed read passed over was the second character of an escape, so a read from it
    meets the same characters and stops at the same place: the next try starts there.
    """
    out, done, pos = [], 0, 0
    while (quote := text.find('"', pos)) >= 0:
        string = _STRING.match(text, quote)
        if string is None:  # stopped at the end, or at a backslash before a newline
            pos = _STRING_READ.match(text, quote).end()  # type: ignore[union-attr]  # any quote starts one
            continue
        out += [text[done:quote], '""']
        done = pos = string.end()
    return "".join(out) + text[done:]


def _blank_spans(text: str, opener: re.Pattern[str], close: str, blank: str) -> str:
    """`text` with each span from an `opener` match to the next `close` replaced by `blank`, in linear time.

    It returns what ``re.sub(opener.pattern + f"[^{close}]*" + close, blank, text)`` does. That sub
    reads to the end from every opener when no `close` follows, quadratic on forged text.
    """
    out, done, pos = [], 0, 0
    while (start := opener.search(text, pos)) is not None:
        end = text.find(close, start.end())
        if end < 0:  # no later opener has a close after it either
            break
        out += [text[done : start.start()], blank]
        done = pos = end + 1
    return "".join(out) + text[done:]


def regex_names(query: str) -> list[str]:
    """Metric names matched through ``{__name__=~"..."}`` (``[:_]`` read as ':': both forms covered)."""
    out = []
    for pattern in _NAME_MATCHER.findall(query):
        for part in pattern.split("|"):
            plain = part.replace("[:_]", ":")
            if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", plain) and plain not in out:
                out.append(plain)
    return out


def renamed(name: str) -> tuple[engines.Engine, str, str] | None:
    """(engine, current name, role) when ``name`` is a superseded spelling of an engine metric."""
    found = engines.engine_for_metric(name)
    if not found:
        return None
    engine, role = found
    metric: engines.Metric = getattr(engine, role)
    plain = name.replace(":", "_")
    for i, known in enumerate(metric.names):
        if known.replace(":", "_") == plain and i > 0:
            return engine, metric.names[0], role
    return None


class NameForms:
    """`PromSource.name_forms` with a cache; a failed lookup counts as "no form held"."""

    def __init__(self, prom: PromSource) -> None:
        self._prom = prom
        self._cache: dict[str, list[str]] = {}

    def __call__(self, name: str) -> list[str]:
        if name not in self._cache:
            try:
                self._cache[name] = list(self._prom.name_forms(name))
            except (GpuscaleError, ValueError):
                self._cache[name] = []
        return self._cache[name]


def why_empty(name: str, found: Sequence[str], both_forms: bool, forms: Callable[[str], list[str]]) -> str:
    """Why a metric of an empty query matched nothing: colon/underscore form, rename, or labels."""
    if found and not both_forms and name not in found:
        return f"Prometheus holds {found[0]}, not {name}"
    other = engines.engine_for_metric(name)
    if other:
        alternatives = [
            n for n in getattr(other[0], other[1]).names if n.replace(":", "_") != name.replace(":", "_")
        ]
        present = [f for alt in alternatives for f in forms(alt)]
        if present:
            which = "the current name" if renamed(name) else "the engine's other name"
            return f"Prometheus holds {present[0]} ({which})" + (
                f"; {', '.join(found)} exists but not with these labels" if found else f", not {name}"
            )
    if found:
        return f"{', '.join(found)} exists but no series match the query's labels"
    return f"no series named {name} in either form"


@dataclass(frozen=True)
class QueryCheck:
    """What one query returned now: its samples, the forms held of each metric it names, or the error."""

    query: str
    threshold: float | None
    samples: tuple[Any, ...] = ()
    held: Mapping[str, list[str]] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    error: GpuscaleError | None = None

    @property
    def series(self) -> int:
        """How many series the query returned (0 on error too; see `error`)."""
        return len(self.samples)

    @property
    def values(self) -> list[float | None]:
        """The returned values, at most 10."""
        return [getattr(s, "value", None) for s in self.samples[:10]]

    @property
    def value(self) -> float | None:
        """The value now when the query returned exactly one (non-NaN) series, else None."""
        if len(self.samples) != 1:
            return None
        value = getattr(self.samples[0], "value", None)
        return None if value is None or math.isnan(value) else float(value)

    @property
    def why_empty(self) -> str:
        """Why no series came back (joined reasons)."""
        return "; ".join(self.reasons) or "the selectors match no series"

    @property
    def wanted_replicas(self) -> int | None:
        """About how many replicas an AverageValue trigger asks for now (value / threshold, rounded up)."""
        if self.value is None or not self.threshold:
            return None
        return max(0, math.ceil(self.value / self.threshold))


def check_query(
    prom: PromSource,
    query: str,
    threshold: float | None = None,
    forms: Callable[[str], list[str]] | None = None,
) -> QueryCheck:
    """Run ``query`` once and explain the answer; never raises for a Prometheus failure (see ``error``).

    ``forms`` looks up the forms Prometheus holds of a metric name (default: a fresh `NameForms`;
    pass one to share its cache across queries).
    """
    lookup = forms or NameForms(prom)
    try:
        samples = tuple(prom.query(query))
    except GpuscaleError as exc:
        return QueryCheck(query, threshold, error=exc)
    names = metric_names(query)
    held = {name: lookup(name) for name in names}
    reasons: tuple[str, ...] = ()
    if not samples:
        both = set(regex_names(query))
        reasons = tuple(why_empty(name, found, name in both, lookup) for name, found in held.items())
    return QueryCheck(query, threshold, samples, held, reasons)

"""Pure PromQL builders: name matchers robust to the colon problem, label matchers, per-pod grouping.

No import of prometheus_api_client (or anything heavy): builders in ``autoscale/`` and ``doctor/``
import this module to write the queries they emit.

The colon problem: prometheus_client's OpenMetrics output writes a colon name such as
``vllm:num_requests_waiting`` as ``vllm_num_requests_waiting`` on the sample line, and Prometheus
negotiates OpenMetrics by default, so a server may hold either form. ``name_matcher`` matches both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubectl_gpuscale.errors import InputError

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


@dataclass(frozen=True)
class PodLabels:
    """Which labels carry a series' pod and namespace.

    ``pod``/``namespace`` normally; ``exported_pod``/``exported_namespace`` when an exporter's own
    pod labels (DCGM with Kubernetes mapping) collide with the scrape target's labels and
    ``honor_labels`` is false (the ServiceMonitor default).
    """

    pod: str = "pod"
    namespace: str = "namespace"

    @property
    def exported(self) -> bool:
        """Whether these are the ``exported_*`` labels a scrape conflict produces."""
        return self.pod.startswith("exported_")


POD_LABELS = PodLabels()
EXPORTED_POD_LABELS = PodLabels("exported_pod", "exported_namespace")


def is_metric_name(text: str) -> bool:
    """Whether ``text`` is a bare metric name (not an expression)."""
    return bool(METRIC_NAME_RE.match(text))


def check_metric_name(name: str) -> str:
    """Return ``name`` or raise InputError when it is not a valid Prometheus metric name."""
    if not is_metric_name(name):
        raise InputError(
            f"invalid metric name {name!r}",
            "a metric name is letters, digits, '_' and ':' and does not start with a digit",
            "pass a metric name such as vllm:num_requests_waiting",
        )
    return name


def name_variants(name: str) -> tuple[str, ...]:
    """The names a server may hold for ``name``: itself, then its underscore form when it has colons.

    >>> name_variants("vllm:num_requests_waiting")
    ('vllm:num_requests_waiting', 'vllm_num_requests_waiting')
    """
    check_metric_name(name)
    underscored = name.replace(":", "_")
    return (name,) if underscored == name else (name, underscored)


def name_regex(name: str) -> str:
    """A regex (RE2, fully anchored by Prometheus) matching ``name`` with each ':' as ':' or '_'."""
    check_metric_name(name)
    return name.replace(":", "[:_]")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_escape(value: str) -> str:
    """Escape RE2 metacharacters so ``value`` matches literally inside ``=~``."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


def regex_union(values: Iterable[str]) -> str:
    """An anchored-by-Prometheus regex matching exactly one of ``values`` (sorted, deduplicated)."""
    return "|".join(regex_escape(v) for v in sorted(set(values)))


LabelValue = str | tuple[str, str]
"""A label constraint: ``"value"`` (equality) or ``(op, value)`` with op one of = != =~ !~."""


def label_matchers(labels: Mapping[str, LabelValue] | None) -> list[str]:
    """PromQL label matchers, in the given order, e.g. ``['namespace="ml"', 'pod=~"a|b"']``."""
    out: list[str] = []
    for label, constraint in (labels or {}).items():
        if not LABEL_NAME_RE.match(label):
            raise InputError(f"invalid label name {label!r}", "label names are letters, digits and '_'")
        op, value = ("=", constraint) if isinstance(constraint, str) else constraint
        if op not in ("=", "!=", "=~", "!~"):
            raise InputError(f"invalid label matcher operator {op!r}", "use one of = != =~ !~")
        out.append(f"{label}{op}{quote(value)}")
    return out


def selector(name: str, labels: Mapping[str, LabelValue] | None = None) -> str:
    """A plain series selector ``name{labels}`` for a name known to be held as written."""
    check_metric_name(name)
    matchers = label_matchers(labels)
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


def name_matcher(name: str, labels: Mapping[str, LabelValue] | None = None) -> str:
    """A selector matching ``name`` whether the server holds its colon or underscore form.

    >>> name_matcher("vllm:num_requests_waiting", {"namespace": "ml"})
    '{__name__=~"vllm[:_]num_requests_waiting", namespace="ml"}'
    >>> name_matcher("tgi_queue_size")
    'tgi_queue_size'
    """
    if ":" not in check_metric_name(name):
        return selector(name, labels)
    matchers = [f"__name__=~{quote(name_regex(name))}", *label_matchers(labels)]
    return "{" + ", ".join(matchers) + "}"


def names_matcher(names: Iterable[str], labels: Mapping[str, LabelValue] | None = None) -> str:
    """A selector matching any of ``names`` in either form (for series and label-value lookups).

    >>> names_matcher(["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"])
    '{__name__=~"vllm[:_]gpu_cache_usage_perc|vllm[:_]kv_cache_usage_perc"}'
    """
    regexes = sorted({name_regex(n) for n in names})
    if not regexes:
        raise InputError("no metric names given", "at least one name is needed")
    return "{" + ", ".join([f"__name__=~{quote('|'.join(regexes))}", *label_matchers(labels)]) + "}"


def namespace_scope(
    namespaces: Iterable[str] | None, labels: PodLabels = POD_LABELS
) -> dict[str, LabelValue]:
    """Label constraints keeping only ``namespaces`` (none: every namespace that has a pod label)."""
    names = sorted(set(namespaces or ()))
    if not names:
        return {labels.pod: ("!=", "")}
    if len(names) == 1:
        return {labels.namespace: names[0], labels.pod: ("!=", "")}
    return {labels.namespace: ("=~", regex_union(names)), labels.pod: ("!=", "")}


def by_pod(expr: str, labels: PodLabels = POD_LABELS, aggregate: str = "sum") -> str:
    """``aggregate by (namespace, pod) (expr)`` with the given pod labels."""
    if aggregate not in ("sum", "max", "min", "avg", "count"):
        raise InputError(f"invalid aggregation {aggregate!r}", "use sum, max, min, avg or count")
    return f"{aggregate} by ({labels.namespace}, {labels.pod}) ({expr})"


def gauge_by_pod(
    name: str, namespaces: Iterable[str] | None = None, labels: PodLabels = POD_LABELS, aggregate: str = "sum"
) -> str:
    """One query for a gauge across all pods of ``namespaces``, grouped by namespace and pod.

    >>> gauge_by_pod("vllm:num_requests_waiting", ["ml"])
    'sum by (namespace, pod) ({__name__=~"vllm[:_]num_requests_waiting", namespace="ml", pod!=""})'
    """
    return by_pod(name_matcher(name, namespace_scope(namespaces, labels)), labels, aggregate)


def rate_by_pod(
    name: str, window: str = "2m", namespaces: Iterable[str] | None = None, labels: PodLabels = POD_LABELS
) -> str:
    """Per-second rate of a counter, summed by namespace and pod."""
    return by_pod(f"rate({name_matcher(name, namespace_scope(namespaces, labels))}[{window}])", labels)


def quantile_by_pod(
    histogram: str,
    q: float,
    window: str = "2m",
    namespaces: Iterable[str] | None = None,
    labels: PodLabels = POD_LABELS,
) -> str:
    """``histogram_quantile`` per pod of a histogram given by its base name (``_bucket`` is added)."""
    if not 0 <= q <= 1:
        raise InputError(f"invalid quantile {q}", "a quantile is between 0 and 1")
    bucket = name_matcher(histogram + "_bucket", namespace_scope(namespaces, labels))
    return (
        f"histogram_quantile({q:g}, sum by ({labels.namespace}, {labels.pod}, le) (rate({bucket}[{window}])))"
    )

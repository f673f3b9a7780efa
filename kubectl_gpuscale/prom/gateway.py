"""The Prometheus gateway: the only module that imports ``prometheus_api_client``.

Every answer is plain data (``Sample``, ``Series``, dicts); every failure is a ``GpuscaleError``
saying what failed, why, and what to do.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from kubectl_gpuscale.errors import (
    ForbiddenError,
    GpuscaleError,
    InputError,
    NotFoundError,
    UnreachableError,
)
from kubectl_gpuscale.prom.promql import (
    EXPORTED_POD_LABELS,
    POD_LABELS,
    LabelValue,
    PodLabels,
    gauge_by_pod,
    is_metric_name,
    name_matcher,
    name_variants,
    names_matcher,
    selector,
)
from kubectl_gpuscale.prom.settings import DEFAULT_TIMEOUT, BasicAuth, PrometheusURL, redact, split_userinfo

T = TypeVar("T")
DEFAULT_LOOKBACK = 3600.0
_STATUS_RE = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Sample:
    """One instant-vector element: its labels (``__name__`` included when kept) and value."""

    labels: Mapping[str, str]
    value: float
    timestamp: float = 0.0


@dataclass(frozen=True)
class Series:
    """One range-vector series: labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class Prometheus:
    """One connection to a Prometheus HTTP API. Build it with `Prometheus.connect`."""

    def __init__(
        self, client: PrometheusConnect, session: requests.Session, url: str, timeout: float
    ) -> None:
        self._client = client
        self._session = session
        self.url = url
        self.timeout = timeout

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        basic_auth: BasicAuth | None = None,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Prometheus:
        """Prepare a connection (no request is sent until the first call).

        Args:
            url: base URL, e.g. ``http://prometheus-operated.monitoring.svc:9090`` (a path prefix is kept).
                A ``user:password@`` in it becomes HTTP basic auth and is kept out of `url` and messages.
            headers: extra HTTP headers (e.g. ``X-Scope-OrgID`` for Thanos/Mimir tenants).
            bearer_token: sent as ``Authorization: Bearer …``.
            basic_auth: HTTP basic credentials (instead of userinfo in the URL).
            verify: verify TLS (default), ``False`` to skip, or a CA bundle path.
            timeout: seconds per request.

        Raises:
            InputError: the URL is not an http(s) URL.
        """
        base, from_url = split_userinfo(url)
        auth = basic_auth or from_url
        all_headers = dict(headers or {})
        if bearer_token:
            all_headers["Authorization"] = f"Bearer {bearer_token}"
        session = requests.Session()
        session.verify = verify
        if auth is not None:
            session.auth = (auth.username, auth.password)
        retry = Retry(
            total=1,
            connect=0,
            read=0,
            status=1,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            raise_on_status=False,
        )
        client = PrometheusConnect(
            url=base,
            headers=all_headers or None,
            retry=retry,
            session=session,
            timeout=timeout,
            auth=session.auth,
        )
        return cls(client, session, base, timeout)

    @classmethod
    def open(
        cls,
        where: PrometheusURL,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Prometheus:
        """`connect` to a resolved URL with exactly the credentials `settings.resolve_url` attached to it."""
        return cls.connect(
            where.url,
            headers=headers,
            bearer_token=where.token,
            basic_auth=where.basic_auth,
            verify=verify,
            timeout=timeout,
        )

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- server ---------------------------------------------------------------------------

    def build_info(self) -> dict[str, str]:
        """The server's build info (``version``, ``revision``…); also a reachability check."""

        def call() -> dict[str, str]:
            response = self._session.get(
                f"{self.url}/api/v1/status/buildinfo", timeout=self.timeout, headers=self._client.headers
            )
            if response.status_code != 200:
                raise PrometheusApiClientException(
                    f"HTTP Status Code {response.status_code} ({response.content!r})"
                )
            return dict(response.json()["data"])

        return self._call("read Prometheus build info", call)

    # ---- queries --------------------------------------------------------------------------

    def query(self, promql: str, *, at: float | datetime | None = None) -> list[Sample]:
        """Evaluate an instant query; a scalar result comes back as one sample with no labels.

        Raises:
            InputError: Prometheus rejected the PromQL (its error text is the why).
            UnreachableError: the server could not be reached or did not answer in time.
        """
        params = {"time": _timestamp(at)} if at is not None else None
        result = self._call(
            f"query {promql}", lambda: self._client.custom_query(promql, params=params), promql=promql
        )
        return _samples(result)

    def query_range(
        self, promql: str, start: float | datetime, end: float | datetime, step: float | str
    ) -> list[Series]:
        """Evaluate a range query from ``start`` to ``end`` (epoch seconds or datetimes) every ``step``."""
        begin, finish = _as_datetime(start), _as_datetime(end)
        result = self._call(
            f"query {promql}",
            lambda: self._client.custom_query_range(promql, begin, finish, str(step)),
            promql=promql,
        )
        return [
            Series(dict(item.get("metric", {})), tuple((float(t), float(v)) for t, v in item["values"]))
            for item in result
        ]

    def query_by_pod(
        self,
        query: str,
        namespaces: Iterable[str] | None = None,
        *,
        labels: PodLabels = POD_LABELS,
        aggregate: str = "sum",
    ) -> dict[tuple[str, str], float]:
        """One query for every pod: ``{(namespace, pod): value}``.

        ``query`` is either a metric name (colon or underscore form both matched; the gauge is
        aggregated by namespace and pod) or a full PromQL expression whose result carries the
        pod labels (build it with ``promql.rate_by_pod`` / ``promql.quantile_by_pod``). ``labels``
        says which labels carry the pod (``pod`` or ``exported_pod``, see `pod_labels`). NaN
        values (no data) are left out; duplicate keys are summed.
        """
        wanted = set(namespaces or ())
        expr = gauge_by_pod(query, wanted, labels, aggregate) if is_metric_name(query) else query
        out: dict[tuple[str, str], float] = {}
        for sample in self.query(expr):
            pod = sample.labels.get(labels.pod)
            namespace = sample.labels.get(labels.namespace, "")
            if not pod or math.isnan(sample.value) or (wanted and namespace not in wanted):
                continue
            key = (namespace, pod)
            out[key] = out.get(key, 0.0) + sample.value
        return out

    # ---- names and labels -----------------------------------------------------------------

    def series_names(
        self, match: str | Sequence[str] | None = None, *, lookback: float | None = DEFAULT_LOOKBACK
    ) -> list[str]:
        """Metric names the server holds (``/api/v1/label/__name__/values``), optionally for selectors.

        ``lookback`` seconds limits it to recent series (None: the whole TSDB).
        """
        params = _range_params(lookback)
        if match:
            params["match[]"] = [match] if isinstance(match, str) else list(match)
        result = self._call(
            "list metric names",
            lambda: self._client.get_label_values("__name__", params=params),
            promql=match if isinstance(match, str) else None,
        )
        return sorted(str(n) for n in result or ())

    def metric_exists(
        self,
        name: str,
        within: Mapping[str, LabelValue] | None = None,
        *,
        lookback: float | None = DEFAULT_LOOKBACK,
    ) -> bool:
        """Whether the server holds series named exactly ``name`` (optionally with these labels)."""
        return bool(self.series_names(selector(name, within), lookback=lookback))

    def resolve_name(
        self,
        candidates: Sequence[str],
        within: Mapping[str, LabelValue] | None = None,
        *,
        lookback: float | None = DEFAULT_LOOKBACK,
    ) -> str | None:
        """The first of ``candidates`` the server holds, as it holds it, in one request.

        Each candidate is tried as written, then in its underscore form (the colon problem), so
        ``["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]`` may resolve to
        ``"vllm_kv_cache_usage_perc"``. None when the server holds none of them.
        """
        return self.resolve_names({"_": candidates}, within, lookback=lookback)["_"]

    def resolve_names(
        self,
        groups: Mapping[str, Sequence[str]],
        within: Mapping[str, LabelValue] | None = None,
        *,
        lookback: float | None = DEFAULT_LOOKBACK,
    ) -> dict[str, str | None]:
        """`resolve_name` for several signals at once (one request): ``{key: held name or None}``."""
        everything = [name for names in groups.values() for name in names]
        if not everything:
            return {key: None for key in groups}
        held = set(self.series_names(names_matcher(everything, within), lookback=lookback))
        return {
            key: next((v for name in names for v in name_variants(name) if v in held), None)
            for key, names in groups.items()
        }

    def name_forms(
        self,
        name: str,
        within: Mapping[str, LabelValue] | None = None,
        *,
        lookback: float | None = DEFAULT_LOOKBACK,
    ) -> list[str]:
        """Every form of ``name`` the server holds (colon and/or underscore), in `name_variants` order.

        Both forms at once mean some targets expose the colon name and others the underscore one:
        a query on either alone misses pods; use ``promql.name_matcher``.
        """
        held = set(self.series_names(names_matcher([name], within), lookback=lookback))
        return [v for v in name_variants(name) if v in held]

    def label_names(
        self, match: str | Sequence[str], *, lookback: float | None = DEFAULT_LOOKBACK
    ) -> set[str]:
        """Label names present on the series matching the selector(s) (``/api/v1/labels``)."""
        params = _range_params(lookback)
        params["match[]"] = [match] if isinstance(match, str) else list(match)
        result = self._call(
            "list label names",
            lambda: self._client.get_label_names(params=params),
            promql=match if isinstance(match, str) else None,
        )
        return {str(n) for n in result or ()}

    def pod_labels(
        self,
        metric: str,
        within: Mapping[str, LabelValue] | None = None,
        *,
        lookback: float | None = DEFAULT_LOOKBACK,
    ) -> PodLabels | None:
        """Which labels carry the pod on ``metric``'s series: ``exported_pod`` wins when present.

        With ``exported_*`` present the plain ``pod`` label names the exporter's own pod (a
        ServiceMonitor with honorLabels false), so it is not the workload's. None: no pod label
        (or no such series).
        """
        names = self.label_names(name_matcher(metric, within), lookback=lookback)
        if EXPORTED_POD_LABELS.pod in names:
            return EXPORTED_POD_LABELS
        if POD_LABELS.pod in names:
            return POD_LABELS
        return None

    # ---- error mapping --------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], promql: str | None = None) -> T:
        try:
            return fn()
        except GpuscaleError:
            raise
        except requests.exceptions.SSLError as exc:
            raise UnreachableError(
                f"cannot reach Prometheus at {self.url}",
                f"TLS failed: {_reason(exc)}",
                "give the server's CA bundle, or turn TLS verification off for a test server",
            ) from None
        except requests.exceptions.JSONDecodeError:
            raise UnreachableError(
                f"cannot {what} at {self.url}",
                "the answer is not the Prometheus HTTP API (not JSON)",
                "point the URL at the Prometheus server itself, e.g. http://HOST:9090",
            ) from None
        except requests.exceptions.RequestException as exc:
            if isinstance(exc, requests.exceptions.ConnectTimeout) or "ConnectTimeoutError" in str(exc):
                raise UnreachableError(
                    f"cannot reach Prometheus at {self.url}",
                    f"no connection within {self.timeout:g}s",
                    "check the URL and that nothing (a firewall, a NetworkPolicy) blocks it",
                ) from None
            if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc):
                raise UnreachableError(
                    f"cannot {what} at {self.url}",
                    f"Prometheus did not answer within {self.timeout:g}s",
                    "simplify the query or raise the timeout; check the server's load",
                ) from None
            raise UnreachableError(
                f"cannot reach Prometheus at {self.url}",
                _reason(exc),
                "check the URL (--prometheus or $GPUSCALE_PROMETHEUS_URL) and that Prometheus "
                "is running, e.g. kubectl -n monitoring port-forward "
                "svc/prometheus-operated 9090",
            ) from None
        except PrometheusApiClientException as exc:
            raise self._http_error(what, str(exc), promql) from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise UnreachableError(
                f"cannot {what} at {self.url}",
                f"the answer is not the Prometheus HTTP API ({type(exc).__name__})",
                "point the URL at the Prometheus server itself, e.g. http://HOST:9090",
            ) from None

    def _http_error(self, what: str, message: str, promql: str | None) -> GpuscaleError:
        status, body = _parse_status(message)
        error = ""
        with contextlib.suppress(ValueError, AttributeError):
            error = str(json.loads(body).get("error", ""))
        why = f"HTTP {status}" + (f": {error}" if error else "")
        if status in (400, 422) and error:
            subject = f"Prometheus rejected the query {promql}" if promql else f"Prometheus rejected: {what}"
            return InputError(subject, error, "fix the PromQL")
        if status in (401, 403):
            return ForbiddenError(
                f"cannot {what} at {self.url}",
                why,
                "pass a bearer token ($GPUSCALE_PROMETHEUS_TOKEN) or the headers the proxy needs",
            )
        if status == 404:
            return NotFoundError(
                f"cannot {what} at {self.url}",
                f"{why} (no Prometheus API at this URL)",
                "point the URL at the Prometheus base URL, e.g. http://HOST:9090",
            )
        return UnreachableError(
            f"cannot {what} at {self.url}",
            why or "unexpected answer",
            "check the Prometheus server's health and logs",
        )


def _parse_status(message: str) -> tuple[int, str]:
    match = _STATUS_RE.match(message)
    if not match:
        return 0, ""
    raw = match.group(2)
    try:
        body = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        body = raw
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return int(match.group(1)), str(body)


def _reason(exc: BaseException) -> str:
    text = redact(str(exc))
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("No route to host", "no route to host"),
        ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
        ("WRONG_VERSION_NUMBER", "the server does not speak TLS (use http://)"),
    ):
        if needle in text:
            return reason
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _samples(result: Any) -> list[Sample]:
    if (
        isinstance(result, list)
        and len(result) == 2
        and not isinstance(result[0], dict)
        and not isinstance(result[1], dict)
    ):
        return [Sample({}, float(result[1]), float(result[0]))]
    samples = []
    for item in result or ():
        timestamp, value = item["value"]
        samples.append(Sample(dict(item.get("metric", {})), float(value), float(timestamp)))
    return samples


def _timestamp(at: float | datetime) -> float:
    return at.timestamp() if isinstance(at, datetime) else float(at)


def _as_datetime(value: float | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), tz=timezone.utc)


def _range_params(lookback: float | None) -> dict[str, Any]:
    if lookback is None:
        return {}
    now = time.time()
    return {"start": now - lookback, "end": now}

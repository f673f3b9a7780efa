"""Where gpuscale finds Prometheus: ``--prometheus URL`` > ``$GPUSCALE_PROMETHEUS_URL`` > install config.

Pure: no network, no heavy import. The install config itself is read by its owner
(``kubectl_gpuscale.config``); callers pass its URL in as ``configured``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubectl_gpuscale.errors import InputError

ENV_URL = "GPUSCALE_PROMETHEUS_URL"
ENV_TOKEN = "GPUSCALE_PROMETHEUS_TOKEN"
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PrometheusURL:
    """A Prometheus base URL and where it came from (for messages and the doctor)."""

    url: str
    source: str


def normalize_url(url: str) -> str:
    """The base URL without a trailing slash; InputError unless it is an http(s) URL with a host."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"invalid Prometheus URL {url!r}",
                         "it must be an http:// or https:// URL with a host",
                         "pass e.g. --prometheus http://prometheus-operated.monitoring.svc:9090")
    if parts.query or parts.fragment:
        raise InputError(f"invalid Prometheus URL {url!r}", "it must not carry a query or a fragment",
                         "pass the base URL, e.g. http://prometheus:9090 (a path prefix is fine)")
    return text.rstrip("/")


def resolve_url(flag: str | None = None, *, configured: str | None = None,
                env: Mapping[str, str] | None = None) -> PrometheusURL:
    """The Prometheus URL to use: the flag, else ``$GPUSCALE_PROMETHEUS_URL``, else the install config.

    Raises:
        InputError: none is set, or the chosen one is not an http(s) URL.
    """
    environ = os.environ if env is None else env
    for value, source in ((flag, "--prometheus"), (environ.get(ENV_URL), f"${ENV_URL}"),
                          (configured, "the install config")):
        if value:
            return PrometheusURL(normalize_url(value), source)
    raise InputError("no Prometheus URL", f"neither --prometheus, ${ENV_URL} nor the install config sets one",
                     "pass --prometheus http://HOST:9090 (or kubectl port-forward to your Prometheus)")


def resolve_token(flag: str | None = None, *, env: Mapping[str, str] | None = None) -> str | None:
    """The bearer token: the flag, else ``$GPUSCALE_PROMETHEUS_TOKEN``, else none."""
    environ = os.environ if env is None else env
    return flag or environ.get(ENV_TOKEN) or None

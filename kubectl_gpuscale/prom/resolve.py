"""The one place a command finds its Prometheus and connects to it.

Order, first found wins: ``--prometheus URL`` > ``$GPUSCALE_PROMETHEUS_URL`` > the install record
(the local file for this context, then the cluster ConfigMap, see `kubectl_gpuscale.config`) >
discovery of a Prometheus Service in the cluster (only for callers that ask: an in-cluster
Service address is seldom reachable from the user's machine).

Credentials follow `kubectl_gpuscale.prom.settings.resolve_url`: basic credentials from the chosen
URL's own userinfo, ``$GPUSCALE_PROMETHEUS_TOKEN`` only to a URL given in this invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.prom.settings import DEFAULT_TIMEOUT, ENV_URL, PrometheusURL, resolve_token, resolve_url

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.prom.gateway import Prometheus

NO_URL = "no Prometheus URL"
"""The `InputError.what` raised when no source names a Prometheus."""


def resolve(
    flag: str | None = None,
    cluster: Cluster | None = None,
    *,
    context: str | None = None,
    recorded: bool = True,
    discover: bool = False,
    env: Mapping[str, str] | None = None,
) -> PrometheusURL:
    """The Prometheus to use and its credentials: flag > env > install record > discovery.

    The install record is read only with `recorded` and when neither the flag nor the environment
    names a URL; discovery (`kubectl_gpuscale.config.discover_prometheus`) only with `discover` and a cluster.

    Raises:
        InputError: `NO_URL` when none is known, or the chosen URL is not an http(s) URL
            (the message then names where it came from).
    """
    from kubectl_gpuscale import config

    environ = os.environ if env is None else env
    record = None
    if recorded and not flag and not environ.get(ENV_URL):
        record = config.configured_prometheus(cluster, context=context)
    try:
        return resolve_url(
            flag,
            configured=record.url if record else None,
            configured_source=record.source if record else None,
            env=environ,
        )
    except InputError as exc:
        if exc.what != NO_URL:
            if not flag:
                exc.what = f"{exc.what} ({record.source if record else '$' + ENV_URL})"
            raise
        found = config.discover_prometheus(cluster) if discover and cluster is not None else None
        if found is None:
            raise
    return PrometheusURL(found.url, found.source, token_withheld=resolve_token(env=environ) is not None)


def connect(where: PrometheusURL, *, timeout: float | None = None, check: bool = False) -> Prometheus:
    """A gateway to `where` with exactly the credentials the resolver attached; with `check`, ask the
    server's build info first (GpuscaleError when it does not answer; nothing left open)."""
    from kubectl_gpuscale.prom.gateway import Prometheus

    prom = Prometheus.open(where, timeout=timeout or DEFAULT_TIMEOUT)
    if check:
        try:
            prom.build_info()
        except BaseException:
            prom.close()
            raise
    return prom

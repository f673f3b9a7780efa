"""Prometheus credentials for KEDA, kept out of every emitted object.

When the Prometheus needs auth, each ScaledObject's prometheus triggers get an
``authenticationRef`` to a TriggerAuthentication in their namespace, which points KEDA at a
Secret the user creates (`create_secret_command`); the credential itself appears in no object
and no output. Pure: plain dicts in and out.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.names import PROMETHEUS_SECRET

SECRET_ENV = {
    "username": "PROMETHEUS_USER",
    "password": "PROMETHEUS_PASSWORD",
    "bearerToken": "GPUSCALE_PROMETHEUS_TOKEN",
}
"""The shell variable each Secret key is read from in the printed `kubectl create secret` line."""


@dataclass(frozen=True)
class PrometheusAuth:
    """How KEDA authenticates to Prometheus: `mode` (basic | bearer) with the keys of Secret `secret`."""

    mode: str
    secret: str = PROMETHEUS_SECRET
    name: str = PROMETHEUS_SECRET


def mode_for(*, basic: bool, token: bool) -> str | None:
    """The KEDA auth mode: basic for userinfo in the URL, else bearer for a token, else none."""
    return "basic" if basic else "bearer" if token else None


def attach(object_lists: Sequence[MutableSequence[dict[str, Any]]], auth: PrometheusAuth) -> list[str | None]:
    """Make every ScaledObject's prometheus triggers authenticate through `auth`, in place.

    One TriggerAuthentication per namespace goes just before the first ScaledObject there.
    Returns those namespaces in order (None: the ScaledObject names none).
    """
    namespaces: list[str | None] = []
    for objects in object_lists:
        out: list[dict[str, Any]] = []
        for obj in objects:
            triggers = (obj.get("spec") or {}).get("triggers") or []
            if obj.get("kind") == "ScaledObject" and any(t.get("type") == "prometheus" for t in triggers):
                namespace = (obj.get("metadata") or {}).get("namespace")
                if namespace not in namespaces:
                    namespaces.append(namespace)
                    out.append(
                        builders.trigger_authentication(
                            name=auth.name, namespace=namespace, mode=auth.mode, secret=auth.secret
                        )
                    )
                spec = dict(obj["spec"])
                spec["triggers"] = [
                    builders.authenticated(t, auth_name=auth.name, mode=auth.mode)
                    if t.get("type") == "prometheus"
                    else t
                    for t in triggers
                ]
                obj = {**obj, "spec": spec}
            out.append(obj)
        objects[:] = out
    return namespaces


def create_secret_command(auth: PrometheusAuth, namespace: str | None) -> str:
    """The `kubectl create secret` line the user runs; values come from shell variables, never from us."""
    keys = builders.AUTH_PARAMETERS[auth.mode]
    secret_key = keys[-1]
    where = f" -n {namespace}" if namespace else ""
    literals = "".join(f' --from-literal={key}="${SECRET_ENV[key]}"' for key in keys[:-1])
    return (
        f'printf %s "${SECRET_ENV[secret_key]}" | kubectl create secret generic {auth.secret}{where}'
        f"{literals} --from-file={secret_key}=/dev/stdin"
    )

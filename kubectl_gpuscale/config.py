"""Settings every command reads: the Prometheus in use, and what `install` put in the cluster.

Where they live (decided here, documented in docs/install.md):

1. The cluster: ConfigMap ``gpuscale-config`` in namespace ``gpuscale-system``. `install`
   writes it (the Prometheus it found or was given, one record per installed component),
   so everyone who works on the cluster sees the same answer.
2. A local file: ``$XDG_CONFIG_HOME/kubectl-gpuscale/config.yaml`` (default ``~/.config``),
   with one section per kubeconfig context, for a user who cannot write the ConfigMap or
   wants their own Prometheus (e.g. a port-forward).

`prometheus_url` resolves, first found wins: an explicit ``--prometheus`` flag, the
``GPUSCALE_PROMETHEUS_URL`` environment variable, the local file (this context), the
cluster ConfigMap, then discovery in the cluster (`discover_prometheus`).

No kubernetes import: the cluster is reached through the `Cluster` gateway passed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError, InputError, NotFoundError
from kubectl_gpuscale.inputs import read_text
from kubectl_gpuscale.manifests import dump_yaml, load_yaml
from kubectl_gpuscale.names import (
    CONFIG_FIELD_MANAGER,
    CONFIG_NAME,
    CONFIG_NAMESPACE,
    MANAGED_LABELS,
    PROGRAM,
)
from kubectl_gpuscale.prom.settings import ENV_URL as ENV_PROMETHEUS  # noqa: F401  (config.ENV_PROMETHEUS)

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

KEY_PROMETHEUS = "prometheus-url"
KEY_PROMETHEUS_SOURCE = "prometheus-source"
COMPONENT_PREFIX = "component."
DEFAULT_CONTEXT = "_default"


def local_path() -> Path:
    """The local settings file."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / PROGRAM / "config.yaml"


def load_local(context: str | None) -> dict[str, str]:
    """This context's section of the local file ({} when absent)."""
    path = local_path()
    if not path.is_file():
        return {}
    data = load_yaml(read_text(str(path), "settings file"), str(path)) or {}
    from kubectl_gpuscale import shapes

    try:
        shapes.check(
            data,
            shapes.mapping(
                {
                    "contexts": shapes.mapping(
                        values=shapes.mapping(values=shapes.SCALAR, nullable=True), nullable=True
                    )
                }
            ),
        )
    except shapes.ShapeError as exc:
        raise InputError(
            f"cannot read {path}",
            f"{exc.path} must be {exc.expected}, found {exc.found}",
            "fix or delete the file",
        ) from None
    section = (data.get("contexts") or {}).get(context or DEFAULT_CONTEXT) or {}
    return {str(k): str(v) for k, v in section.items()}


def _sorted(data: Any) -> Any:
    return {k: _sorted(data[k]) for k in sorted(data)} if isinstance(data, dict) else data


def save_local(context: str | None, updates: Mapping[str, str | None]) -> Path:
    """Set (or with None, remove) keys in this context's section of the local file."""
    path = local_path()
    data: dict[str, Any] = {}
    if path.is_file():
        data = load_yaml(read_text(str(path), "settings file"), str(path)) or {}
    section = data.setdefault("contexts", {}).setdefault(context or DEFAULT_CONTEXT, {})
    for key, value in updates.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(_sorted(data)))
    return path


def read_cluster(cluster: Cluster) -> dict[str, str] | None:
    """The ConfigMap's data; {} when it does not exist; None when it may not be read (403)."""
    try:
        cm = cluster.get_or_none("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    except ForbiddenError:
        return None
    return dict((cm or {}).get("data") or {})


def config_map(data: Mapping[str, str]) -> dict[str, Any]:
    """The settings ConfigMap object holding `data`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE, "labels": dict(MANAGED_LABELS)},
        "data": dict(sorted(data.items())),
    }


def namespace_object() -> dict[str, Any]:
    """The namespace the settings (and the pre-pull DaemonSet) live in."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": CONFIG_NAMESPACE, "labels": dict(MANAGED_LABELS)},
    }


def write_cluster(
    cluster: Cluster, updates: Mapping[str, str | None], *, dry_run: bool = False
) -> dict[str, Any]:
    """Merge `updates` (None removes a key) into the ConfigMap by server-side apply; returns the object sent."""
    current = read_cluster(cluster) or {}
    merged = {k: v for k, v in {**current, **updates}.items() if v is not None}
    if merged.get(KEY_PROMETHEUS):
        merged[KEY_PROMETHEUS] = _without_credentials(merged[KEY_PROMETHEUS])
    obj = config_map(merged)
    cluster.apply(namespace_object(), dry_run=dry_run, field_manager=CONFIG_FIELD_MANAGER)
    cluster.apply(obj, dry_run=dry_run, field_manager=CONFIG_FIELD_MANAGER, force=True)
    return obj


def _without_credentials(url: str) -> str:
    """A Prometheus URL fit for the shared ConfigMap: no ``user:password@``."""
    from kubectl_gpuscale.prom.settings import redact, split_userinfo

    try:
        return split_userinfo(url)[0]
    except InputError:
        return redact(url)


# ---- install records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallRecord:
    """What `install` put in the cluster for one component.

    `objects` are the objects this install created (labelled with `install_id`); `adopted` the
    ones that existed before (never deleted by uninstall); `files` the release files applied,
    each ``{"file", "sha256", "source"}``.
    """

    component: str
    version: str
    method: str  # helm | manifests | generated
    objects: tuple[dict[str, str], ...] = ()
    release: str | None = None  # the Helm release name
    namespace: str | None = None
    install_id: str | None = None
    adopted: tuple[dict[str, str], ...] = ()
    files: tuple[dict[str, str], ...] = ()

    def to_json(self) -> str:
        """The record as a ConfigMap value."""
        return json.dumps(
            {
                "version": self.version,
                "method": self.method,
                "objects": list(self.objects),
                "release": self.release,
                "namespace": self.namespace,
                "installId": self.install_id,
                "adopted": list(self.adopted),
                "files": list(self.files),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, component: str, text: str) -> InstallRecord:
        """Parse a ConfigMap value (entries are checked by uninstall, not trusted here)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("an install record is a JSON object")
        install_id = data.get("installId")
        return cls(
            component,
            str(data.get("version", "")),
            str(data.get("method", "")),
            tuple(data.get("objects") or ()),
            data.get("release"),
            data.get("namespace"),
            install_id if isinstance(install_id, str) and install_id else None,
            tuple(data.get("adopted") or ()),
            tuple(data.get("files") or ()),
        )


def records(data: Mapping[str, str]) -> dict[str, InstallRecord]:
    """The install records in the ConfigMap data (unparseable ones are skipped)."""
    out = {}
    for key, value in data.items():
        if key.startswith(COMPONENT_PREFIX):
            name = key[len(COMPONENT_PREFIX) :]
            try:
                out[name] = InstallRecord.from_json(name, value)
            except (ValueError, TypeError):
                continue
    return out


# ---- Prometheus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusRef:
    """A Prometheus URL and where it came from (flag, env, local file, cluster config, discovered ...)."""

    url: str
    source: str


def _service_url(svc: Mapping[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    ports = (svc.get("spec") or {}).get("ports") or []
    port = next((p.get("port") for p in ports if p.get("name") in ("web", "http-web", "http")), None)
    port = port or (ports[0].get("port") if ports else 9090)
    return f"http://{meta.get('name')}.{meta.get('namespace')}.svc:{port}"


# (label selector, name) searches, most specific first
_PROMETHEUS_SEARCHES: tuple[tuple[str | None, str | None], ...] = (
    ("app=kube-prometheus-stack-prometheus", None),
    (None, "prometheus-operated"),
    ("app.kubernetes.io/name=prometheus,app.kubernetes.io/component=server", None),
    (None, "prometheus-server"),
    (None, "prometheus"),
)


def discover_prometheus(cluster: Cluster) -> PrometheusRef | None:
    """Find a Prometheus Service in the cluster (kube-prometheus-stack, the operator's
    `prometheus-operated`, the community chart's `prometheus-server`), or None."""
    for selector, name in _PROMETHEUS_SEARCHES:
        try:
            found = cluster.list(
                "v1",
                "Service",
                None,
                label_selector=selector,
                field_selector=f"metadata.name={name}" if name else None,
            )
        except (ForbiddenError, NotFoundError):
            continue
        if name:
            found = [s for s in found if (s.get("metadata") or {}).get("name") == name]
        found.sort(
            key=lambda s: (
                s.get("metadata", {}).get("namespace") != "monitoring",
                s.get("metadata", {}).get("namespace", ""),
                s.get("metadata", {}).get("name", ""),
            )
        )
        if found:
            how = f"label {selector}" if selector else f"name {name}"
            return PrometheusRef(_service_url(found[0]), f"discovered (Service by {how})")
    return None


def prometheus_url(
    cluster: Cluster | None = None,
    *,
    explicit: str | None = None,
    context: str | None = None,
    discover: bool = True,
) -> PrometheusRef | None:
    """The Prometheus to use; see the module docstring for the order. None when none is known.

    The order lives in `kubectl_gpuscale.prom.resolve.resolve`; this drops the credentials.
    """
    from kubectl_gpuscale.prom.resolve import NO_URL, resolve
    from kubectl_gpuscale.prom.settings import FLAG_SOURCE

    try:
        chosen = resolve(explicit, cluster, context=context, discover=discover)
    except GpuscaleError as exc:
        if exc.what == NO_URL or not discover or cluster is None:
            return None
        return discover_prometheus(cluster)  # the URL given is unusable: what the cluster has
    return PrometheusRef(chosen.url, f"{FLAG_SOURCE} flag" if chosen.source == FLAG_SOURCE else chosen.source)


def configured_prometheus(
    cluster: Cluster | None = None, *, context: str | None = None
) -> PrometheusRef | None:
    """The recorded Prometheus: the local file (this context), then the cluster ConfigMap.

    This is the ``configured`` value `kubectl_gpuscale.prom.settings.resolve_url` takes.
    """
    local = load_local(context or (cluster.context if cluster else None)).get(KEY_PROMETHEUS)
    if local:
        return PrometheusRef(local, f"local file {local_path()}")
    if cluster is None:
        return None
    try:
        data = read_cluster(cluster) or {}
    except GpuscaleError:
        data = {}
    if data.get(KEY_PROMETHEUS):
        return PrometheusRef(data[KEY_PROMETHEUS], f"ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME}")
    return None

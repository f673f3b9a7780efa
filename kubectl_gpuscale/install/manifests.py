"""Release manifests: find them (a --manifests dir, the cache, or a verified download), parse them,
lay the GPU defaults over them, and order them for server-side apply.

No kubernetes import: objects are plain dicts.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_gpuscale.errors import GpuscaleError, InputError, NotFoundError, UnreachableError
from kubectl_gpuscale.inputs import MAX_TEXT_BYTES
from kubectl_gpuscale.install.catalog import Artifact
from kubectl_gpuscale.install.defaults import Setting
from kubectl_gpuscale.manifests import parse_documents
from kubectl_gpuscale.names import PROGRAM

DOWNLOAD_TIMEOUT_S = 60.0
MAX_MANIFEST_BYTES = MAX_TEXT_BYTES


def cache_dir() -> Path:
    """The download cache: $XDG_CACHE_HOME/kubectl-gpuscale/manifests (default ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / PROGRAM / "manifests"


@dataclass(frozen=True)
class Fetched:
    """A manifest file's text, where it came from, its sha256 and what that digest was checked against."""

    artifact: Artifact
    text: str
    source: str  # "dir:<path>", "cache:<path>" or "download:<url>"
    sha256: str
    verified: bool  # the digest matched at least one expected digest
    checked: tuple[str, ...] = ()  # the sources of the expected digests it matched


def sha256_of(data: bytes) -> str:
    """Hex sha256."""
    return hashlib.sha256(data).hexdigest()


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_digest(cached: Path) -> str | None:
    """The digest written next to a cached file when it was downloaded (sha256sum format), or None."""
    try:
        text = _sidecar(cached).read_text().split()
    except OSError:
        return None
    return text[0] if text and SHA256_HEX.match(text[0]) else None


def _expected(artifact: Artifact, given: str | None, recorded: str | None) -> list[tuple[str, str]]:
    """(source, digest) pairs a file must match: the catalogue pin, --sha256, the install record."""
    out = []
    if artifact.sha256:
        out.append(("the pin in the catalogue", artifact.sha256))
    if given:
        out.append(("--sha256", given))
    if recorded:
        out.append(("the install record in the cluster", recorded))
    return out


def _mismatch(digest: str, expected: list[tuple[str, str]]) -> tuple[str, str] | None:
    return next(((src, want) for src, want in expected if want != digest), None)


def fetch(
    artifact: Artifact,
    *,
    manifests_dir: str | Path | None = None,
    cache: Path | None = None,
    download: bool = True,
    warn: Callable[[str], None] | None = None,
    given: str | None = None,
    recorded: str | None = None,
) -> Fetched:
    """The text of one release file, its sha256 checked against every digest known for it.

    Expected digests: the catalogue pin, ``given`` (`--sha256 FILE=DIGEST`) and ``recorded``
    (the digest the install record in the cluster holds for the same file). A `manifests_dir`
    is the air-gapped path: the file must be there (named as in the catalog); a mismatch with
    ``given`` is refused, one with the pin only warned about (you may have edited it).
    Otherwise the cache, re-verified against those digests and the one written when it was
    downloaded (a mismatch is refused: the cache was changed), then a download, refused on a
    mismatch and cached with its digest.
    """
    expected = _expected(artifact, given, recorded)
    if manifests_dir is not None:
        return _from_dir(artifact, manifests_dir, expected, given=given, recorded=recorded, warn=warn)
    cache = cache or cache_dir()
    cached = cache / artifact.file
    if cached.is_file():
        found = _from_cache(artifact, cached, expected, download=download, warn=warn)
        if found is not None:
            return found
    if not download:
        raise NotFoundError(
            f"cannot find {artifact.file}",
            "not in the cache (with a recorded sha256) and downloads are off",
            "pass --manifests DIR with the release files",
        )
    data = _download(artifact.url)
    digest = sha256_of(data)
    wrong = _mismatch(digest, expected)
    if wrong:
        raise GpuscaleError(
            f"refusing {artifact.url}",
            f"sha256 mismatch: got {digest}, {wrong[0]} says {wrong[1]}",
            "the release file changed or the download was tampered with; check the URL, "
            "or pass --manifests DIR with files you trust",
        )
    if not expected and warn:
        warn(
            f"{artifact.file} has no published sha256 pinned in this build; downloaded sha256 {digest} "
            "(recorded: later runs check the cache against it)"
        )
    _write_atomic(cached, data)
    _write_atomic(_sidecar(cached), f"{digest}  {artifact.file}\n".encode())
    return Fetched(
        artifact,
        data.decode("utf-8"),
        f"download:{artifact.url}",
        digest,
        bool(expected),
        tuple(src for src, _ in expected),
    )


def _from_dir(
    artifact: Artifact,
    manifests_dir: str | Path,
    expected: list[tuple[str, str]],
    *,
    given: str | None,
    recorded: str | None,
    warn: Callable[[str], None] | None,
) -> Fetched:
    """The air-gapped path: the file from `--manifests DIR`, refused on a mismatch with ``given`` only."""
    path = Path(manifests_dir) / artifact.file
    if not path.is_file():
        raise NotFoundError(
            f"cannot find {artifact.file} in {manifests_dir}",
            "--manifests names a directory that must hold every release file",
            f"download {artifact.url} into {manifests_dir} (name it {artifact.file})",
        )
    data = path.read_bytes()
    digest = sha256_of(data)
    if given and digest != given:
        raise GpuscaleError(
            f"refusing {path}",
            f"sha256 mismatch: the file has {digest}, --sha256 says {given}",
            "check you have the file you meant, or fix the --sha256 value",
        )
    if artifact.sha256 and digest != artifact.sha256 and warn:
        warn(f"{path} has sha256 {digest}, not the pinned {artifact.sha256} (using it as given)")
    if recorded and digest != recorded and not given and warn:
        warn(
            f"{path} has sha256 {digest}, not the {recorded} recorded at the last install (using it as given)"
        )
    checked = tuple(
        src for src, want in expected if want == digest and src != "the install record in the cluster"
    )
    return Fetched(artifact, data.decode("utf-8"), f"dir:{path}", digest, bool(checked), checked)


def _from_cache(
    artifact: Artifact,
    cached: Path,
    expected: list[tuple[str, str]],
    *,
    download: bool,
    warn: Callable[[str], None] | None,
) -> Fetched | None:
    """The cached file, re-verified (a mismatch is refused); None when it has no digest to check it against."""
    data = cached.read_bytes()
    digest = sha256_of(data)
    side = recorded_digest(cached)
    in_cache = [*expected, *([("the digest recorded when it was downloaded", side)] if side else [])]
    wrong = _mismatch(digest, in_cache)
    if wrong:
        raise GpuscaleError(
            f"refusing the cached {cached}",
            f"its sha256 is {digest}, but {wrong[0]} says {wrong[1]}: the file was changed "
            "after it was downloaded",
            f"delete {cached} (and {_sidecar(cached).name}) to download it again, "
            "or pass --manifests DIR with files you trust",
        )
    if in_cache:
        return Fetched(
            artifact, data.decode("utf-8"), f"cache:{cached}", digest, True, tuple(src for src, _ in in_cache)
        )
    if warn:
        warn(
            f"cached {cached} has no recorded sha256 to check it against; "
            + ("downloading it again" if download else "not using it")
        )
    return None


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": PROGRAM})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data: bytes = response.read(MAX_MANIFEST_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise UnreachableError(
            f"cannot download {url}",
            f"HTTP {exc.code} {exc.reason}",
            "check the version exists, or pass --manifests DIR",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnreachableError(
            f"cannot download {url}",
            str(reason),
            "on an air-gapped machine pass --manifests DIR with the release files",
        ) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise GpuscaleError(f"refusing {url}", f"larger than {MAX_MANIFEST_BYTES} bytes", "check the URL")
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parse(text: str, source: str = "manifest") -> list[dict[str, Any]]:
    """The objects of a multi-document YAML (empty documents and `List`s flattened)."""
    docs = parse_documents(text, source)
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not doc:
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise InputError(
                f"cannot parse {source}",
                "a document is not a Kubernetes object",
                "each YAML document needs apiVersion and kind",
            )
        if doc["kind"] == "List" or (doc["kind"].endswith("List") and "items" in doc):
            out.extend(i for i in doc.get("items") or [] if i)
        else:
            out.append(doc)
    return out


# Apply order: what others depend on first (kubectl's own install order, roughly).
_KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "PriorityClass",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "APIService",
)
_LAST = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects in apply order: namespaces and CRDs first, webhooks last; stable otherwise."""

    def rank(obj: dict[str, Any]) -> int:
        kind = obj.get("kind", "")
        if kind in _KIND_ORDER:
            return _KIND_ORDER.index(kind)
        if kind in _LAST:
            return len(_KIND_ORDER) + 2
        return len(_KIND_ORDER) + 1

    return sorted(objects, key=rank)


def crd_scopes(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for the CRDs among `objects`."""
    out: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            out[(spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))] = (
                spec.get("scope") == "Namespaced"
            )
    return out


CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "APIService",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "StorageClass",
        "Node",
        "PersistentVolume",
        "RuntimeClass",
        "IngressClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)


def is_namespaced(obj: dict[str, Any], crd_scope: dict[tuple[str, str], bool]) -> bool:
    """Whether an object is namespaced: built-in knowledge, then the CRDs in the same manifests."""
    kind = obj.get("kind", "")
    group = obj.get("apiVersion", "").split("/")[0] if "/" in obj.get("apiVersion", "") else ""
    if (group, kind) in crd_scope:
        return crd_scope[(group, kind)]
    return kind not in CLUSTER_SCOPED_KINDS


def set_namespaces(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Give namespaced objects without one the component's namespace (copies)."""
    scopes = crd_scopes(objects)
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if is_namespaced(obj, scopes):
            meta.setdefault("namespace", namespace)
        else:
            meta.pop("namespace", None)
        out.append(obj)
    return out


def overlay(
    objects: list[dict[str, Any]], settings: list[Setting]
) -> tuple[list[dict[str, Any]], list[Setting]]:
    """Lay the GPU settings over the manifest objects (ConfigMap data, container env).

    Returns the new objects and the settings that found no object to land on (the caller
    applies those as their own small ConfigMaps, or reports them).
    """
    out = [copy.deepcopy(o) for o in objects]
    left: list[Setting] = []
    max_timeout: int | None = None
    for s in settings:
        landed = False
        if s.configmap:
            landed = _land_configmap(out, s.configmap, s)
            if s.key == "config-defaults.max-revision-timeout-seconds":
                max_timeout = int(s.value)
        elif s.env:
            landed = _land_env(out, s.env, s)
        if not landed and (s.configmap or (s.env and not s.helm)):
            left.append(s)
    if max_timeout and max_timeout > 600:
        _raise_activator_grace(out, max_timeout)
    return out, left


def _land_configmap(objects: list[dict[str, Any]], configmap: tuple[str, str], s: Setting) -> bool:
    """Set the setting's key in its ConfigMap among `objects`; whether it was there."""
    ns, name = configmap
    landed = False
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "ConfigMap" and meta.get("name") == name and meta.get("namespace") == ns:
            obj.setdefault("data", {})[s.data_key] = s.value
            landed = True
    return landed


def _land_env(objects: list[dict[str, Any]], env: tuple[str, str], s: Setting) -> bool:
    """Set the setting's variable in its workload's first container; whether the workload was there."""
    workload, variable = env
    landed = False
    for obj in objects:
        if (
            obj.get("kind") in ("Deployment", "DaemonSet")
            and (obj.get("metadata") or {}).get("name") == workload
        ):
            containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers"
            ) or []
            if containers:
                _set_env(containers[0], variable, s.value)
                containers[0]["env"] = [e for e in containers[0]["env"] if e.get("name") not in s.drop_env]
                landed = True
    return landed


def _raise_activator_grace(objects: list[dict[str, Any]], max_timeout: int) -> None:
    """Give Knative's activator a termination grace at least the max revision timeout."""
    for obj in objects:
        meta = obj.get("metadata") or {}
        if (
            obj.get("kind") == "Deployment"
            and meta.get("name") == "activator"
            and meta.get("namespace") == "knative-serving"
        ):
            pod = obj.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
            pod["terminationGracePeriodSeconds"] = max(
                max_timeout, int(pod.get("terminationGracePeriodSeconds") or 0)
            )


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for item in env:
        if item.get("name") == name:
            item.pop("valueFrom", None)
            item["value"] = value
            return
    env.append({"name": name, "value": value})


def configmaps_for(settings: list[Setting], labels: dict[str, str]) -> list[dict[str, Any]]:
    """Small ConfigMaps carrying settings whose ConfigMap was not in the manifests."""
    grouped: dict[tuple[str, str], dict[str, str]] = {}
    for s in settings:
        if s.configmap:
            grouped.setdefault(s.configmap, {})[s.data_key] = s.value
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "data": data,
        }
        for (ns, name), data in grouped.items()
    ]


def ref(obj: dict[str, Any]) -> dict[str, str]:
    """The identity of an object: apiVersion, kind, name, namespace (when namespaced)."""
    meta = obj.get("metadata") or {}
    out = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "name": meta.get("name", "")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


def describe(r: dict[str, str]) -> str:
    """`kind/name -n ns` for a ref."""
    group = r["apiVersion"].split("/")[0] if "/" in r["apiVersion"] else ""
    text = f"{r['kind'].lower()}{'.' + group if group else ''}/{r['name']}"
    return text + (f" -n {r['namespace']}" if r.get("namespace") else "")

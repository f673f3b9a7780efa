"""The namespace rule of the `Cluster` verbs, through the real kubernetes client against the test API server:
None means all namespaces in `list` and `watch` only; every other verb on a namespaced kind needs one, and
callers pass `cluster.namespace_or_default(...)` (the context's namespace) explicitly."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gpuscale.kube import Cluster
from tests.support.apiserver import ApiServer


def _cm(name: str, namespace: str | None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def test_list_with_none_is_all_namespaces(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(_cm("a", "ml"), _cm("b", "other"))
    assert {o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", None)} >= {"a", "b"}
    assert [o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", "ml")] == ["a"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get("v1", "ConfigMap", "a"),
        lambda c: c.get_or_none("v1", "ConfigMap", "a", None),
        lambda c: c.patch("v1", "ConfigMap", "a", None, {"data": {"k": "w"}}),
        lambda c: c.delete("v1", "ConfigMap", "a"),
        lambda c: c.create(_cm("n", None)),
        lambda c: c.apply(_cm("n", None)),
        lambda c: c.replace(_cm("a", None)),
        lambda c: c.pod_logs("p", None),
        lambda c: c.events_for("Pod", "p", None),
        lambda c: c.scale("apps/v1", "Deployment", "vllm", None, 1),
    ],
    ids=[
        "get",
        "get_or_none",
        "patch",
        "delete",
        "create",
        "apply",
        "replace",
        "pod_logs",
        "events_for",
        "scale",
    ],
)
def test_a_verb_on_one_namespaced_object_refuses_none(
    apiserver: ApiServer, cluster: Cluster, call: Any
) -> None:
    """Was: None silently meant the context's namespace here, and all namespaces in list."""
    apiserver.seed(_cm("a", "ml"))
    before = len(apiserver.requests)
    with pytest.raises(ValueError, match=r"no namespace; pass cluster\.namespace_or_default"):
        call(cluster)
    assert len(apiserver.requests) == before  # refused before any request


def test_cluster_scoped_kinds_take_none_and_the_default_is_explicit(
    apiserver: ApiServer, cluster: Cluster
) -> None:
    apiserver.seed(_cm("a", cluster.default_namespace))
    assert cluster.get_or_none("v1", "Namespace", "no-such-namespace") is None
    assert cluster.get("v1", "ConfigMap", "a", cluster.namespace_or_default(None))["data"] == {"k": "v"}
    assert cluster.namespace_or_default("ml") == "ml"

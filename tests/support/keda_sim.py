"""What the KEDA operator does to an HPA it adopts, for tests on the test API server (no controller runs there).

Ported from kedacore/keda controllers/keda/hpa.go: `newHPAForScaledObject` builds the HPA from the
ScaledObject alone (labels app.kubernetes.io/name, version, part-of, managed-by plus the
ScaledObject's labels; the ScaledObject's annotations; external metrics; the ScaledObject as
controller owner via SetControllerReference), and `updateHPAIfNeeded` writes that object with
`Client.Update` when the spec, labels or annotations differ. The update carries no
resourceVersion, finalizers or other ownerReferences, so the HPA's own metadata is replaced.
"""

from __future__ import annotations

from typing import Any

from kubectl_gpuscale.kube import Cluster

KEDA_API = "keda.sh/v1alpha1"
HPA_API = "autoscaling/v2"


def keda_hpa(so: dict[str, Any], hpa_name: str, version: str = "2.20.2") -> dict[str, Any]:
    """The HPA KEDA writes for ScaledObject ``so`` (newHPAForScaledObject), adopting ``hpa_name``."""
    meta = so["metadata"]
    spec = so["spec"]
    labels = {
        "app.kubernetes.io/name": hpa_name,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/part-of": meta["name"],
        "app.kubernetes.io/managed-by": "keda-operator",
        **(meta.get("labels") or {}),
    }
    target = spec["scaleTargetRef"]
    metrics = [
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": f"s{i}-{t.get('type')}",
                    "selector": {"matchLabels": {"scaledobject.keda.sh/name": meta["name"]}},
                },
                "target": {
                    "type": "AverageValue",
                    "averageValue": str(t.get("metadata", {}).get("threshold", "1")),
                },
            },
        }
        for i, t in enumerate(spec.get("triggers") or [])
    ]
    return {
        "apiVersion": HPA_API,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": hpa_name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": KEDA_API,
                    "kind": "ScaledObject",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "minReplicas": spec.get("minReplicaCount", 1),
            "maxReplicas": spec.get("maxReplicaCount", 100),
            "metrics": metrics,
            "behavior": (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig", {}).get("behavior"),
            "scaleTargetRef": {
                "apiVersion": target.get("apiVersion", "apps/v1"),
                "kind": target.get("kind", "Deployment"),
                "name": target["name"],
            },
        },
    }


def keda_adopts(cluster: Cluster, so_name: str, namespace: str) -> dict[str, Any]:
    """Do what KEDA's reconcile does to the adopted HPA (updateHPAIfNeeded): replace it; returns it."""
    so = cluster.get(KEDA_API, "ScaledObject", so_name, namespace)
    hpa_name = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"]
    hpa = keda_hpa(so, hpa_name)
    if hpa["spec"]["behavior"] is None:
        del hpa["spec"]["behavior"]
    return dict(cluster.replace(hpa))


def keda_operator(version: str = "2.20.2") -> dict[str, Any]:
    """The ``keda-operator`` Deployment in namespace ``keda`` as KEDA's chart installs it (name and version
    labels, the ghcr.io image at ``version``): what migrate's preflight detects KEDA and its version by."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "keda-operator",
            "namespace": "keda",
            "labels": {"app.kubernetes.io/name": "keda-operator", "app.kubernetes.io/version": version},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "keda-operator"}},
            "template": {
                "metadata": {"labels": {"app": "keda-operator"}},
                "spec": {
                    "containers": [{"name": "keda-operator", "image": f"ghcr.io/kedacore/keda:{version}"}]
                },
            },
        },
    }


def seed_gemma_hpa(apiserver: Any, namespace: str) -> dict[str, Any]:
    """Seed the sample vLLM Deployment and its HPA (k8s-examples) in `namespace`, with KEDA served and its
    operator Deployment present; return the HPA as stored (what migrate-hpa and tune adopt)."""
    from kubectl_gpuscale.manifests import load
    from tests.support.paths import MANIFESTS

    apiserver.enable_group("keda.sh")
    objs = [
        i.obj
        for i in load(
            [str(MANIFESTS / "hpa_k8s-examples_1.yaml"), str(MANIFESTS / "deploy_k8s-examples_1.yaml")]
        )
    ]
    for obj in objs:
        obj["metadata"]["namespace"] = namespace
    apiserver.seed(*objs, keda_operator())
    hpa: dict[str, Any] | None = apiserver.get_object(
        "autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", namespace
    )
    assert hpa is not None
    return hpa

"""What KEDA's Helm chart leaves in a cluster, for the install tests' fake `helm` (which stores nothing)."""

from __future__ import annotations

import yaml

from tests.support.apiserver import ApiServer

HELM_DEPLOYMENTS = ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks")
CRDS = (
    ("scaledjobs", "ScaledJob", "Namespaced"),
    ("triggerauthentications", "TriggerAuthentication", "Namespaced"),
    ("clustertriggerauthentications", "ClusterTriggerAuthentication", "Cluster"),
)


def seed_keda_chart(server: ApiServer, manifest: str) -> None:
    """Seed the chart's KEDA, ready: its Deployments under the Helm names, the objects of `manifest` before
    its ServiceAccount, the CRDs besides ScaledObject, and the external-metrics APIService."""
    for name in HELM_DEPLOYMENTS:
        server.seed(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": "keda",
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                },
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "ghcr.io/kedacore/keda:2.20.2"}]},
                    },
                },
                "status": {"conditions": [{"type": "Available", "status": "True"}]},
            }
        )
    server.seed(*yaml.safe_load_all(manifest.split("---\napiVersion: v1\nkind: ServiceAccount")[0]))
    for plural, kind, scope in CRDS:
        server.seed(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.keda.sh"},
                "spec": {
                    "group": "keda.sh",
                    "scope": scope,
                    "names": {"kind": kind, "plural": plural},
                    "versions": [{"name": "v1alpha1", "served": True, "storage": True}],
                },
            }
        )
    server.seed(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"name": "keda-operator-metrics-apiserver", "namespace": "keda"},
            },
            "status": {"conditions": [{"type": "Available", "status": "True"}]},
        }
    )

"""The ownership rules uninstall relies on (pure): the catalogue scope of each component, the labels
install stamps, and how a live object is judged ours or not."""

from __future__ import annotations

import pytest
import yaml

from kubectl_gpuscale.install import catalog, ownership
from kubectl_gpuscale.install import manifests as mf
from tests.test_install_cluster import KEDA_MANIFEST, KNATIVE_CORE, KNATIVE_CRDS, KOURIER

CRB = "rbac.authorization.k8s.io/v1"


@pytest.mark.parametrize(
    ("component", "ref", "inside"),
    [
        ("keda", {"apiVersion": "v1", "kind": "Namespace", "name": "keda"}, True),
        ("keda", {"apiVersion": "v1", "kind": "Namespace", "name": "prod-db"}, False),
        ("keda", {"apiVersion": "v1", "kind": "Namespace", "name": "kube-system"}, False),
        ("keda", {"apiVersion": CRB, "kind": "ClusterRoleBinding", "name": "cluster-admin"}, False),
        ("keda", {"apiVersion": CRB, "kind": "ClusterRoleBinding", "name": "keda-operator"}, True),
        ("keda", {"apiVersion": CRB, "kind": "ClusterRole", "name": "keda:edit"}, True),
        ("keda", {"apiVersion": CRB, "kind": "ClusterRole", "name": "admin"}, False),
        # the kind's group must be its real one: a "ClusterRoleBinding" in another group is refused
        (
            "keda",
            {"apiVersion": "example.com/v1", "kind": "ClusterRoleBinding", "name": "keda-operator"},
            False,
        ),
        (
            "keda",
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "name": "scaledobjects.keda.sh",
            },
            True,
        ),
        (
            "keda",
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "name": "cloudeventsources.eventing.keda.sh",
            },
            True,
        ),
        (
            "keda",
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "name": "certificates.cert-manager.io",
            },
            False,
        ),
        (
            "keda",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "name": "v1beta1.external.metrics.k8s.io",
            },
            True,
        ),
        (
            "keda",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "name": "v1beta1.metrics.k8s.io",
            },
            False,
        ),
        ("keda", {"apiVersion": "v1", "kind": "Secret", "name": "anything", "namespace": "keda"}, True),
        ("keda", {"apiVersion": "v1", "kind": "Secret", "name": "db", "namespace": "prod-db"}, False),
        (
            "keda",
            {
                "apiVersion": CRB,
                "kind": "RoleBinding",
                "name": "keda-auth-reader",
                "namespace": "kube-system",
            },
            True,
        ),
        (
            "keda",
            {"apiVersion": CRB, "kind": "RoleBinding", "name": "admin", "namespace": "kube-system"},
            False,
        ),
        ("keda", {"apiVersion": "v1", "kind": "Secret", "name": "cluster-scoped-secret"}, False),
        ("keda", {"apiVersion": "v1", "kind": "Namespace"}, False),
        ("keda", "namespace/prod-db", False),
        (
            "keda-http",
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "name": "scaledobjects.keda.sh",
            },
            False,
        ),
        (
            "keda-http",
            {"apiVersion": CRB, "kind": "ClusterRole", "name": "keda-add-ons-http-interceptor"},
            True,
        ),
        ("knative", {"apiVersion": "v1", "kind": "Namespace", "name": "kourier-system"}, True),
        (
            "knative",
            {"apiVersion": CRB, "kind": "ClusterRoleBinding", "name": "knative-serving-controller-admin"},
            True,
        ),
        (
            "knative",
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "name": "validation.webhook.serving.knative.dev",
            },
            True,
        ),
        (
            "dcgm",
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "dcgm-exporter",
                "namespace": "gpu-monitoring",
            },
            True,
        ),
        ("dcgm", {"apiVersion": CRB, "kind": "ClusterRole", "name": "dcgm-exporter"}, False),
        ("prepull", {"apiVersion": "v1", "kind": "Namespace", "name": "gpuscale-system"}, True),
    ],
)
def test_catalogue_scope(component: str, ref: object, inside: bool) -> None:
    why = ownership.outside_catalogue(catalog.component(component), ref)
    assert (why is None) is inside, why


def test_every_object_of_the_test_releases_is_inside_its_catalogue() -> None:
    """What install records from these release files (the fixtures the cluster tests install), uninstall accepts."""
    for name, texts in (
        ("keda", [KEDA_MANIFEST.replace("VERSION", "2.20.2")]),
        ("knative", [KNATIVE_CRDS, KNATIVE_CORE, KOURIER]),
    ):
        c = catalog.component(name)
        objects = mf.set_namespaces([o for t in texts for o in yaml.safe_load_all(t) if o], c.namespace)
        assert objects
        for obj in objects:
            assert ownership.outside_catalogue(c, mf.ref(obj)) is None, mf.ref(obj)


def test_stamp_and_unstamp_and_the_live_check() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "keda", "labels": {"app": "x"}},
    }
    stamped = ownership.stamp(obj, "keda", "2.20.2", "abc")
    assert stamped["metadata"]["labels"] == {
        "app": "x",
        "app.kubernetes.io/managed-by": "kubectl-gpuscale",
        "kubectl-gpuscale/component": "keda",
        "kubectl-gpuscale/install-id": "abc",
    }
    assert stamped["metadata"]["annotations"] == {"kubectl-gpuscale/version": "2.20.2"}
    assert obj["metadata"]["labels"] == {"app": "x"}  # a copy
    assert ownership.not_created_by(stamped, "keda", "abc") is None
    assert (
        ownership.not_created_by(stamped, "keda", "other")
        == "label kubectl-gpuscale/install-id is 'abc', not 'other'"
    )
    assert (
        ownership.not_created_by(stamped, "keda-http", "abc")
        == "label kubectl-gpuscale/component is 'keda', not 'keda-http'"
    )
    assert ownership.not_created_by(stamped, "keda", None) is not None
    assert ownership.unstamp(stamped)["metadata"] == {
        "name": "c",
        "namespace": "keda",
        "labels": {"app": "x"},
    }
    foreign = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}}
    assert ownership.unstamp(foreign)["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
    assert len(ownership.new_install_id()) == 16 and ownership.new_install_id() != ownership.new_install_id()
    theirs = ownership.stamp(obj, "keda", "2.20.2", "abc")
    adopted = ownership.adopt(ownership.stamp(obj, "keda-http", "0.15.0", "xyz"), theirs)
    assert adopted["metadata"]["labels"] == theirs["metadata"]["labels"]  # the creator's marks stay
    assert adopted["metadata"]["annotations"] == {"kubectl-gpuscale/version": "2.20.2"}
    assert ownership.adopt(obj, {"metadata": {"labels": {"team": "a"}}})["metadata"]["labels"] == {"app": "x"}

"""The test API server against the Kubernetes API conventions, over plain HTTP (urllib, no client library)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support import kube_semantics as sem
from tests.support.apiserver import KUBELET_CLIENT_FORBIDDEN, ApiServer
from tests.support.kube_fixtures import TestApiServer

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: vllm, namespace: ml, labels: {app: vllm, tier: gpu}}
spec:
  replicas: 2
  selector: {matchLabels: {app: vllm}}
  template:
    metadata: {labels: {app: vllm}}
    spec: {containers: [{name: vllm, image: vllm/vllm-openai:v0.6.0}]}
status: {replicas: 2, readyReplicas: 2}
"""

DEPLOY_PATH = "/apis/apps/v1/namespaces/ml/deployments"


class Http:
    """A tiny raw client: answers are (status code, parsed JSON or text)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ctype: str = "application/json",
        token: str | None = "default",
        **query: Any,
    ) -> tuple[int, Any]:
        url = self.server.url + path + (("?" + urlencode(query)) if query else "")
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if token is not None:
            req.add_header("Authorization", f"Bearer {self.server.token if token == 'default' else token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                code, raw, rtype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            code, raw, rtype = err.code, err.read(), err.headers.get("Content-Type", "")
        return code, json.loads(raw) if "json" in rtype else raw.decode()


@pytest.fixture
def http(apiserver: ApiServer) -> Http:
    return Http(apiserver)


def replicas(server: ApiServer, name: str = "vllm") -> int:
    obj = server.get_object("apps/v1", "Deployment", name, "ml")
    assert obj is not None
    return int(obj["spec"]["replicas"])


def deployment(name: str = "vllm", replicas: int = 2, **labels: str) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "img"}]},
            },
        },
    }


# ---- discovery ------------------------------------------------------------------------------------------


def test_discovery_documents(http: Http) -> None:
    code, versions = http("GET", "/api")
    assert code == 200 and versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    _, groups = http("GET", "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    group: str
    for group in (
        "apps",
        "autoscaling",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authorization.k8s.io",
        "rbac.authorization.k8s.io",
        "events.k8s.io",
        "keda.sh",
        "http.keda.sh",
        "serving.knative.dev",
        "external.metrics.k8s.io",
    ):
        assert group in by_name, group
    assert [v["version"] for v in by_name["autoscaling"]["versions"]] == ["v2", "v1"]
    assert by_name["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"
    _, core = http("GET", "/api/v1")
    names = {r["name"]: r for r in core["resources"]}
    assert names["pods"]["shortNames"] == ["po"] and names["pods"]["namespaced"] is True
    assert names["pods/log"]["verbs"] == ["get"] and names["nodes"]["namespaced"] is False
    assert "nodes/proxy" in names
    _, apps = http("GET", "/apis/apps/v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["kind"], scale["group"], scale["version"]) == ("Scale", "autoscaling", "v1")
    _, hpa = http("GET", "/apis/autoscaling/v2")
    assert {"horizontalpodautoscalers", "horizontalpodautoscalers/status"} <= {
        r["name"] for r in hpa["resources"]
    }
    code, version = http("GET", "/version")
    assert code == 200 and version["gitVersion"].startswith("v1.")


def test_optional_group_switched_off(apiserver: ApiServer, http: Http) -> None:
    apiserver.disable_group("keda.sh")
    _, groups = http("GET", "/apis")
    assert "keda.sh" not in {g["name"] for g in groups["groups"]}
    code, status = http("GET", "/apis/keda.sh/v1alpha1")
    assert code == 404 and status["reason"] == "NotFound" and status["kind"] == "Status"
    code, _ = http("GET", "/apis/keda.sh/v1alpha1/namespaces/ml/scaledobjects")
    assert code == 404
    apiserver.enable_group("keda.sh")
    assert http("GET", "/apis/keda.sh/v1alpha1")[0] == 200


def test_crd_registered_at_run_time(http: Http) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.size",
                            "statusReplicasPath": ".status.size",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                }
            ],
        },
    }
    assert http("GET", "/apis/example.com/v1")[0] == 404
    code, created = http("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 201
    established = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert established["Established"] == "True"
    _, resources = http("GET", "/apis/example.com/v1")
    assert {r["name"] for r in resources["resources"]} == {"widgets", "widgets/status", "widgets/scale"}
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }
    assert http("POST", "/apis/example.com/v1/namespaces/ml/widgets", widget)[0] == 201
    code, _ = http(
        "PATCH",
        "/apis/example.com/v1/namespaces/ml/widgets/w/scale",
        {"spec": {"replicas": 4}},
        ctype="application/merge-patch+json",
    )
    assert code == 200
    _, got = http("GET", "/apis/example.com/v1/namespaces/ml/widgets/w")
    assert got["spec"]["size"] == 4 and got["kind"] == "Widget"
    assert (
        http("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0]
        == 200
    )
    assert http("GET", "/apis/example.com/v1")[0] == 404


def test_openapi_v3_index_names_every_group_version(http: Http) -> None:
    _, index = http("GET", "/openapi/v3")
    assert "api/v1" in index["paths"] and "apis/apps/v1" in index["paths"]
    _, doc = http("GET", "/openapi/v3/apis/apps/v1")
    kinds = {
        gvk["kind"]
        for s in doc["components"]["schemas"].values()
        for gvk in s["x-kubernetes-group-version-kind"]
    }
    assert "Deployment" in kinds


# ---- auth and request record -----------------------------------------------------------------------------


def test_token_checked_and_requests_recorded(apiserver: ApiServer, http: Http) -> None:
    code, status = http("GET", "/api/v1/namespaces/ml/pods", token="wrong")
    assert code == 401 and status["reason"] == "Unauthorized"
    apiserver.reset_requests()
    http("GET", "/api/v1/namespaces/ml/pods", labelSelector="app=x")
    (req,) = apiserver.requests
    assert (req.method, req.path, req.param("labelSelector")) == (
        "GET",
        "/api/v1/namespaces/ml/pods",
        "app=x",
    )
    apiserver.anonymous = False
    assert http("GET", "/api/v1/pods", token=None)[0] == 401


def test_deny_list_gives_forbidden_status_and_access_review(apiserver: ApiServer, http: Http) -> None:
    apiserver.deny("patch", "deployments.apps", namespace="ml")
    apiserver.seed(DEPLOY)
    code, status = http(
        "PATCH", f"{DEPLOY_PATH}/vllm", {"spec": {"replicas": 1}}, ctype="application/merge-patch+json"
    )
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (
        'deployments.apps "vllm" is forbidden: User "test-user" cannot patch resource '
        '"deployments" in API group "apps" in the namespace "ml"'
    )
    assert status["details"] == {"name": "vllm", "group": "apps", "kind": "deployments"}
    assert http("GET", f"{DEPLOY_PATH}/vllm")[0] == 200
    review: dict[str, Any] = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": "patch",
                "group": "apps",
                "resource": "deployments",
                "namespace": "ml",
            }
        },
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert http("POST", path, review)[1]["status"]["allowed"] is False
    review["spec"]["resourceAttributes"]["namespace"] = "other"
    assert http("POST", path, review)[1]["status"]["allowed"] is True


# ---- get / list / selectors -------------------------------------------------------------------------------


def test_list_label_and_field_selectors(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(
        [deployment("a", tier="gpu", app="a"), deployment("b", tier="cpu", app="b"), deployment("c", app="c")]
    )
    apiserver.seed({**deployment("d", app="d"), "metadata": {"name": "d", "namespace": "other"}})

    def names(**query: str) -> list[str]:
        code, data = http("GET", DEPLOY_PATH, **query)
        assert code == 200 and data["kind"] == "DeploymentList", data
        return [i["metadata"]["name"] for i in data["items"]]

    assert names() == ["a", "b", "c"]
    assert names(labelSelector="tier=gpu") == ["a"] == names(labelSelector="tier==gpu")
    assert names(labelSelector="tier!=gpu") == ["b", "c"]
    assert names(labelSelector="tier in (gpu,cpu)") == ["a", "b"]
    assert names(labelSelector="tier notin (gpu)") == ["b", "c"]
    assert names(labelSelector="tier") == ["a", "b"] and names(labelSelector="!tier") == ["c"]
    assert names(labelSelector="tier,app=b") == ["b"]
    assert names(fieldSelector="metadata.name=c") == ["c"]
    assert names(fieldSelector="metadata.name!=c") == ["a", "b"]
    _, everywhere = http("GET", "/apis/apps/v1/deployments")
    assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["ml", "ml", "ml", "other"]
    assert int(everywhere["metadata"]["resourceVersion"]) >= max(
        int(i["metadata"]["resourceVersion"]) for i in everywhere["items"]
    )
    assert "kind" not in everywhere["items"][0]  # built-in list items carry no kind, like the real server
    code, status = http("GET", DEPLOY_PATH, fieldSelector="spec.replicas=2")
    assert code == 400 and "field label not supported" in status["message"]
    assert http("GET", DEPLOY_PATH, labelSelector="a in (b")[0] == 400


def test_pod_and_event_field_selectors(apiserver: ApiServer, http: Http) -> None:
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": n, "namespace": "ml"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
        }
        for n, node in (("p1", "n1"), ("p2", "n2"))
    ]
    stored = apiserver.seed(pods)
    apiserver.add_event(stored[0], "Pulling", "Pulling image")
    apiserver.add_event(stored[1], "Pulled", "Pulled image")
    _, listed = http("GET", "/api/v1/pods", fieldSelector="spec.nodeName=n2")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p2"]
    _, events = http(
        "GET",
        "/api/v1/namespaces/ml/events",
        fieldSelector=f"involvedObject.kind=Pod,involvedObject.name=p1,"
        f"involvedObject.uid={stored[0]['metadata']['uid']}",
    )
    assert [e["reason"] for e in events["items"]] == ["Pulling"]


def test_get_missing_is_a_not_found_status(http: Http) -> None:
    code, status = http("GET", f"{DEPLOY_PATH}/nope")
    assert code == 404
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


# ---- create / replace / delete -----------------------------------------------------------------------------


def test_create_sets_server_fields_and_rejects_duplicates(apiserver: ApiServer, http: Http) -> None:
    code, created = http("POST", DEPLOY_PATH, deployment())
    assert code == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert [m["manager"] for m in meta["managedFields"]] == ["Python-urllib"]
    code, status = http("POST", DEPLOY_PATH, deployment())
    assert code == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == 'deployments.apps "vllm" already exists'
    generated = {**deployment(), "metadata": {"generateName": "vllm-", "namespace": "ml"}}
    code, made = http("POST", DEPLOY_PATH, generated)
    assert (
        code == 201 and made["metadata"]["name"].startswith("vllm-") and len(made["metadata"]["name"]) == 10
    )
    nameless = {**deployment(), "metadata": {"namespace": "ml"}}
    code, status = http("POST", DEPLOY_PATH, nameless)
    assert code == 422 and status["reason"] == "Invalid" and "metadata.name" in status["message"]
    wrong_ns = {**deployment("x"), "metadata": {"name": "x", "namespace": "elsewhere"}}
    assert http("POST", DEPLOY_PATH, wrong_ns)[0] == 400


def test_replace_checks_resource_version(http: Http) -> None:
    _, created = http("POST", DEPLOY_PATH, deployment())
    stale = json.loads(json.dumps(created))
    created["spec"]["replicas"] = 5
    code, replaced = http("PUT", f"{DEPLOY_PATH}/vllm", created)
    assert code == 200 and replaced["spec"]["replicas"] == 5 and replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]
    stale["spec"]["replicas"] = 7
    code, status = http("PUT", f"{DEPLOY_PATH}/vllm", stale)
    assert code == 409 and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert http("PUT", f"{DEPLOY_PATH}/absent", deployment("absent"))[0] == 404


def test_dry_run_persists_nothing(apiserver: ApiServer, http: Http) -> None:
    code, made = http("POST", DEPLOY_PATH, deployment(), dryRun="All")
    assert code == 201 and made["metadata"]["name"] == "vllm"
    assert apiserver.objects("apps/v1", "Deployment") == []
    apiserver.seed(DEPLOY)
    before = apiserver.get_object("apps/v1", "Deployment", "vllm", "ml")
    patch = {"spec": {"replicas": 9}}
    code, patched = http(
        "PATCH", f"{DEPLOY_PATH}/vllm", patch, ctype="application/merge-patch+json", dryRun="All"
    )
    assert code == 200 and patched["spec"]["replicas"] == 9
    apply = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm"},
        "spec": {"replicas": 8},
    }
    code, applied = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        apply,
        ctype="application/apply-patch+yaml",
        fieldManager="m",
        dryRun="All",
    )
    assert code == 200 and applied["spec"]["replicas"] == 8
    assert http("DELETE", f"{DEPLOY_PATH}/vllm", dryRun="All")[0] == 200
    assert (
        http("PATCH", f"{DEPLOY_PATH}/vllm/scale", patch, ctype="application/merge-patch+json", dryRun="All")[
            1
        ]["spec"]["replicas"]
        == 9
    )
    assert apiserver.get_object("apps/v1", "Deployment", "vllm", "ml") == before
    assert http("POST", DEPLOY_PATH, deployment("x"), dryRun="Some")[0] == 400


def owned(name: str, kind: str, owner: dict[str, Any], api_version: str = "autoscaling/v2") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "ml",
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("policy", "hpa_left"), [("Orphan", True), ("Background", False), ("Foreground", False), (None, False)]
)
def test_delete_propagation_policy_and_garbage_collection(
    apiserver: ApiServer, http: Http, policy: str | None, hpa_left: bool
) -> None:
    (so,) = apiserver.seed(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "vllm", "namespace": "ml"},
            "spec": {},
        }
    )
    (hpa,) = apiserver.seed(owned("keda-hpa-vllm", "HorizontalPodAutoscaler", so))
    apiserver.seed(owned("grandchild", "ConfigMap", hpa, api_version="v1"))
    body = {"apiVersion": "v1", "kind": "DeleteOptions", **({"propagationPolicy": policy} if policy else {})}
    code, _ = http("DELETE", "/apis/keda.sh/v1alpha1/namespaces/ml/scaledobjects/vllm", body)
    assert code == 200
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "vllm", "ml") is None
    left = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "keda-hpa-vllm", "ml")
    assert (left is not None) == hpa_left
    if left is not None:
        assert "ownerReferences" not in left["metadata"]
        assert apiserver.get_object("v1", "ConfigMap", "grandchild", "ml") is not None
    else:
        assert apiserver.get_object("v1", "ConfigMap", "grandchild", "ml") is None


def test_dependent_with_another_live_owner_survives(apiserver: ApiServer, http: Http) -> None:
    first, second = apiserver.seed([deployment("a"), deployment("b")])
    child = owned("c", "ConfigMap", first, api_version="v1")
    child["metadata"]["ownerReferences"] += owned("c", "ConfigMap", second, "v1")["metadata"][
        "ownerReferences"
    ]
    apiserver.seed(child)
    http("DELETE", f"{DEPLOY_PATH}/a")
    left = apiserver.get_object("v1", "ConfigMap", "c", "ml")
    assert left is not None and [r["name"] for r in left["metadata"]["ownerReferences"]] == ["b"]


def test_finalizers_hold_deletion_until_removed(apiserver: ApiServer, http: Http) -> None:
    obj = deployment()
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    apiserver.seed(obj)
    code, held = http("DELETE", f"{DEPLOY_PATH}/vllm")
    assert code == 200 and held["metadata"]["deletionTimestamp"]
    assert apiserver.get_object("apps/v1", "Deployment", "vllm", "ml") is not None
    http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        {"metadata": {"finalizers": None}},
        ctype="application/merge-patch+json",
    )
    assert apiserver.get_object("apps/v1", "Deployment", "vllm", "ml") is None


def test_deleting_a_namespace_deletes_its_objects(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}, DEPLOY)
    assert http("DELETE", "/api/v1/namespaces/ml")[0] == 200
    assert apiserver.objects("apps/v1", "Deployment") == []


# ---- patches ------------------------------------------------------------------------------------------------


def test_merge_and_strategic_patch(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)
    patch = {"metadata": {"labels": {"tier": None, "new": "x"}}, "spec": {"replicas": 3}}
    for ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        code, out = http("PATCH", f"{DEPLOY_PATH}/vllm", patch, ctype=ctype)
        assert code == 200 and out["metadata"]["labels"] == {"app": "vllm", "new": "x"}
        assert out["spec"]["replicas"] == 3 and out["status"] == {"replicas": 2, "readyReplicas": 2}
    code, _status = http("PATCH", f"{DEPLOY_PATH}/vllm", {"spec": {}}, ctype="text/plain")
    assert code == 415


def test_json_patch_operations(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 6},
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/metadata/annotations/a~1b"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "side", "image": "s"}},
    ]
    code, out = http("PATCH", f"{DEPLOY_PATH}/vllm", ops, ctype="application/json-patch+json")
    assert code == 200, out
    assert out["spec"]["replicas"] == 6 and out["metadata"]["annotations"] == {}
    assert out["metadata"]["labels"] == {"app": "vllm", "copied": "vllm", "moved": "gpu"}
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["vllm", "side"]
    code, status = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        [{"op": "test", "path": "/spec/replicas", "value": 1}],
        ctype="application/json-patch+json",
    )
    assert code == 422 and status["reason"] == "Invalid" and "test failed" in status["message"]
    assert replicas(apiserver) == 6
    code, _ = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        [{"op": "remove", "path": "/spec/nope"}],
        ctype="application/json-patch+json",
    )
    assert code == 422


def test_patch_with_stale_resource_version_conflicts(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)
    code, _ = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}},
        ctype="application/merge-patch+json",
    )
    assert code == 409


# ---- server-side apply -------------------------------------------------------------------------------------


def apply(http: Http, body: dict[str, Any], manager: str | None, **query: Any) -> tuple[int, Any]:
    if manager:
        query["fieldManager"] = manager
    return http(
        "PATCH",
        f"{DEPLOY_PATH}/{body['metadata']['name']}",
        body,
        ctype="application/apply-patch+yaml",
        **query,
    )


def test_apply_creates_and_records_managed_fields(http: Http) -> None:
    code, status = apply(http, deployment(), None)
    assert code == 400 and "fieldManager" in status["message"]
    code, made = apply(http, deployment(), "gpuscale")
    assert code == 201
    (entry,) = made["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("gpuscale", "Apply", "FieldsV1")
    paths = sem.paths_of_fields_v1(entry["fieldsV1"])
    assert ("spec", "replicas") in paths and ("metadata", "labels", "app") in paths
    assert ("metadata", "name") not in paths


def test_apply_yaml_body_and_field_removal(http: Http) -> None:
    import yaml

    body = deployment()
    body["metadata"]["annotations"] = {"keep": "no"}
    apply(http, body, "gpuscale")
    del body["metadata"]["annotations"]
    code, out = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        yaml.safe_dump(body).encode(),
        ctype="application/apply-patch+yaml",
        fieldManager="gpuscale",
    )
    assert code == 200 and "annotations" not in out["metadata"]


def test_apply_conflict_with_another_manager_and_force(apiserver: ApiServer, http: Http) -> None:
    apply(http, deployment(replicas=2), "helm")
    code, status = apply(http, deployment(replicas=5), "gpuscale")
    assert code == 409 and status["reason"] == "Conflict"
    (cause,) = status["details"]["causes"]
    assert cause == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "helm"',
        "field": ".spec.replicas",
    }
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "helm": .spec.replicas'
    assert replicas(apiserver) == 2
    code, out = apply(http, deployment(replicas=2), "gpuscale")
    assert code == 200  # same value: shared ownership, no conflict
    code, out = apply(http, deployment(replicas=5), "gpuscale", force="true")
    assert code == 200 and out["spec"]["replicas"] == 5
    owners = {m["manager"]: sem.paths_of_fields_v1(m["fieldsV1"]) for m in out["metadata"]["managedFields"]}
    assert ("spec", "replicas") in owners["gpuscale"] and ("spec", "replicas") not in owners["helm"]


def test_update_takes_ownership_from_applier(http: Http) -> None:
    apply(http, deployment(replicas=2), "gpuscale")
    http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm/scale",
        {"spec": {"replicas": 4}},
        ctype="application/merge-patch+json",
        fieldManager="kube-controller-manager",
    )
    code, status = apply(http, deployment(replicas=3), "gpuscale")
    assert code == 409
    assert status["details"]["causes"][0]["message"] == (
        'conflict with "kube-controller-manager" with subresource "scale" using apps/v1'
    )


# ---- subresources -------------------------------------------------------------------------------------------


def test_scale_subresource(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)
    code, scale = http("GET", f"{DEPLOY_PATH}/vllm/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 2, "selector": "app=vllm"}
    scale["spec"]["replicas"] = 3
    assert http("PUT", f"{DEPLOY_PATH}/vllm/scale", scale)[1]["spec"]["replicas"] == 3
    code, out = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm/scale",
        [{"op": "replace", "path": "/spec/replicas", "value": 0}],
        ctype="application/json-patch+json",
    )
    assert code == 200 and out["spec"]["replicas"] == 0
    assert replicas(apiserver) == 0
    code, _status = http(
        "PATCH", f"{DEPLOY_PATH}/vllm/scale", {"spec": {"replicas": -1}}, ctype="application/merge-patch+json"
    )
    assert code == 422
    scale["metadata"]["resourceVersion"] = "1"
    assert http("PUT", f"{DEPLOY_PATH}/vllm/scale", scale)[0] == 409


def test_status_subresource_is_separate(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)
    code, out = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        {"status": {"replicas": 9}, "spec": {"replicas": 1}},
        ctype="application/merge-patch+json",
    )
    assert out["status"]["replicas"] == 2 and out["spec"]["replicas"] == 1
    code, out = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm/status",
        {"status": {"replicas": 9}, "spec": {"replicas": 7}},
        ctype="application/merge-patch+json",
    )
    assert code == 200 and out["status"]["replicas"] == 9 and out["spec"]["replicas"] == 1


def pod(name: str, *containers: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": c, "image": "i"} for c in containers]},
    }


def test_pod_logs(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(pod("one", "vllm"), pod("two", "vllm", "sidecar"))
    apiserver.set_log("ml", "one", "line 1\nline 2\nline 3\n")
    apiserver.set_log("ml", "one", "crashed\n", previous=True)
    apiserver.set_log("ml", "two", "side\n", container="sidecar")
    base = "/api/v1/namespaces/ml/pods"
    assert http("GET", f"{base}/one/log") == (200, "line 1\nline 2\nline 3\n")
    assert http("GET", f"{base}/one/log", tailLines=2) == (200, "line 2\nline 3\n")
    assert http("GET", f"{base}/one/log", previous="true") == (200, "crashed\n")
    code, status = http("GET", f"{base}/two/log")
    assert code == 400 and status["message"] == (
        "a container name must be specified for pod two, choose one of: [vllm sidecar]"
    )
    assert http("GET", f"{base}/two/log", container="sidecar") == (200, "side\n")
    code, status = http("GET", f"{base}/two/log", container="vllm", previous="true")
    assert code == 400 and status["message"] == 'previous terminated container "vllm" in pod "two" not found'
    assert http("GET", f"{base}/two/log", container="nope")[0] == 400
    assert http("GET", f"{base}/absent/log")[0] == 404


def test_node_proxy_checkpoint(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-node-1"}}, pod("p", "vllm"))
    path = "/api/v1/nodes/gpu-node-1/proxy/checkpoint/ml/p/vllm"
    code, answer = http("POST", path, timeout=900)
    assert code == 200
    (archive,) = answer["items"]
    assert archive.startswith("/var/lib/kubelet/checkpoints/checkpoint-p_ml-vllm-") and archive.endswith(
        "Z.tar"
    )
    assert apiserver.checkpoints[-1].timeout == "900" and apiserver.checkpoints[-1].container == "vllm"
    assert http("POST", "/api/v1/nodes/gpu-node-1/proxy/checkpoint/ml/p/other") == (
        404,
        "container other does not exist\n",
    )
    apiserver.set_checkpoint("forbidden")
    assert http("POST", path) == (403, KUBELET_CLIENT_FORBIDDEN)
    apiserver.set_checkpoint("notfound")
    assert http("POST", path)[0] == 404
    apiserver.set_checkpoint("error", message="criu failed: type NOTIFY errno 0")
    assert http("POST", path) == (500, "checkpointing of ml/p/vllm failed (criu failed: type NOTIFY errno 0)")
    assert http("POST", "/api/v1/nodes/absent/proxy/checkpoint/ml/p/vllm")[0] == 404
    apiserver.deny("create", "nodes/proxy")
    code, status = http("POST", path)
    assert (
        code == 403
        and 'cannot create resource "nodes/proxy" in API group "" at the cluster scope' in status["message"]
    )


def test_node_proxy_configured_answer(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
    apiserver.set_node_proxy(
        "n", "/configz", {"kubeletconfig": {"featureGates": {"ContainerCheckpoint": True}}}
    )
    code, body = http("GET", "/api/v1/nodes/n/proxy/configz")
    assert code == 200 and body["kubeletconfig"]["featureGates"]["ContainerCheckpoint"] is True
    assert http("GET", "/api/v1/nodes/n/proxy/metrics")[0] == 404


# ---- watch --------------------------------------------------------------------------------------------------


def read_watch(server: ApiServer, path: str, **query: Any) -> list[dict[str, Any]]:
    url = f"{server.url}{path}?{urlencode({'watch': 'true', **query})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def test_watch_sends_current_state_then_changes_and_ends(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(DEPLOY)

    def later() -> None:
        time.sleep(0.2)
        http("PATCH", f"{DEPLOY_PATH}/vllm", {"spec": {"replicas": 3}}, ctype="application/merge-patch+json")
        http("DELETE", f"{DEPLOY_PATH}/vllm")

    writer = threading.Thread(target=later)
    writer.start()
    started = time.monotonic()
    events = read_watch(apiserver, DEPLOY_PATH, timeoutSeconds=1)
    writer.join()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["spec"]["replicas"] == 3 and events[1]["object"]["kind"] == "Deployment"
    assert 0.9 < time.monotonic() - started < 5


def test_watch_from_resource_version_and_expired(apiserver: ApiServer, http: Http) -> None:
    (obj,) = apiserver.seed(DEPLOY)
    http("PATCH", f"{DEPLOY_PATH}/vllm", {"spec": {"replicas": 3}}, ctype="application/merge-patch+json")
    apiserver.seed(deployment("other"))
    events = read_watch(
        apiserver,
        DEPLOY_PATH,
        resourceVersion=obj["metadata"]["resourceVersion"],
        timeoutSeconds=0.3,
        labelSelector="app=vllm",
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "vllm")]
    events = read_watch(apiserver, DEPLOY_PATH, resourceVersion="1", timeoutSeconds=1)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


def test_seed_yaml_multi_doc_and_list(apiserver: ApiServer) -> None:
    text = DEPLOY + "---\n" + json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod("p", "c")]})
    stored = apiserver.seed(text)
    assert [o["kind"] for o in stored] == ["Deployment", "Pod"]
    assert stored[0]["status"] == {"replicas": 2, "readyReplicas": 2}
    with pytest.raises(ValueError, match="does not serve"):
        apiserver.seed({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}})


def test_no_op_writes_keep_the_resource_version(apiserver: ApiServer, http: Http) -> None:
    _, first = apply(http, deployment(), "gpuscale")
    _, again = apply(http, deployment(), "gpuscale")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    _, same = http(
        "PATCH",
        f"{DEPLOY_PATH}/vllm",
        {"spec": {"replicas": 2}},
        ctype="application/merge-patch+json",
        fieldManager="gpuscale",
    )
    assert same["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    _, changed = apply(http, deployment(replicas=3), "gpuscale")
    assert int(changed["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert changed["metadata"]["generation"] == first["metadata"]["generation"] + 1


# ---- pod exec (websocket) --------------------------------------------------------------------------------

EXEC_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "helper", "namespace": "ml"},
    "spec": {"containers": [{"name": "sh", "image": "busybox"}]},
    "status": {"phase": "Running"},
}


def _raw_exec(server: ApiServer, query: str, protocols: str) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Open an exec websocket by hand; (response head, [(opcode, payload)] until the close frame)."""
    import socket
    import struct

    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        (
            f"GET /api/v1/namespaces/ml/pods/helper/exec?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        ).encode()
    )
    stream = sock.makefile("rb")
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += stream.read(1)
    frames: list[tuple[int, bytes]] = []
    while True:
        first, second = stream.read(2)
        assert first & 0x80 and not second & 0x80  # final frames, unmasked (server to client)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", stream.read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", stream.read(8))[0]
        frames.append((first & 0x0F, stream.read(length)))
        if first & 0x0F == 0x8:
            break
    sock.sendall(
        bytes([0x88, 0x82, 1, 2, 3, 4]) + bytes(b ^ m for b, m in zip(b"\x03\xe8", b"\x01\x02", strict=True))
    )
    sock.close()
    return head, frames


def test_exec_handshake_and_channel_frames(apiserver: ApiServer) -> None:
    from tests.support.apiserver import file_exec_handler

    apiserver.seed(EXEC_POD)
    payload = bytes(range(256)) * 1024 + b"tail"  # 262148 bytes: five frames of at most 64 KiB
    apiserver.set_exec("ml", "helper", file_exec_handler({"/data": payload}))
    head, frames = _raw_exec(
        apiserver, "command=cat&command=/data&stdout=true&stderr=true", "v4.channel.k8s.io, v3.channel.k8s.io"
    )
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head  # RFC 6455 section 1.3's example
    assert b"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n" in head
    data = [f for f in frames if f[0] == 0x2]
    assert [len(p) for _, p in data[:-1]] == [65537] * 4 + [5]
    assert all(p[0] == 1 for _, p in data[:-1])
    assert b"".join(p[1:] for _, p in data[:-1]) == payload
    assert data[-1][1][0] == 3 and json.loads(data[-1][1][1:]) == {"metadata": {}, "status": "Success"}
    assert frames[-1] == (0x8, b"\x03\xe8")
    call = apiserver.execs[-1]
    assert (
        call.namespace,
        call.pod,
        call.container,
        call.command,
        call.protocol,
        call.exit_code,
        call.stdout_bytes,
    ) == ("ml", "helper", "sh", ("cat", "/data"), "v4.channel.k8s.io", 0, len(payload))


def test_exec_through_the_kubernetes_client(apiserver: TestApiServer) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    from tests.support.apiserver import file_exec_handler

    apiserver.seed(EXEC_POD)
    apiserver.set_exec("ml", None, file_exec_handler({"/etc/motd": b"hello from the node\n"}))
    api_client = config.new_client_from_config(config_file=apiserver.kubeconfig)
    core = client.CoreV1Api(api_client)
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "helper",
        "ml",
        command=["cat", "/etc/motd"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "hello from the node\n"
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        "helper",
        "ml",
        command=["cat", "/missing"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=10)
    assert ws.returncode == 1
    assert ws.read_stderr() == "cat: can't open '/missing': No such file or directory\n"
    assert ws.subprotocol == "v5.channel.k8s.io"  # the client offers v5 first
    assert [c.command for c in apiserver.execs] == [("cat", "/etc/motd"), ("cat", "/missing")]
    assert [c.exit_code for c in apiserver.execs] == [0, 1]
    assert apiserver.requests[-1].path == "/api/v1/namespaces/ml/pods/helper/exec"
    assert apiserver.requests[-1].query["command"] == ["cat", "/missing"]


def test_exec_refusals(apiserver: ApiServer, http: Http) -> None:
    apiserver.seed(
        EXEC_POD,
        {**EXEC_POD, "metadata": {"name": "done", "namespace": "ml"}, "status": {"phase": "Succeeded"}},
        {**EXEC_POD, "metadata": {"name": "pending", "namespace": "ml"}, "status": {"phase": "Pending"}},
    )
    path = "/api/v1/namespaces/ml/pods/{}/exec"
    query = {"command": "ls", "stdout": "true"}
    code, body = http("GET", path.format("helper"), **query)  # no Upgrade header
    assert code == 400 and body["message"] == "Upgrade request required"
    code, body = http("GET", path.format("gone"), **query)
    assert code == 404 and body["reason"] == "NotFound"
    code, body = http("GET", path.format("helper"), **query, container="other")
    assert code == 400 and body["message"] == "container other is not valid for pod helper"
    code, body = http("GET", path.format("done"), **query)
    assert code == 400 and "completed pod" in body["message"]
    code, body = http("GET", path.format("pending"), **query)
    assert code == 404 and 'container not found ("sh")' in body["message"]
    code, body = http("GET", path.format("helper"), stdout="true")
    assert code == 400 and "at least 1 command" in body["message"]
    code, _ = http("PUT", path.format("helper"), **query)
    assert code == 405
    apiserver.deny("create", "pods/exec", namespace="ml")
    code, body = http("POST", path.format("helper"), **query)
    assert code == 403 and 'cannot create resource "pods/exec"' in body["message"]
    assert apiserver.execs == []


def test_exec_unsupported_protocol_and_missing_handler(apiserver: ApiServer) -> None:
    apiserver.seed(EXEC_POD)
    head = _raw_exec_refused(apiserver, "channel.k8s.io")
    assert head.startswith(b"HTTP/1.1 400 ") and b"requested protocol(s) are not supported" in head
    _, frames = _raw_exec(apiserver, "command=ls&stdout=true", "v5.channel.k8s.io")
    status = json.loads(frames[-2][1][1:])
    assert (
        status["status"] == "Failure"
        and status["reason"] == "InternalError"
        and "set_exec" in status["message"]
    )
    assert apiserver.execs[-1].exit_code is None


def _raw_exec_refused(server: ApiServer, protocols: str) -> bytes:
    """The whole answer to an exec upgrade the server refuses."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                "GET /api/v1/namespaces/ml/pods/helper/exec?command=ls&stdout=true HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"}" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


def test_kubectl_exec_gets_bytes_and_exit_code(
    apiserver: TestApiServer, kubectl_bin: str, tmp_path: Path
) -> None:
    import subprocess

    from tests.support.apiserver import file_exec_handler
    from tests.support.kube_fixtures import kubectl_env

    apiserver.seed(EXEC_POD)
    payload = bytes(range(256)) * 600
    apiserver.set_exec("ml", "helper", file_exec_handler({"/data": payload}))
    env = kubectl_env(apiserver.kubeconfig, tmp_path / "kube-cache")
    proc = subprocess.run(
        [kubectl_bin, "exec", "-n", "ml", "helper", "--", "cat", "/data"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == payload, proc.stderr
    proc = subprocess.run(
        [kubectl_bin, "exec", "-n", "ml", "helper", "--", "cat", "/nope"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1 and b"command terminated with exit code 1" in proc.stderr
    assert apiserver.execs[-1].protocol == "v5.channel.k8s.io"

"""`top`'s live source on watches: list once, then watch, through the real kubernetes client and the test API server.

Upstream behaviour followed (kubernetes/kubernetes):
- staging/src/k8s.io/client-go/tools/cache/reflector.go, `ListAndWatch` / `watch`: list, then watch from
  the list's resourceVersion with AllowWatchBookmarks and a timeoutSeconds in [minWatchTimeout,
  2*minWatchTimeout); `isExpiredError` (410) means list again; other watch ends re-watch from the last
  resourceVersion after the backoff manager's delay (800 ms doubling to 30 s);
- staging/src/k8s.io/client-go/tools/pager/pager.go, `List`: pages with limit/continue, and a full
  list again when the continue token expired;
- staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go, `GetList`: every page served at the first
  page's resourceVersion; a continue token older than the compaction answers 410 Expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from kubectl_gpuscale.kube import Cluster, ExpiredError
from kubectl_gpuscale.kube.watch import PAGE_SIZE, WATCH_MIN_SECONDS, KindCache, Scope, list_pages
from kubectl_gpuscale.tui.model import Snapshot
from kubectl_gpuscale.tui.sources.live import EVENTS_FIELD_SELECTOR, KINDS, LiveSource
from tests.support.kube_fixtures import Kubectl, TestApiServer
from tests.test_tui_live import _pod, _seed_llama


def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` every 20 ms until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def watching(apiserver: TestApiServer, namespace: str = "ml") -> LiveSource:
    """A live source after start-up: listed (first refresh), then watching every kind (second refresh)."""
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace=namespace)
    source.refresh()
    source.refresh()
    listed = [c for c in (source.caches or {}).values() if c.synced]
    until(lambda: apiserver.traffic.count("watch") >= len(listed), what="every listed kind's watch to open")
    return source


def refreshed_until(source: LiveSource, condition: Callable[[Snapshot], bool], what: str) -> Snapshot:
    """Refresh (as the dashboard's timer does) until the snapshot satisfies `condition`."""
    found: list[Snapshot] = []

    def check() -> bool:
        found[:] = [source.refresh()]
        return condition(found[0])

    until(check, what=what)
    return found[0]


def lists_by_resource(apiserver: TestApiServer) -> dict[str, int]:
    return {resource: n for (verb, resource), n in apiserver.traffic.requests.items() if verb == "list"}


def pods_of(snapshot: Snapshot) -> set[str]:
    return {p.name for w in snapshot.workloads for p in w.pods}


# ---- pagination --------------------------------------------------------------------------------------


def test_pagination_returns_every_object_across_pages_from_one_snapshot(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    apiserver.seed([_pod("ml", "llama", f"p{i:04d}", True) for i in range(1234)])
    apiserver.traffic.reset()
    items, rv = list_pages(cluster, Scope("v1", "Pod", "ml"), page_size=100)
    names = [o["metadata"]["name"] for o in items]
    assert len(names) == len(set(names)) == 1234
    assert all(o["kind"] == "Pod" and o["apiVersion"] == "v1" for o in items)
    assert apiserver.traffic.requests[("list", "pods")] == 13
    pages = [r for r in apiserver.requests if r.path == "/api/v1/namespaces/ml/pods"]
    assert [r.param("limit") for r in pages] == ["100"] * 13
    assert pages[0].param("continue") is None and all(r.param("continue") for r in pages[1:])
    assert rv == str(int(rv))

    first = cluster.request("GET", "/api/v1/namespaces/ml/pods", query=[("limit", 1000)]).json()
    assert first["metadata"]["remainingItemCount"] == 234
    cluster.delete("v1", "Pod", "llama-7d9f-p1233", "ml")  # on the second page
    rest = cluster.request(
        "GET",
        "/api/v1/namespaces/ml/pods",
        query=[("limit", 1000), ("continue", first["metadata"]["continue"])],
    ).json()
    assert len(first["items"]) + len(rest["items"]) == 1234  # the deleted pod is still in its snapshot
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in rest["metadata"]


def test_a_continue_token_older_than_the_compaction_is_410(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    apiserver.seed([_pod("ml", "llama", f"p{i}", True) for i in range(5)])
    first = cluster.request("GET", "/api/v1/namespaces/ml/pods", query=[("limit", 2)]).json()
    apiserver.seed(_pod("ml", "llama", "late", True))
    apiserver.compact()
    with pytest.raises(ExpiredError) as caught:
        cluster.request(
            "GET",
            "/api/v1/namespaces/ml/pods",
            query=[("limit", 2), ("continue", first["metadata"]["continue"])],
        )
    assert "too old to display a consistent list result" in caught.value.why


def test_a_list_whose_continue_token_expires_starts_over_once(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    """client-go's pager (tools/pager/pager.go, `List`) lists again in full when the continue token expired."""
    apiserver.seed([_pod("ml", "llama", f"p{i}", True) for i in range(5)])

    class CompactingAfterFirstPage(Cluster):
        pages = 0

        def request(self, *args: Any, **kw: Any) -> Any:
            answer = super().request(*args, **kw)
            CompactingAfterFirstPage.pages += 1
            if CompactingAfterFirstPage.pages == 1:
                apiserver.seed(_pod("ml", "llama", "new", True))
                apiserver.compact()
            return answer

    cluster.__class__ = CompactingAfterFirstPage
    apiserver.traffic.reset()
    items, _ = list_pages(cluster, Scope("v1", "Pod", "ml"), page_size=2)
    names = sorted(o["metadata"]["name"] for o in items)
    assert len(names) == len(set(names)) == 6 and "llama-7d9f-new" in names
    assert apiserver.traffic.requests[("list", "pods")] == 1 + 1 + 3  # page 1, the 410, then 3 fresh pages


def test_the_real_kubectl_pages_through_the_test_api_server(
    apiserver: TestApiServer, kubectl: Kubectl
) -> None:
    """kubectl gets in chunks (`--chunk-size`, default 500) following `continue`: an independent client."""
    apiserver.seed([_pod("ml", "llama", f"p{i:03d}", True) for i in range(250)])
    apiserver.traffic.reset()
    out = kubectl("get", "pods", "-n", "ml", "--chunk-size=100", "-o", "name", check=True).stdout.split()
    assert len(out) == len(set(out)) == 250
    assert apiserver.traffic.requests[("list", "pods")] == 3


# ---- list once, then watch -----------------------------------------------------------------------------


def test_after_start_up_changes_reach_the_model_through_the_watch_with_no_list(
    apiserver: TestApiServer,
) -> None:
    _seed_llama(apiserver)
    source = watching(apiserver)
    try:
        watches = [r for r in apiserver.requests if r.param("watch") == "true"]
        assert {r.param("allowWatchBookmarks") for r in watches} == {"true"}
        assert all(
            WATCH_MIN_SECONDS <= int(r.param("timeoutSeconds") or 0) < 2 * WATCH_MIN_SECONDS for r in watches
        )
        assert all(
            r.param("limit") == str(PAGE_SIZE)
            for r in apiserver.requests
            if r.method == "GET" and r.path.endswith(("/pods", "/deployments")) and r.param("watch") is None
        )
        apiserver.traffic.reset()
        apiserver.seed(_pod("ml", "llama", "c", True))
        refreshed_until(source, lambda s: "llama-7d9f-c" in pods_of(s), "the added pod")
        Cluster.connect(kubeconfig=apiserver.kubeconfig).delete("v1", "Pod", "llama-7d9f-a", "ml")
        refreshed_until(source, lambda s: "llama-7d9f-a" not in pods_of(s), "the deleted pod to go")
        source.scale("ml", "llama", 5)
        scaled = refreshed_until(source, lambda s: s.workloads[0].desired == 5, "the new replica count")
        assert pods_of(scaled) == {"llama-7d9f-b", "llama-7d9f-c"}
        assert lists_by_resource(apiserver) == {}
    finally:
        source.close()


def test_top_once_lists_and_never_watches(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    apiserver.traffic.reset()
    assert [w.name for w in source.refresh().workloads] == ["llama"]
    assert apiserver.traffic.count("watch") == 0
    assert all(not c.running for c in (source.caches or {}).values())
    source.close()


def test_an_expired_watch_causes_exactly_one_relist_per_kind(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    source = watching(apiserver)
    try:
        caches = source.caches or {}
        apiserver.traffic.reset()
        apiserver.cut_watches("expire")
        until(lambda: all(c.lists == 2 and c.running for c in caches.values()), what="every kind re-listed")
        apiserver.seed(_pod("ml", "llama", "after", True))
        refreshed_until(source, lambda s: "llama-7d9f-after" in pods_of(s), "a change after the re-list")
        time.sleep(0.3)
        assert set(lists_by_resource(apiserver).values()) == {1}
        assert len(lists_by_resource(apiserver)) == len(caches)
        assert all(c.expired == 1 for c in caches.values())
    finally:
        source.close()


def test_a_watch_resumed_from_a_compacted_version_lists_again_once(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    source = watching(apiserver)
    try:
        pods = (source.caches or {})["pods"]
        apiserver.traffic.reset()
        apiserver.cut_watches("break")  # the client backs off 0.8 s, then watches from its old version
        apiserver.seed(_pod("ml", "llama", "meanwhile", True))
        apiserver.compact()
        refreshed_until(source, lambda s: "llama-7d9f-meanwhile" in pods_of(s), "the pod added meanwhile")
        assert apiserver.traffic.requests[("list", "pods")] == 1
        assert pods.expired == 1 and pods.broken == 1
    finally:
        source.close()


def test_a_broken_watch_is_restarted_from_its_version_without_a_list(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    source = watching(apiserver)
    try:
        caches = source.caches or {}
        opened = {name: c.watches for name, c in caches.items()}
        apiserver.traffic.reset()
        apiserver.cut_watches("break")
        until(
            lambda: all(c.broken == 1 and c.watches == opened[n] + 1 for n, c in caches.items()),
            what="every watch reopened",
        )
        apiserver.seed(_pod("ml", "llama", "later", True))
        refreshed_until(source, lambda s: "llama-7d9f-later" in pods_of(s), "a change after the restart")
        assert lists_by_resource(apiserver) == {}
        assert all(c.error is None for c in caches.values())
    finally:
        source.close()


def test_bookmarks_move_the_version_so_a_reopened_watch_needs_no_list(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    apiserver.watches.bookmark_seconds = 0.2
    source = watching(apiserver)
    try:
        pods = (source.caches or {})["pods"]
        apiserver.seed(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated", "namespace": "ml"}}
        )
        newest = apiserver.get_object("v1", "ConfigMap", "unrelated", "ml")["metadata"]["resourceVersion"]
        until(lambda: pods.resource_version == newest, what="a bookmark at the newest version")
        apiserver.traffic.reset()
        apiserver.cut_watches("break")
        apiserver.compact()  # nothing the pods watch missed: it resumes from the bookmark
        until(lambda: apiserver.traffic.requests[("watch", "pods")] == 1, what="the pods watch to reopen")
        time.sleep(0.3)
        assert lists_by_resource(apiserver).get("pods", 0) == 0 and pods.expired == 0
    finally:
        source.close()


def test_a_forbidden_kind_degrades_alone_and_the_rest_keeps_updating(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    apiserver.deny("list", "events")
    source = watching(apiserver)
    try:
        snapshot = source.refresh()
        (events_problem,) = [p for p in snapshot.problems if p.startswith("events:")]
        assert "forbidden" in events_problem and "kubectl auth can-i list events -n ml" in events_problem
        apiserver.seed(_pod("ml", "llama", "c", True))
        refreshed_until(source, lambda s: "llama-7d9f-c" in pods_of(s), "the pods to keep updating")
    finally:
        source.close()


def test_events_are_filtered_on_the_server_and_only_scaling_reasons_are_kept(
    apiserver: TestApiServer,
) -> None:
    _seed_llama(apiserver)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-node-1", "namespace": "ml"}}
    deploy = apiserver.get_object("apps/v1", "Deployment", "llama", "ml")
    apiserver.add_event(node, "NodeNotReady", "node is not ready", type="Warning")
    apiserver.add_event(deploy, "ScalingReplicaSet", "Scaled up replica set llama-7d9f to 2")
    apiserver.add_event(deploy, "SomethingElse", "not a scaling reason")
    source = watching(apiserver)
    try:
        lists = [
            r
            for r in apiserver.requests
            if r.path == "/api/v1/namespaces/ml/events" and r.param("watch") is None
        ]
        assert lists and all(r.param("fieldSelector") == EVENTS_FIELD_SELECTOR for r in lists)
        assert "involvedObject.kind!=Node" in EVENTS_FIELD_SELECTOR
        events = (source.caches or {})["events"]
        assert [e["reason"] for e in events.items()] == ["ScalingReplicaSet"]
        pod = apiserver.get_object("v1", "Pod", "llama-7d9f-a", "ml")
        apiserver.add_event(pod, "BackOff", "Back-off restarting failed container")
        apiserver.add_event(node, "NodeHasDiskPressure", "disk pressure")
        until(
            lambda: {e["reason"] for e in events.items()} == {"ScalingReplicaSet", "BackOff"},
            what="the pod's event through the watch",
        )
        sent = apiserver.traffic.bytes_sent[("watch", "events")]
        assert sent > 0
    finally:
        source.close()


def test_the_doctor_reads_the_watched_kinds_from_the_caches(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    source = watching(apiserver)
    try:
        apiserver.traffic.reset()
        source._doctor_at = None  # run the doctor on this refresh
        snapshot = source.refresh()
        assert any(f.rule == "GS008" for f in snapshot.findings)
        listed = set(lists_by_resource(apiserver))
        assert not listed & {
            "deployments.apps",
            "statefulsets.apps",
            "horizontalpodautoscalers.autoscaling",
            "scaledobjects.keda.sh",
            "pods",
            "events",
        }, listed
        assert "nodes" in listed  # the doctor's own kinds are still listed
    finally:
        source.close()


def test_kind_cache_counts_and_stops(apiserver: TestApiServer, cluster: Cluster) -> None:
    _seed_llama(apiserver)
    cache = KindCache(cluster, Scope("v1", "Pod", "ml"))
    cache.sync()
    assert {o["metadata"]["name"] for o in cache.items()} == {"llama-7d9f-a", "llama-7d9f-b"}
    assert (cache.lists, cache.watches, cache.running) == (1, 0, False)
    assert len(KINDS) == 8


def test_the_traffic_counter_counts_requests_and_bytes_per_verb_and_resource(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    _seed_llama(apiserver)
    apiserver.traffic.reset()
    body = cluster.request("GET", "/api/v1/namespaces/ml/pods").body
    assert apiserver.traffic.requests == {("list", "pods"): 1}
    assert len(body) < apiserver.traffic.bytes_sent[("list", "pods")] < len(body) + 1024  # body and headers
    cluster.get("apps/v1", "Deployment", "llama", "ml")
    assert apiserver.traffic.count("get", "deployments.apps") == 1


def test_close_ends_the_open_watches_at_once(apiserver: TestApiServer) -> None:
    """Switching namespace or context closes the caches: their quiet watches must not stay open until
    the next bookmark or the server's timeout (minutes), holding connections."""
    _seed_llama(apiserver)
    source = watching(apiserver)
    caches = list((source.caches or {}).values())
    until(lambda: all(c.running for c in caches), what="the watch threads")
    source.set_namespace("other")
    until(lambda: not any(c.running for c in caches), timeout=3, what="the watch threads to end")
    assert sum(c.broken for c in caches) <= len(caches)
    source.close()

"""migrate-hpa --rollback (and the --apply undo path) never loses the HPA: failures injected on the test API
server through the real kubernetes client (403, 409, 500, timeouts before and after the commit), forged
saved objects, exact restores, local backups; one flow through the real kubectl binary."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from kubectl_gpuscale.autoscale import apply as service
from kubectl_gpuscale.cli import main
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.kube import Cluster
from kubectl_gpuscale.manifests import load
from kubectl_gpuscale.names import ORIGINAL_HPA
from tests.support.keda_sim import keda_adopts, keda_hpa, keda_operator
from tests.support.kube_fixtures import Kubectl, TestApiServer
from tests.support.paths import MANIFESTS

NS = "ml"
NAME = "gemma-server-hpa"
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler", NAME, NS)
SO = ("keda.sh/v1alpha1", "ScaledObject", NAME, NS)
HPA_PATH = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{NAME}"
SO_PATH = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/{NAME}"
FINISH = f"finish with: kubectl gpuscale migrate-hpa --rollback {NAME} -n {NS}"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _seed(apiserver: TestApiServer) -> dict[str, Any]:
    """The sample vLLM HPA and Deployment in ``ml``, as `kubectl apply` left them, owned by a release
    ConfigMap and holding a finalizer; KEDA 2.20 installed."""
    apiserver.enable_group("keda.sh")
    hpa, deploy = [
        i.obj
        for i in load(
            [str(MANIFESTS / "hpa_k8s-examples_1.yaml"), str(MANIFESTS / "deploy_k8s-examples_1.yaml")]
        )
    ]
    for obj in (hpa, deploy):
        obj["metadata"]["namespace"] = NS
    owner = apiserver.seed(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gemma-release", "namespace": NS}}
    )[0]
    hpa["metadata"]["labels"] = {"app": "gemma", "team": "inference"}
    hpa["metadata"]["annotations"] = {
        LAST_APPLIED: json.dumps({k: hpa[k] for k in ("apiVersion", "kind", "spec")}),
        "owner": "ml-platform",
    }
    hpa["metadata"]["finalizers"] = ["example.com/audit"]
    hpa["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "gemma-release", "uid": owner["metadata"]["uid"]}
    ]
    apiserver.seed(hpa, deploy, keda_operator())
    seeded = apiserver.get_object(*HPA)
    assert seeded is not None
    return seeded


def _gpuscale(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, *args: str
) -> tuple[int, str, str]:
    """Run the CLI's real entry point (errors printed as the user sees them); (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, *args])
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def _migrated(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> dict[str, Any]:
    """Seed, migrate with --apply, and let KEDA adopt the HPA; returns the HPA as it was before."""
    before = _seed(apiserver)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply")
    assert code == 0, err
    keda_adopts(cluster, NAME, NS)
    adopted = apiserver.get_object(*HPA)
    assert adopted["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"
    assert "finalizers" not in adopted["metadata"] and adopted["spec"] != before["spec"]
    apiserver.reset_requests()
    return before


def _assert_restored_exactly(apiserver: TestApiServer, before: dict[str, Any]) -> None:
    hpa = apiserver.get_object(*HPA)
    assert hpa is not None, "the HPA was lost"
    assert hpa["spec"] == before["spec"]
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):
        assert hpa["metadata"].get(key) == before["metadata"].get(key), key


def _assert_kept(apiserver: TestApiServer) -> None:
    """The rollback stopped safely: the ScaledObject and its saved HPA are there, and so is an HPA."""
    so = apiserver.get_object(*SO)
    assert so is not None, "the ScaledObject (the only copy of the original HPA) was deleted"
    assert ORIGINAL_HPA in so["metadata"]["annotations"]
    assert apiserver.get_object(*HPA) is not None, "the HPA was lost"


def _bump_status(cluster: Cluster) -> Any:
    """The HPA controller's status write (every 15 s): the HPA's resourceVersion moves on."""
    counter = {"n": 0}

    def write() -> None:
        counter["n"] += 1
        cluster.patch(
            *HPA[:3],
            NS,
            {"status": {"currentReplicas": counter["n"], "desiredReplicas": 1}},
            subresource="status",
        )

    return write


# ---- the rollback restores exactly, HPA first --------------------------------------------------------


def test_rollback_restores_hpa_first_and_exactly(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """Spec, labels, annotations (last-applied-configuration too), finalizers and ownerReferences come
    back; the HPA is written before the ScaledObject is deleted, and the delete orphans."""
    before = _migrated(capsys, apiserver, cluster)
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    assert out.splitlines() == [
        f"horizontalpodautoscaler.autoscaling/{NAME} restored",
        f"scaledobject.keda.sh/{NAME} deleted (orphan)",
    ]
    _assert_restored_exactly(apiserver, before)
    assert apiserver.get_object(*SO) is None
    writes = [r for r in apiserver.requests if r.method in ("PUT", "POST", "DELETE", "PATCH")]
    assert [(r.method, r.path) for r in writes] == [("PUT", HPA_PATH), ("DELETE", SO_PATH)]
    body = writes[1].json() or {}
    assert (body.get("propagationPolicy") or writes[1].param("propagationPolicy")) == "Orphan"


def test_owner_gone_is_not_restored(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """An ownerReference to a deleted owner is dropped with a note: restoring it would let the garbage
    collector delete the HPA (kubernetes pkg/controller/garbagecollector/garbagecollector.go,
    attemptToDeleteItem: a dependent whose owners are all absent is deleted)."""
    before = _migrated(capsys, apiserver, cluster)
    cluster.delete("v1", "ConfigMap", "gemma-release", NS)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    assert "ownerReference to ConfigMap gemma-release not restored: that owner was deleted" in err
    hpa = apiserver.get_object(*HPA)
    assert hpa["spec"] == before["spec"] and "ownerReferences" not in hpa["metadata"]
    assert hpa["metadata"]["finalizers"] == before["metadata"]["finalizers"]


def test_keda_rewriting_the_hpa_before_the_delete_is_undone(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """Removing KEDA's ownerReference makes KEDA reconcile the ScaledObject and rewrite the HPA
    (kedacore/keda controllers/keda/scaledobject_controller.go SetupWithManager Owns(HPA);
    controllers/keda/hpa.go updateHPAIfNeeded) until the ScaledObject is gone: the rollback
    checks the HPA after the delete and restores it again."""
    before = _migrated(capsys, apiserver, cluster)
    rewrite = apiserver.faults.add("DELETE", SO_PATH, before=lambda: keda_adopts(cluster, NAME, NS))
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    assert rewrite.hits == 1
    assert "KEDA rewrote the HPA before its ScaledObject was deleted: restored it again" in err
    _assert_restored_exactly(apiserver, before)


# ---- a failing step keeps the ScaledObject; the same command finishes the job ------------------------


def test_denied_hpa_update_keeps_everything(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _migrated(capsys, apiserver, cluster)
    apiserver.deny("update", "horizontalpodautoscalers.autoscaling")
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(
        f"error: cannot roll back ScaledObject {NS}/{NAME}: cannot replace HorizontalPodAutoscaler"
    )
    assert (
        f"the rollback changed nothing: ScaledObject {NS}/{NAME} and the original HPA saved on it are kept"
        in err
    )
    assert "kubectl auth can-i update horizontalpodautoscalers.autoscaling -n ml" in err
    assert err.rstrip().endswith(FINISH)
    _assert_kept(apiserver)
    assert not apiserver.requests_to("DELETE")
    apiserver.allow_all()
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    _assert_restored_exactly(apiserver, before)
    assert apiserver.get_object(*SO) is None


def test_conflict_from_status_writes_is_retried(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """The HPA controller writes status between our read and our replace: the server's own
    resourceVersion check answers 409; the rollback re-reads and retries."""
    before = _migrated(capsys, apiserver, cluster)
    fault = apiserver.faults.add("PUT", HPA_PATH, before=_bump_status(cluster), times=2)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    assert fault.hits == 2 and len(apiserver.requests_to("PUT", HPA_PATH)) == 3
    _assert_restored_exactly(apiserver, before)


def test_endless_conflicts_keep_everything(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _migrated(capsys, apiserver, cluster)
    apiserver.faults.add("PUT", HPA_PATH, before=_bump_status(cluster), times=None)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 1
    assert (
        "5 attempts, re-reading the HPA each time" in err
        and "the rollback changed nothing" in err
        and FINISH in err
    )
    _assert_kept(apiserver)
    apiserver.faults.clear()
    assert _gpuscale(capsys, apiserver, "--rollback", NAME)[0] == 0
    _assert_restored_exactly(apiserver, before)


def test_internal_error_keeps_everything(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """A 500 may or may not have landed: read back (not restored here), stop, keep the ScaledObject."""
    before = _migrated(capsys, apiserver, cluster)
    apiserver.faults.add("PUT", HPA_PATH, status=500, message="etcdserver: request timed out")
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 1
    assert "HTTP 500: etcdserver: request timed out" in err
    assert f"HPA {NS}/{NAME} was not restored when read back after the failure" in err and FINISH in err
    assert "nothing changed" not in err
    _assert_kept(apiserver)
    assert _gpuscale(capsys, apiserver, "--rollback", NAME)[0] == 0
    _assert_restored_exactly(apiserver, before)


def test_timeout_after_the_hpa_write_landed_is_read_back(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """The replace is committed but its answer comes after the client's timeout: read back, restored, go on."""
    before = _migrated(capsys, apiserver, cluster)
    apiserver.faults.add("PUT", HPA_PATH, delay=2.0)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--request-timeout", "1s")
    assert code == 0, err
    assert "read back: it is restored" in err
    _assert_restored_exactly(apiserver, before)
    assert apiserver.get_object(*SO) is None


def test_timeout_before_the_hpa_write_landed_keeps_everything(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _migrated(capsys, apiserver, cluster)
    apiserver.faults.add("PUT", HPA_PATH, drop=True, commit=False)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--request-timeout", "1s")
    assert code == 1
    assert "was not restored when read back" in err and FINISH in err
    _assert_kept(apiserver)
    assert _gpuscale(capsys, apiserver, "--rollback", NAME)[0] == 0
    _assert_restored_exactly(apiserver, before)


def test_denied_delete_after_restore_says_so(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _migrated(capsys, apiserver, cluster)
    apiserver.deny("delete", "scaledobjects.keda.sh")
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 1
    assert (
        f"HPA {NS}/{NAME} is restored (its original, no ScaledObject owner), but ScaledObject {NS}/{NAME} "
        "is still there"
    ) in err
    assert "kubectl auth can-i delete scaledobjects.keda.sh -n ml" in err and FINISH in err
    _assert_kept(apiserver)
    _assert_restored_exactly(apiserver, before)
    apiserver.allow_all()
    assert _gpuscale(capsys, apiserver, "--rollback", NAME)[0] == 0
    assert apiserver.get_object(*SO) is None
    _assert_restored_exactly(apiserver, before)


# ---- a forged saved HPA is refused before any write ---------------------------------------------------


def _forge(cluster: Cluster, saved: Any) -> None:
    so = cluster.get(*SO[:3], NS)
    so["metadata"]["annotations"][ORIGINAL_HPA] = saved if isinstance(saved, str) else json.dumps(saved)
    cluster.replace(so)


def test_forged_rolebinding_is_refused(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """Anyone who can edit the ScaledObject must not make an admin's rollback create a RoleBinding."""
    _migrated(capsys, apiserver, cluster)
    _forge(
        cluster,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "pwn", "namespace": NS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
        },
    )
    apiserver.reset_requests()
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 2 and out == ""
    assert err.startswith(f"error: refusing to roll back ScaledObject {NS}/{NAME}: the saved HPA")
    assert "describes RoleBinding pwn (rbac.authorization.k8s.io/v1), not a HorizontalPodAutoscaler" in err
    assert "nothing was written" in err
    assert not [r for r in apiserver.requests if r.method != "GET"]
    assert apiserver.objects("rbac.authorization.k8s.io/v1", "RoleBinding", NS) == []
    _assert_kept(apiserver)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda o: o["metadata"].update(namespace="kube-system"), "is in namespace kube-system, not ml"),
        (
            lambda o: o["metadata"].update(name="other"),
            "names HPA other, but the ScaledObject adopted HPA gemma-server-hpa",
        ),
        (
            lambda o: o["spec"]["scaleTargetRef"].update(name="payments"),
            "scales Deployment/payments (apps), but the ScaledObject scales Deployment/vllm-gemma-deployment (apps)",
        ),
        (
            lambda o: o.update(apiVersion="rbac.authorization.k8s.io/v1"),
            "not a HorizontalPodAutoscaler (autoscaling/*)",
        ),
        (lambda o: o["metadata"].update(labels={"a": ["b"]}), "metadata.labels that is not a map of strings"),
        (
            lambda o: o["metadata"].update(ownerReferences=[{"kind": "X"}]),
            "metadata.ownerReferences that are not",
        ),
        (lambda o: o.pop("spec"), "has no spec"),
    ],
)
def test_forged_fields_are_refused(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster, change: Any, why: str
) -> None:
    _migrated(capsys, apiserver, cluster)
    saved = json.loads(cluster.get(*SO[:3], NS)["metadata"]["annotations"][ORIGINAL_HPA])
    change(saved)
    _forge(cluster, saved)
    apiserver.reset_requests()
    with pytest.raises(InputError, match="refusing to roll back") as info:
        service.rollback(cluster, NAME, NS)
    assert why in info.value.why
    assert not [r for r in apiserver.requests if r.method != "GET"]


def test_annotation_not_json_is_refused(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    _migrated(capsys, apiserver, cluster)
    _forge(cluster, "{not json")
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 2 and "annotation is not JSON" in err and "--from-backup FILE" in err
    _assert_kept(apiserver)


# ---- writes of unknown outcome during --apply ---------------------------------------------------------


@pytest.mark.parametrize(
    "fault", [{"delay": 2.0}, {"drop": True}], ids=["commit-then-timeout", "commit-then-drop"]
)
def test_apply_write_that_landed_unseen_is_undone(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster, fault: dict[str, Any]
) -> None:
    """The ScaledObject is committed but the client never hears it: read back, counted as written, and
    undone; the message never says "0 object(s) written"."""
    before = _seed(apiserver)
    injected = apiserver.faults.add("PATCH", SO_PATH, **fault)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply", "--request-timeout", "1s")
    assert code == 1 and injected.hits == 1
    assert f"ScaledObject {NS}/{NAME} was written all the same (read back after the failure)" in err
    assert f"nothing changed: 1 object(s) written were undone (ScaledObject {NS}/{NAME})" in err
    assert "0 object(s)" not in err
    assert apiserver.get_object(*SO) is None
    _assert_restored_exactly(apiserver, before)


def test_apply_second_object_landed_unseen_undoes_both(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _seed(apiserver)
    pdb = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/"
    apiserver.faults.add("PATCH", pdb, drop=True)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply", "--pdb", "--request-timeout", "1s")
    assert code == 1
    assert "was written all the same" in err and "2 object(s) written were undone" in err
    assert apiserver.get_object(*SO) is None
    assert apiserver.objects("policy/v1", "PodDisruptionBudget", NS) == []
    _assert_restored_exactly(apiserver, before)


def test_apply_write_that_did_not_land_is_not_called_nothing_changed(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """No answer and not there when read back: said as such, with the command to check again."""
    _seed(apiserver)
    apiserver.faults.add("PATCH", SO_PATH, drop=True, commit=False)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply", "--request-timeout", "1s")
    assert code == 1
    assert f"ScaledObject {NS}/{NAME} was not there when read back after the failure" in err
    assert f"kubectl get scaledobject {NAME} -n {NS}" in err and "nothing changed" not in err
    assert apiserver.get_object(*SO) is None


# ---- local backups -------------------------------------------------------------------------------------


def _backup_path(err: str) -> Path:
    line = next(x for x in err.splitlines() if x.startswith(f"backup of HPA {NS}/{NAME}: "))
    return Path(line.split(": ", 1)[1].split(" (restore with", 1)[0])


def test_apply_writes_a_private_backup(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _seed(apiserver)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply")
    assert code == 0, err
    path = _backup_path(err)
    state = Path(os.environ["XDG_STATE_HOME"])
    assert path.parent == state / "kubectl-gpuscale" / "backups" / "test" / NS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "kubectl-gpuscale").stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved["kind"] == "HorizontalPodAutoscaler" and saved["spec"] == before["spec"]
    assert saved["metadata"]["annotations"][LAST_APPLIED] == before["metadata"]["annotations"][LAST_APPLIED]
    assert f"--rollback {NAME} -n {NS} --from-backup {path}" in err
    assert _gpuscale(capsys, apiserver, NAME, "--apply", "--dry-run=server")[0] == 0
    assert len(list(path.parent.iterdir())) == 1, "a server dry run wrote a backup"
    keda_adopts(cluster, NAME, NS)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply")
    assert code == 0, err
    assert _backup_path(err) == path and len(list(path.parent.iterdir())) == 1, "a re-run piled up a copy"


def test_backup_that_cannot_be_written_stops_before_any_write(
    capsys: pytest.CaptureFixture[str],
    apiserver: TestApiServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(apiserver)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    apiserver.reset_requests()
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply")
    assert code == 1 and f"cannot write the backup of HPA {NS}/{NAME}" in err and "nothing was written" in err
    assert not [r for r in apiserver.requests if r.method != "GET" and r.param("dryRun") is None]
    assert apiserver.get_object(*SO) is None


def test_rollback_from_backup_when_the_annotation_is_gone(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _seed(apiserver)
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply")
    path = _backup_path(err)
    keda_adopts(cluster, NAME, NS)
    so = cluster.get(*SO[:3], NS)
    del so["metadata"]["annotations"][ORIGINAL_HPA]
    cluster.replace(so)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 2 and "--from-backup FILE" in err
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--from-backup", str(path))
    assert code == 0, err
    assert f"scaledobject.keda.sh/{NAME} deleted (orphan)" in out
    _assert_restored_exactly(apiserver, before)
    assert apiserver.get_object(*SO) is None


def test_rollback_from_backup_when_the_scaled_object_is_gone(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """The ScaledObject deleted by hand with a plain delete: the HPA was garbage-collected with it."""
    before = _seed(apiserver)
    path = _backup_path(_gpuscale(capsys, apiserver, NAME, "--apply")[2])
    keda_adopts(cluster, NAME, NS)
    cluster.delete(*SO[:3], NS, propagation_policy="Background")
    assert apiserver.get_object(*HPA) is None
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--from-backup", str(path))
    assert code == 0, err
    assert out.splitlines() == [f"horizontalpodautoscaler.autoscaling/{NAME} restored"]
    assert f"ScaledObject {NS}/{NAME} not found: only the HPA was restored" in err
    _assert_restored_exactly(apiserver, before)


def test_forged_backup_is_refused(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    _migrated(capsys, apiserver, cluster)
    forged = tmp_path / "backup.json"
    forged.write_text(
        json.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": NAME},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            }
        )
    )
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--from-backup", str(forged))
    assert code == 2 and "the saved HPA" not in err and f"backup {forged} describes ClusterRoleBinding" in err
    _assert_kept(apiserver)


def test_from_backup_needs_rollback(capsys: pytest.CaptureFixture[str], apiserver: TestApiServer) -> None:
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--from-backup", "x.json")
    assert code == 2 and "--from-backup needs --rollback" in err


# ---- the user's path: the real kubectl binary ----------------------------------------------------------


def test_through_kubectl_denied_restore_then_finish(
    kubectl: Kubectl, apiserver: TestApiServer, cluster: Cluster
) -> None:
    """`kubectl gpuscale migrate-hpa`: apply (backup printed), a denied rollback that keeps everything and
    prints the command that finishes it, then that command."""
    before = _seed(apiserver)
    applied = kubectl("gpuscale", "migrate-hpa", NAME, "-n", NS, "--apply")
    assert applied.returncode == 0, applied.stderr
    path = _backup_path(applied.stderr)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keda_adopts(cluster, NAME, NS)
    apiserver.deny("update", "horizontalpodautoscalers.autoscaling")
    denied = kubectl("gpuscale", "migrate-hpa", "--rollback", NAME, "-n", NS)
    assert denied.returncode == 1 and denied.stdout == ""
    assert denied.stderr.count("\n") == 1 and "Traceback" not in denied.stderr
    assert "the rollback changed nothing" in denied.stderr and denied.stderr.rstrip().endswith(FINISH)
    _assert_kept(apiserver)
    apiserver.allow_all()
    finished = kubectl(*FINISH.removeprefix("finish with: kubectl ").split())
    assert finished.returncode == 0, finished.stderr
    assert f"horizontalpodautoscaler.autoscaling/{NAME} restored" in finished.stdout
    _assert_restored_exactly(apiserver, before)
    assert apiserver.get_object(*SO) is None


def test_hpa_recreated_by_keda_meanwhile_is_replaced(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """The HPA is gone, so the rollback creates it; KEDA re-creates it first (ensureHPAForScaledObjectExists,
    kedacore/keda controllers/keda/scaledobject_controller.go): 409 AlreadyExists, re-read, replace."""
    before = _migrated(capsys, apiserver, cluster)
    cluster.delete(*HPA[:3], NS, propagation_policy="Orphan")
    so = cluster.get(*SO[:3], NS)
    recreate = apiserver.faults.add(
        "POST",
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
        before=lambda: apiserver.seed(keda_hpa(so, NAME)),
    )
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 0, err
    assert recreate.hits == 1 and len(apiserver.requests_to("PUT", HPA_PATH)) == 1
    _assert_restored_exactly(apiserver, before)


def test_untouched_hpa_needs_no_write(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """Undoing an --apply before KEDA adopted the HPA writes nothing to it: a user who may create
    ScaledObjects but not update HPAs can still undo."""
    before = _seed(apiserver)
    assert _gpuscale(capsys, apiserver, NAME, "--apply")[0] == 0
    apiserver.deny("update", "horizontalpodautoscalers.autoscaling")
    done = service.rollback(cluster, NAME, NS)
    assert done.scaled_object_deleted and apiserver.get_object(*SO) is None
    _assert_restored_exactly(apiserver, before)


def test_client_dry_run_plans_and_validates(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    before = _migrated(capsys, apiserver, cluster)
    code, out, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--dry-run=client", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["spec"] == before["spec"]
    assert (
        f"would restore HPA {NS}/{NAME} from the saved HPA ({ORIGINAL_HPA} annotation), then delete "
        f"ScaledObject {NS}/{NAME} (propagationPolicy=Orphan)"
    ) in err
    assert not [r for r in apiserver.requests if r.method != "GET"]
    _forge(cluster, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": NAME}})
    assert _gpuscale(capsys, apiserver, "--rollback", NAME, "--dry-run=client")[0] == 2


def test_last_check_failing_after_the_delete_leaves_a_backup(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    """The worst case: KEDA rewrites the HPA just before the delete and the write that fixes it fails. The
    ScaledObject (and its annotation) is gone, so the original goes to a new local backup, and the
    command the error prints restores it."""
    before = _migrated(capsys, apiserver, cluster)

    def keda_then_outage() -> None:
        keda_adopts(cluster, NAME, NS)
        apiserver.faults.add("PUT", HPA_PATH, status=500, times=None)

    apiserver.faults.add("DELETE", SO_PATH, before=keda_then_outage)
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME)
    assert code == 1
    assert (
        f"ScaledObject {NS}/{NAME} is deleted; HPA {NS}/{NAME} may hold what KEDA wrote; the original is saved in"
        in err
    )
    command = err.rstrip().split("finish with: kubectl ", 1)[1].split()
    path = Path(command[-1])
    assert command[:-1] == ["gpuscale", "migrate-hpa", "--rollback", NAME, "-n", NS, "--from-backup"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert apiserver.get_object(*SO) is None
    apiserver.faults.clear()
    code, _, err = _gpuscale(capsys, apiserver, "--rollback", NAME, "--from-backup", str(path))
    assert code == 0, err
    _assert_restored_exactly(apiserver, before)


def test_scale_target_without_api_version_is_accepted(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """scaleTargetRef.apiVersion is optional in an HPA (CrossVersionObjectReference): kind and name still match."""
    _migrated(capsys, apiserver, cluster)
    saved = json.loads(cluster.get(*SO[:3], NS)["metadata"]["annotations"][ORIGINAL_HPA])
    del saved["spec"]["scaleTargetRef"]["apiVersion"]
    _forge(cluster, saved)
    assert service.rollback(cluster, NAME, NS).scaled_object_deleted


def test_backup_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from kubectl_gpuscale.autoscale.backup import backup_root, read_backup, write_backup

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"maxReplicas": 3},
    }
    now = datetime(2026, 12, 3, 17, 0, 0, tzinfo=timezone.utc)
    directory = backup_root() / "ctx" / NS
    directory.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (directory / f"{NAME}-20261203T170000Z.json").symlink_to(victim)
    path = write_backup(hpa, context="ctx", now=now)
    assert path.name == f"{NAME}-20261203T170000Z-2.json" and not path.is_symlink()
    assert victim.read_text() == "keep me"
    assert read_backup(str(path)) == hpa
    assert write_backup(hpa, context="ctx", now=now) == path  # same content: no second copy


def test_apply_undo_that_cannot_restore_keeps_the_scaled_object(
    capsys: pytest.CaptureFixture[str], apiserver: TestApiServer, cluster: Cluster
) -> None:
    """The --apply undo path is the rollback: KEDA adopted the HPA, the next write is refused, and the undo
    may not update HPAs. The ScaledObject (the original's only copy in the cluster) stays, and the error
    says how to finish."""
    _seed(apiserver)
    pdb = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/"

    def keda_adopts_then_hpas_locked() -> None:
        keda_adopts(cluster, NAME, NS)
        apiserver.deny("update", "horizontalpodautoscalers.autoscaling")

    apiserver.faults.add(
        "PATCH",
        pdb,
        before=keda_adopts_then_hpas_locked,
        status=403,
        message="poddisruptionbudgets.policy is forbidden",
    )
    code, _, err = _gpuscale(capsys, apiserver, NAME, "--apply", "--pdb")
    assert code == 1
    assert "undoing the partial write failed: cannot roll back ScaledObject" in err
    assert "the rollback changed nothing:" in err and "nothing changed" not in err and FINISH in err
    _assert_kept(apiserver)
    apiserver.allow_all()
    assert _gpuscale(capsys, apiserver, "--rollback", NAME)[0] == 0
    hpa = apiserver.get_object(*HPA)
    assert hpa["metadata"]["labels"] == {"app": "gemma", "team": "inference"}

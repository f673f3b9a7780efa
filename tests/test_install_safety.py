"""install / uninstall never lose the user's objects nor act on a forged record; release files are verified.

Issue 13, items 2, 3 and 8, on the test API server through the real kubernetes client (and,
for the confirmation and the forged record, through the real `kubectl` binary running the
plugin). Nothing downloads from the internet: release files come from a `--manifests` dir
the test writes or from a local HTTP server standing in for the release page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubectl_gpuscale.install import catalog
from kubectl_gpuscale.names import (
    COMPONENT_LABEL,
    CONFIG_NAME,
    CONFIG_NAMESPACE,
    INSTALL_ID_LABEL,
    MANAGED_LABELS,
    VERSION_ANNOTATION,
)
from tests.support.apiserver import ApiServer
from tests.support.keda_chart import seed_keda_chart
from tests.support.kube_fixtures import TestApiServer
from tests.test_install_cluster import KEDA_MANIFEST, Controllers, gpuscale, write_keda

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
KEDA_FILE = f"keda-{catalog.KEDA.version}.yaml"


def _writes(server: ApiServer) -> list[Any]:
    return [
        r
        for r in server.requests
        if r.method in ("PATCH", "POST", "PUT", "DELETE") and "selfsubjectaccessreviews" not in r.path
    ]


def _deletes(server: ApiServer) -> list[Any]:
    return [r for r in server.requests if r.method == "DELETE"]


def _record(server: ApiServer, component: str = "keda") -> dict[str, Any]:
    cm = server.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    assert cm is not None
    data: dict[str, Any] = json.loads(cm["data"][f"component.{component}"])
    return data


USER_NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "keda", "labels": {"team": "platform"}},
}
USER_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "vault-token", "namespace": "keda"},
    "type": "Opaque",
    "data": {"token": "c2VjcmV0"},
}


def test_pre_existing_namespace_and_its_secret_survive_uninstall(bare: ApiServer, tmp_path: Path) -> None:
    """Item 2: the user's namespace `keda` and the Secret in it existed before install: install adopts the
    namespace (no ownership labels, recorded apart), uninstall deletes what install created and keeps both.
    The test server deletes a namespace's objects with it, as the namespace controller does
    (kubernetes pkg/controller/namespace/deletion/namespaced_resources_deleter.go, deleteAllContent)."""
    bare.seed(USER_NAMESPACE, USER_SECRET)
    with Controllers(bare):
        out = gpuscale(
            bare, "install", "keda", "--manifests", str(write_keda(tmp_path / "m")), "--timeout", "20s"
        )
    assert out.exit_code == 0, out.stderr
    assert (
        "6 created, 0 configured, 0 unchanged, 1 adopted (existed before: uninstall keeps them)" in out.stdout
    )
    record = _record(bare)
    assert {"apiVersion": "v1", "kind": "Namespace", "name": "keda"} in record["adopted"]
    assert all(o["kind"] != "Namespace" for o in record["objects"])
    ns = bare.get_object("v1", "Namespace", "keda")
    assert ns and ns["metadata"]["labels"] == {
        "team": "platform"
    }  # no ownership labels on the user's namespace
    op = bare.get_object("apps/v1", "Deployment", "keda-operator", "keda")
    assert op and op["metadata"]["labels"][INSTALL_ID_LABEL] == record["installId"]
    assert op["metadata"]["annotations"][VERSION_ANNOTATION] == catalog.KEDA.version

    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert "keep namespace/keda (existed before the install: adopted, never deleted)" in done.stderr
    assert "deployment.apps/keda-operator -n keda deleted" in done.stdout
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is None
    assert bare.get_object("v1", "Namespace", "keda") is not None
    secret = bare.get_object("v1", "Secret", "vault-token", "keda")
    assert secret and secret["data"] == {"token": "c2VjcmV0"}
    assert not [r for r in _deletes(bare) if r.path == "/namespaces/keda" or "secrets" in r.path]


def test_namespace_install_created_is_kept_when_the_user_added_objects_to_it(
    bare: ApiServer, tmp_path: Path
) -> None:
    """Install created `keda`; the user then put a Secret in it: the namespace stays, the Secret with it."""
    with Controllers(bare):
        assert (
            gpuscale(
                bare, "install", "keda", "--manifests", str(write_keda(tmp_path / "m")), "--timeout", "20s"
            ).exit_code
            == 0
        )
    bare.seed(USER_SECRET)
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert (
        "keep namespace/keda (holds objects this install did not create: secret/vault-token -n keda)"
        in done.stderr
    )
    assert bare.get_object("v1", "Secret", "vault-token", "keda") is not None
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is None


def test_release_object_outside_the_catalogue_is_applied_but_not_recorded(
    bare: ApiServer, tmp_path: Path
) -> None:
    """A release file holding an object outside what the catalogue says the release can contain (here a
    ClusterRoleBinding not named keda-*): install warns and leaves it out of the record, so the record
    never lists what uninstall would refuse."""
    d = write_keda(tmp_path / "m")
    (d / KEDA_FILE).write_text(
        (d / KEDA_FILE).read_text()
        + """---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: extra-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: keda-operator, namespace: keda}]
"""
    )
    with Controllers(bare):
        out = gpuscale(bare, "install", "keda", "--manifests", str(d), "--timeout", "20s")
    assert out.exit_code == 0, out.stderr
    assert (
        "warning: clusterrolebinding.rbac.authorization.k8s.io/extra-admin is not recorded, so uninstall will "
        "not delete it: the KEDA release holds no cluster-scoped ClusterRoleBinding of that name"
    ) in out.stderr
    assert all(o["name"] != "extra-admin" for o in _record(bare)["objects"])
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert bare.get_object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "extra-admin") is not None


def test_namespace_is_kept_when_its_contents_cannot_be_listed(bare: ApiServer, tmp_path: Path) -> None:
    """A kind that may not be listed in the namespace could hide the user's objects: the namespace stays."""
    with Controllers(bare):
        assert (
            gpuscale(
                bare, "install", "keda", "--manifests", str(write_keda(tmp_path / "m")), "--timeout", "20s"
            ).exit_code
            == 0
        )
    bare.deny("list", "secrets", namespace="keda")
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert (
        "keep namespace/keda (holds objects this install did not create: secrets (cannot list them:"
        in done.stderr
    )
    assert bare.get_object("v1", "Namespace", "keda") is not None


def _forged_record(*objects: dict[str, str], install_id: str = "0123456789abcdef") -> dict[str, Any]:
    record = {
        "version": "2.20.2",
        "method": "manifests",
        "installId": install_id,
        "objects": list(objects),
        "namespace": "keda",
        "release": None,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE},
        "data": {"component.keda": json.dumps(record)},
    }


PROD_DB = {"apiVersion": "v1", "kind": "Namespace", "name": "prod-db"}
CLUSTER_ADMIN = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "name": "cluster-admin",
}


def test_forged_record_outside_the_catalogue_deletes_nothing(
    apiserver: TestApiServer, kubectl: Kubectl
) -> None:
    """Item 3, through `kubectl gpuscale`: a component.keda record listing namespace/prod-db and the
    cluster-admin ClusterRoleBinding is refused as a whole, naming both and why; nothing is deleted."""
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod-db"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "postgres", "namespace": "prod-db"},
            "spec": {
                "selector": {"matchLabels": {"a": "pg"}},
                "template": {
                    "metadata": {"labels": {"a": "pg"}},
                    "spec": {"containers": [{"name": "pg", "image": "postgres"}]},
                },
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
            ],
        },
        _forged_record(PROD_DB, CLUSTER_ADMIN),
    )
    apiserver.reset_requests()
    proc = kubectl("gpuscale", "uninstall", "keda", "--yes", input="")
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr
    assert err[0].startswith(
        "error: refusing to uninstall keda, nothing was deleted: the install record "
        "(ConfigMap gpuscale-system/gpuscale-config, key component.keda) lists 2 object(s) "
        "outside the KEDA release"
    )
    assert "namespace/prod-db (the KEDA release creates only the namespace(s) keda)" in err[0]
    assert (
        "clusterrolebinding.rbac.authorization.k8s.io/cluster-admin (the KEDA release holds no cluster-scoped "
        "ClusterRoleBinding of that name (only ClusterRoleBinding keda-*))"
    ) in err[0]
    assert _deletes(apiserver) == []
    assert apiserver.get_object("v1", "Namespace", "prod-db") is not None
    assert apiserver.get_object("apps/v1", "Deployment", "postgres", "prod-db") is not None
    assert (
        apiserver.get_object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "cluster-admin")
        is not None
    )


def test_forged_record_inside_the_catalogue_keeps_objects_install_did_not_label(bare: ApiServer) -> None:
    """A forged record naming objects a KEDA release could hold (a Secret in `keda`, ClusterRoleBinding
    keda-operator) passes the catalogue but not the live labels: each is kept, with the label that differs."""
    bare.seed(
        USER_NAMESPACE,
        USER_SECRET,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": "keda-operator",
                "labels": {**MANAGED_LABELS, COMPONENT_LABEL: "keda", INSTALL_ID_LABEL: "someone-elses"},
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "keda-operator",
            },
            "subjects": [],
        },
        _forged_record(
            {"apiVersion": "v1", "kind": "Secret", "name": "vault-token", "namespace": "keda"},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "name": "keda-operator",
            },
            {"apiVersion": "v1", "kind": "Namespace", "name": "keda"},
        ),
    )
    out = gpuscale(bare, "uninstall", "keda", "--yes")
    assert out.exit_code == 0, out.stderr
    assert (
        "keep secret/vault-token -n keda (not created by this install: label app.kubernetes.io/managed-by "
        "is absent, not 'kubectl-gpuscale')"
    ) in out.stderr
    assert (
        "keep clusterrolebinding.rbac.authorization.k8s.io/keda-operator (not created by this install: label "
        "kubectl-gpuscale/install-id is 'someone-elses', not '0123456789abcdef')"
    ) in out.stderr
    assert "(nothing to delete)" in out.stderr
    assert _deletes(bare) == []
    assert bare.get_object("v1", "Secret", "vault-token", "keda") is not None


def test_record_without_install_id_is_refused(bare: ApiServer) -> None:
    """A record from before install ids (or forged without one) cannot show any object is ours: refused."""
    bare.seed(
        USER_NAMESPACE,
        _forged_record({"apiVersion": "v1", "kind": "Namespace", "name": "keda"}, install_id=""),
    )
    out = gpuscale(bare, "uninstall", "keda", "--yes")
    assert out.exit_code == 1
    assert "its install record has no install id" in out.stderr
    assert _deletes(bare) == [] and bare.get_object("v1", "Namespace", "keda") is not None


def _seed_installed_keda(server: Any) -> None:
    labels = {**MANAGED_LABELS, COMPONENT_LABEL: "keda", INSTALL_ID_LABEL: "0123456789abcdef"}
    server.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "keda-operator", "namespace": "keda", "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "k"}},
                "template": {
                    "metadata": {"labels": {"app": "k"}},
                    "spec": {"containers": [{"name": "k", "image": "k"}]},
                },
            },
        },
        _forged_record(
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "keda-operator", "namespace": "keda"}
        ),
    )


def test_uninstall_without_a_terminal_needs_yes(apiserver: TestApiServer, kubectl: Kubectl) -> None:
    """Through `kubectl gpuscale` with stdin a pipe: no --yes stops before any delete (exit 2, one line);
    --dry-run=client prints the plan only; --yes deletes."""
    _seed_installed_keda(apiserver)
    apiserver.reset_requests()
    stopped = kubectl("gpuscale", "uninstall", "keda", input="")
    assert stopped.returncode == 2, stopped.stderr
    assert "  - delete deployment.apps/keda-operator -n keda" in stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == (
        "error: not uninstalling keda: it would delete 1 object(s) and needs confirmation: stdin is not a terminal "
        "and --yes was not given; review the plan above (or run with --dry-run=client) and re-run with --yes"
    )
    assert _deletes(apiserver) == []
    assert apiserver.get_object("apps/v1", "Deployment", "keda-operator", "keda") is not None

    dry = kubectl("gpuscale", "uninstall", "keda", "--dry-run=client", input="")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "deployment.apps/keda-operator -n keda deleted (dry run)\n"
    assert _writes(apiserver) == []

    done = kubectl("gpuscale", "uninstall", "keda", "--yes", input="")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deployment.apps/keda-operator -n keda deleted\n"
    assert apiserver.get_object("apps/v1", "Deployment", "keda-operator", "keda") is None


def test_uninstall_on_a_terminal_asks_and_a_no_deletes_nothing(bare: ApiServer, tmp_path: Path) -> None:
    """On a terminal (a real pty as stdin), the plan is followed by a question; answering `n` deletes nothing."""
    import os
    import pty
    import sys

    _seed_installed_keda(bare)
    parent, child = pty.openpty()
    try:
        os.write(parent, b"n\n")
        proc = subprocess.run(
            [sys.executable, "-m", "kubectl_gpuscale", "uninstall", "keda", "--kubeconfig", bare.kubeconfig],  # type: ignore[attr-defined]
            stdin=child,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "x")},
        )
    finally:
        os.close(child)
        os.close(parent)
    assert "Delete 1 object(s) of keda? [y/N]" in proc.stderr
    assert proc.returncode == 2 and "not uninstalling keda: not confirmed; nothing was deleted" in proc.stderr
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is not None


# ---- item 8: release file digests -----------------------------------------------------------------


@pytest.fixture
def release_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A local HTTP server standing in for the GitHub release page; the KEDA catalogue entry points at it.

    Yields the directory it serves (write the release file there)."""
    root = tmp_path / "release"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/keda-{{version}}.yaml"
    local = dataclasses.replace(catalog.KEDA, manifests=(("keda-{version}.yaml", url),))
    monkeypatch.setitem(catalog.COMPONENTS, "keda", local)
    try:
        yield root
    finally:
        server.shutdown()
        thread.join(5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return


def test_downloaded_file_digest_is_shown_recorded_and_a_tampered_cache_is_refused(
    bare: ApiServer, release_page: Path, tmp_path: Path
) -> None:
    """Item 8: the downloaded file's sha256 is in the plan and the install record, and written beside the
    cached copy; a cache file changed afterwards is refused (nothing applied), even when its sidecar digest
    was rewritten too (the install record in the cluster still holds the real one)."""
    body = KEDA_MANIFEST.replace("VERSION", catalog.KEDA.version).encode()
    (release_page / KEDA_FILE).write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    with Controllers(bare):
        first = gpuscale(bare, "install", "keda", "--method", "manifests", "--timeout", "20s")
    assert first.exit_code == 0, first.stderr
    assert (
        f"    - server-side apply {KEDA_FILE} (from the cache or a sha256-checked download)\n"
        f"      sha256 {digest} (no published digest to check it against: compare it with the "
        "release page)\n"
    ) in first.stderr
    assert _record(bare)["files"] == [
        {
            "file": KEDA_FILE,
            "sha256": digest,
            "source": f"download:{catalog.COMPONENTS['keda'].artifacts()[0].url}",
        }
    ]
    cached = tmp_path / "xdg-cache" / "kubectl-gpuscale" / "manifests" / KEDA_FILE
    assert (cached.parent / f"{KEDA_FILE}.sha256").read_text() == f"{digest}  {KEDA_FILE}\n"

    with Controllers(bare):
        again = gpuscale(bare, "install", "keda", "--method", "manifests", "--timeout", "20s")
    assert again.exit_code == 0, again.stderr
    assert (
        f"      sha256 {digest} (matches the install record in the cluster and the digest recorded "
        "when it was downloaded)"
    ) in again.stderr

    tampered = body.replace(b"ghcr.io/kedacore/keda:", b"evil.example/keda:")
    cached.write_bytes(tampered)
    bare.reset_requests()
    refused = gpuscale(bare, "install", "keda", "--method", "manifests", "--timeout", "20s")
    assert refused.exit_code == 1
    bad = hashlib.sha256(tampered).hexdigest()
    assert (
        f"error: refusing the cached {cached}: its sha256 is {bad}, but the install record in the cluster "
        f"says {digest}: the file was changed after it was downloaded; delete {cached} (and "
        f"{KEDA_FILE}.sha256) to download it again"
    ) in refused.stderr
    assert _writes(bare) == []

    (cached.parent / f"{KEDA_FILE}.sha256").write_text(f"{bad}  {KEDA_FILE}\n")
    still = gpuscale(bare, "install", "keda", "--method", "manifests", "--timeout", "20s")
    assert still.exit_code == 1 and "the install record in the cluster says" in still.stderr
    assert _writes(bare) == []
    op = bare.get_object("apps/v1", "Deployment", "keda-operator", "keda")
    assert op and op["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/kedacore/")


def test_tampered_cache_is_refused_on_a_new_cluster_by_its_download_digest(
    bare: ApiServer, release_page: Path, tmp_path: Path
) -> None:
    """No install record yet (a fresh cluster): the digest written at download time still catches the change,
    with --no-download too; nothing is applied."""
    body = KEDA_MANIFEST.replace("VERSION", catalog.KEDA.version).encode()
    cached = tmp_path / "xdg-cache" / "kubectl-gpuscale" / "manifests" / KEDA_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(body + b"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: planted}\n")
    (cached.parent / f"{KEDA_FILE}.sha256").write_text(f"{hashlib.sha256(body).hexdigest()}  {KEDA_FILE}\n")
    out = gpuscale(bare, "install", "keda", "--method", "manifests", "--no-download")
    assert out.exit_code == 1
    assert "but the digest recorded when it was downloaded says" in out.stderr
    assert bare.objects("v1", "Namespace") == [] or all(
        n["metadata"]["name"] != "planted" for n in bare.objects("v1", "Namespace")
    )
    assert _writes(bare) == []


def test_sha256_flag_checks_manifests_dir_files(bare: ApiServer, tmp_path: Path) -> None:
    """`--manifests DIR --sha256 FILE=DIGEST`: a mismatch is refused before any write; the right digest is
    shown as checked; a file name the plan does not hold, or a malformed digest, is a usage error."""
    d = write_keda(tmp_path / "m")
    digest = hashlib.sha256((d / KEDA_FILE).read_bytes()).hexdigest()
    wrong = "0" * 64
    bad = gpuscale(bare, "install", "keda", "--manifests", str(d), "--sha256", f"{KEDA_FILE}={wrong}")
    assert bad.exit_code == 1
    assert (
        f"error: refusing {d / KEDA_FILE}: sha256 mismatch: the file has {digest}, --sha256 says {wrong}; "
        "check you have the file you meant, or fix the --sha256 value"
    ) in bad.stderr
    assert _writes(bare) == []

    unknown = gpuscale(bare, "install", "keda", "--manifests", str(d), "--sha256", f"keda.yaml={digest}")
    assert unknown.exit_code == 2
    assert (
        f"--sha256 keda.yaml=...: no such release file in this install: the files are: {KEDA_FILE}"
        in unknown.stderr
    )
    malformed = gpuscale(bare, "install", "keda", "--manifests", str(d), "--sha256", f"{KEDA_FILE}=abc")
    assert malformed.exit_code == 2 and "not a sha256" in malformed.stderr

    with Controllers(bare):
        good = gpuscale(
            bare,
            "install",
            "keda",
            "--manifests",
            str(d),
            "--sha256",
            f"{KEDA_FILE}={digest.upper()}",
            "--timeout",
            "20s",
        )
    assert good.exit_code == 0, good.stderr
    assert (
        f"server-side apply {KEDA_FILE} (from {d})\n      sha256 {digest} (matches --sha256)\n" in good.stderr
    )
    assert _record(bare)["files"][0]["sha256"] == digest


# ---- the Helm path: `helm uninstall` only for a release this install made -------------------------------

STORING_HELM = """#!{python}
# A stand-in for helm that stores release revisions as helm's secrets driver does
# (helm/helm pkg/storage/driver/secrets.go, newSecretsObject: sh.helm.release.v1.<name>.v<N>, labels
# name/owner/status/version) and records its argv.
import json, os, sys
from kubectl_gpuscale.kube import Cluster
argv = sys.argv[1:]
with open(os.environ["HELM_RECORD"], "a") as fh:
    fh.write(json.dumps(argv) + "\\n")
cluster = Cluster.connect(kubeconfig=argv[argv.index("--kubeconfig") + 1])
release, ns = argv[1 if argv[0] == "uninstall" else 2], argv[argv.index("--namespace") + 1]
revisions = cluster.list("v1", "Secret", ns, label_selector=f"owner=helm,name={{release}}")
if argv[0] == "uninstall":
    for s in revisions:
        cluster.delete("v1", "Secret", s["metadata"]["name"], ns)
    print(f"release \\"{{release}}\\" uninstalled")
else:
    n = len(revisions) + 1
    cluster.create({{"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                    "metadata": {{"name": f"sh.helm.release.v1.{{release}}.v{{n}}", "namespace": ns,
                                 "labels": {{"name": release, "owner": "helm", "status": "deployed",
                                            "version": str(n)}}}}, "data": {{}}}})
    print("Release has been upgraded. Happy Helming!")
"""


@pytest.fixture
def storing_helm(bare: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `helm` on PATH, and what the KEDA chart would have made (ready, under the Helm names)."""
    import os
    import stat
    import sys

    bindir = tmp_path / "helm-bin"
    bindir.mkdir()
    helm = bindir / "helm"
    helm.write_text(STORING_HELM.format(python=sys.executable))
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HELM_RECORD", str(tmp_path / "helm.jsonl"))
    seed_keda_chart(bare, KEDA_MANIFEST)
    return tmp_path / "helm.jsonl"


def _helm_calls(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_helm_release_this_install_made_is_uninstalled(bare: ApiServer, storing_helm: Path) -> None:
    """The revision helm stored is labelled with the install id; uninstall runs `helm uninstall` for it."""
    out = gpuscale(bare, "install", "keda", "--method", "helm", "--timeout", "10s")
    assert out.exit_code == 0, out.stderr
    install_id = _record(bare)["installId"]
    rev = bare.get_object("v1", "Secret", "sh.helm.release.v1.keda.v1", "keda")
    assert rev and rev["metadata"]["labels"][INSTALL_ID_LABEL] == install_id
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert _helm_calls(storing_helm)[-1][:4] == ["uninstall", "keda", "--namespace", "keda"]
    assert "helm release keda uninstalled" in done.stdout


def test_pre_existing_helm_release_is_adopted_and_never_uninstalled(
    bare: ApiServer, storing_helm: Path
) -> None:
    """The user's own `keda` release existed before: install upgrades it (as asked) but records it adopted;
    uninstall keeps it and says why, and runs no helm."""
    bare.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.keda.v1",
                "namespace": "keda",
                "labels": {"name": "keda", "owner": "helm", "status": "deployed", "version": "1"},
            },
        }
    )
    out = gpuscale(bare, "install", "keda", "--method", "helm", "--timeout", "10s")
    assert out.exit_code == 0, out.stderr
    assert _record(bare)["adopted"] == [
        {"apiVersion": "v1", "kind": "Secret", "name": "sh.helm.release.v1.keda.v1", "namespace": "keda"}
    ]
    latest = bare.get_object("v1", "Secret", "sh.helm.release.v1.keda.v2", "keda")
    assert latest and INSTALL_ID_LABEL not in latest["metadata"]["labels"]
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert (
        "keep helm release keda -n keda (not installed by this install: on its latest revision, label "
        "app.kubernetes.io/managed-by is absent, not 'kubectl-gpuscale')"
    ) in done.stderr
    assert [c[0] for c in _helm_calls(storing_helm)] == ["upgrade"]
    assert bare.get_object("v1", "Secret", "sh.helm.release.v1.keda.v2", "keda") is not None


def test_forged_helm_record_runs_no_helm_uninstall(bare: ApiServer, storing_helm: Path) -> None:
    """A forged `method: helm` record for a release the user installed: no `helm uninstall`."""
    bare.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.keda.v1",
                "namespace": "keda",
                "labels": {"name": "keda", "owner": "helm", "status": "deployed", "version": "1"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE},
            "data": {
                "component.keda": json.dumps(
                    {
                        "version": "2.20.2",
                        "method": "helm",
                        "release": "keda",
                        "installId": "0123456789abcdef",
                        "objects": [],
                    }
                )
            },
        },
    )
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert "keep helm release keda -n keda (not installed by this install" in done.stderr
    assert _helm_calls(storing_helm) == []


HTTP_ADDON = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-add-ons-http-interceptor, namespace: keda}
spec:
  selector: {matchLabels: {app: interceptor}}
  template:
    metadata: {labels: {app: interceptor}}
    spec:
      containers: [{name: interceptor, image: "ghcr.io/kedacore/http-add-on-interceptor:0.15.0"}]
"""


def test_a_namespace_two_components_share_keeps_its_creator_and_goes_last(
    bare: ApiServer, tmp_path: Path
) -> None:
    """KEDA creates `keda`; the HTTP add-on adopts it. Server-side apply removes fields a manager stops
    sending (kubernetes staging/src/k8s.io/apimachinery/pkg/util/managedfields, the apply's field set), so
    adopting must not drop KEDA's ownership labels; the add-on's uninstall keeps the namespace, KEDA's
    uninstall (the last user) deletes it."""
    d = write_keda(tmp_path / "m")
    (d / "keda-add-ons-http-0.15.0-crds.yaml").write_text("")
    (d / "keda-add-ons-http-0.15.0.yaml").write_text(HTTP_ADDON)
    with Controllers(bare):
        assert gpuscale(bare, "install", "keda", "--manifests", str(d), "--timeout", "20s").exit_code == 0
        http = gpuscale(bare, "install", "keda-http", "--manifests", str(d), "--timeout", "20s")
    assert http.exit_code == 0, http.stderr
    assert "1 adopted" in http.stdout
    labels = (bare.get_object("v1", "Namespace", "keda") or {})["metadata"]["labels"]
    assert labels[COMPONENT_LABEL] == "keda"
    assert labels[INSTALL_ID_LABEL] == _record(bare)["installId"]
    gone_http = gpuscale(bare, "uninstall", "keda-http", "--yes")
    assert gone_http.exit_code == 0, gone_http.stderr
    assert "keep namespace/keda (existed before the install: adopted, never deleted)" in gone_http.stderr
    assert bare.get_object("apps/v1", "Deployment", "keda-add-ons-http-interceptor", "keda") is None
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is not None
    gone = gpuscale(bare, "uninstall", "keda", "--yes")
    assert gone.exit_code == 0, gone.stderr
    assert "namespace/keda deleted" in gone.stdout

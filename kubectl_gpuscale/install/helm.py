"""The Helm path: the exact argv (a list, never a shell string) and running it.

`helm upgrade --install` with `--repo URL` (the user's repo list is left alone),
the pinned chart version, and the GPU values in a temporary file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubectl_gpuscale.errors import GpuscaleError, NotFoundError
from kubectl_gpuscale.install.catalog import Component
from kubectl_gpuscale.manifests import dump_yaml

VALUES_PLACEHOLDER = "<values.yaml>"


def helm_binary() -> str | None:
    """The helm executable on PATH, or None."""
    return shutil.which("helm")


@dataclass(frozen=True)
class KubeTarget:
    """The cluster flags helm must receive to act on the same cluster as we do."""

    kubeconfig: str | None = None
    context: str | None = None
    insecure_skip_tls_verify: bool = False

    def flags(self) -> list[str]:
        """helm's global flags for this target."""
        out: list[str] = []
        if self.kubeconfig:
            out += ["--kubeconfig", self.kubeconfig]
        if self.context:
            out += ["--kube-context", self.context]
        if self.insecure_skip_tls_verify:
            out += ["--kube-insecure-skip-tls-verify"]
        return out


def install_argv(
    component: Component,
    version: str,
    *,
    target: KubeTarget = KubeTarget(),
    values_file: str = VALUES_PLACEHOLDER,
    dry_run: str = "none",
    timeout_s: float | None = None,
    helm: str = "helm",
) -> list[str]:
    """`helm upgrade --install` for one component (idempotent: installs, upgrades, or changes nothing)."""
    chart = component.helm
    if chart is None:
        raise NotFoundError(
            f"{component.name} has no Helm chart",
            "it installs from its release manifests",
            "use --method manifests",
        )
    argv = [
        helm,
        "upgrade",
        "--install",
        chart.release,
        chart.chart,
        "--repo",
        chart.repo_url,
        "--version",
        chart.chart_version(version),
        "--namespace",
        component.namespace,
        "--create-namespace",
        "--values",
        values_file,
    ]
    if dry_run == "server":
        argv.append("--dry-run=server")
    if timeout_s:
        argv += ["--timeout", f"{int(timeout_s)}s"]
    return argv + target.flags()


def uninstall_argv(
    component: Component, *, target: KubeTarget = KubeTarget(), dry_run: bool = False, helm: str = "helm"
) -> list[str]:
    """`helm uninstall` of the component's release."""
    chart = component.helm
    if chart is None:
        raise NotFoundError(f"{component.name} has no Helm chart", "it was installed from manifests", "")
    argv = [helm, "uninstall", chart.release, "--namespace", component.namespace]
    if dry_run:
        argv.append("--dry-run")
    return argv + target.flags()


def run(
    argv: Sequence[str], values: Mapping[str, object] | None = None, *, timeout_s: float | None = None
) -> str:
    """Run helm; the values (if any) replace the placeholder with a temporary file. Returns stdout."""
    argv = list(argv)
    tmp = None
    try:
        if VALUES_PLACEHOLDER in argv:
            fd, tmp = tempfile.mkstemp(prefix="gpuscale-values-", suffix=".yaml")
            with os.fdopen(fd, "w") as fh:
                fh.write(dump_yaml(dict(values or {})))
            argv[argv.index(VALUES_PLACEHOLDER)] = tmp
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=(timeout_s or 600) + 60, check=False
            )
        except FileNotFoundError:
            raise NotFoundError(
                f"cannot run {argv[0]}", "helm is not installed", "install helm, or use --method manifests"
            ) from None
        except subprocess.TimeoutExpired:
            raise GpuscaleError(
                f"{' '.join(argv[:3])} timed out",
                "helm did not finish",
                "raise --timeout or check the cluster",
            ) from None
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
            raise GpuscaleError(
                f"helm {argv[1]} failed (exit {done.returncode})",
                lines[-1] if lines else "no output",
                "fix the cause and run install again",
            )
        return done.stdout
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)

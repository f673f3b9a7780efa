"""install sets the HTTP add-on interceptor timeouts the installed version reads (issue 14, item 6).

Sources: kedacore/http-add-on interceptor/config/timeouts.go: before 0.14 the Timeouts struct reads only
KEDA_CONDITION_WAIT_TIMEOUT and KEDA_RESPONSE_HEADER_TIMEOUT (envconfig); from 0.14 MustParseTimeouts reads
KEDA_HTTP_READINESS_TIMEOUT / KEDA_HTTP_RESPONSE_HEADER_TIMEOUT, and the deprecated two win when set
(deprecatedTimeouts; timeouts_test.go TestMustParseTimeouts_DeprecatedOverride). kedacore/charts
http-add-on/templates/interceptor/deployment.yaml (pre-0.14): KEDA_CONDITION_WAIT_TIMEOUT from
interceptor.replicas.waitTimeout, KEDA_RESPONSE_HEADER_TIMEOUT from interceptor.responseHeaderTimeout.
"""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.install import defaults, manifests, plan


def _interceptor(env: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "keda-add-ons-http-interceptor", "namespace": "keda"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "i", "image": "x", "env": [{"name": k, "value": v} for k, v in env.items()]}
                    ]
                }
            }
        },
    }


def _env(obj: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_before_0_14_manifests_get_the_variables_that_version_reads() -> None:
    deploy = _interceptor({"KEDA_CONDITION_WAIT_TIMEOUT": "20s", "KEDA_RESPONSE_HEADER_TIMEOUT": "500ms"})
    out, left = manifests.overlay(
        [deploy], defaults.gpu_settings("keda-http", cold_start_s=600, version="0.13.0")
    )
    assert _env(out[0]) == {"KEDA_CONDITION_WAIT_TIMEOUT": "660s", "KEDA_RESPONSE_HEADER_TIMEOUT": "600s"}
    assert left == []


def test_before_0_14_helm_values_are_the_old_chart_keys() -> None:
    p = plan.build(["keda-http"], helm_available=True, versions={"keda-http": "0.13.0"}, cold_start_s=900)
    (cp,) = p.components
    assert cp.helm_values == {
        "interceptor": {"replicas": {"waitTimeout": "960s"}, "responseHeaderTimeout": "900s"}
    }
    assert "KEDA_CONDITION_WAIT_TIMEOUT" in "\n".join(p.lines())


def test_from_0_14_a_deprecated_variable_left_in_the_manifest_is_removed_so_ours_applies() -> None:
    deploy = _interceptor(
        {
            "KEDA_CONDITION_WAIT_TIMEOUT": "20s",
            "KEDA_RESPONSE_HEADER_TIMEOUT": "500ms",
            "KEDA_HTTP_CONNECT_TIMEOUT": "500ms",
        }
    )
    out, _ = manifests.overlay(
        [deploy], defaults.gpu_settings("keda-http", cold_start_s=600, version="0.15.0")
    )
    assert _env(out[0]) == {
        "KEDA_HTTP_CONNECT_TIMEOUT": "500ms",
        "KEDA_HTTP_READINESS_TIMEOUT": "660s",
        "KEDA_HTTP_RESPONSE_HEADER_TIMEOUT": "600s",
    }


def test_cli_target_versions_conflicting_with_version_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "install",
            "keda-http",
            "--version",
            "0.15.0",
            "--target-versions",
            "keda-http=0.13.0",
            "--dry-run=client",
        ],
    )
    assert result.exit_code == 1  # an InputError, like an ambiguous --version
    assert "conflicting versions for keda-http" in str(result.exception)

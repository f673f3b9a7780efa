"""Manifests and objects from files (issue 15): typed readers refuse wrong shapes with an error naming the
file, the object and the field; a YAML alias bomb is refused within 5 s and 256 MiB.

kubectl refuses the same bomb: sigs.k8s.io/yaml/goyaml.v3 decode.go (`allowedAliasRatio`, "document contains
excessive aliasing"); the API server validates field types (the OpenAPI schema) before any controller reads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_gpuscale import manifests
from kubectl_gpuscale.errors import InputError
from tests import hostile
from tests.support.measure import BUDGET_BYTES, BUDGET_SECONDS, Measured, run_measured

CORPUS = hostile.HERE


def _clean_refusal(result: Measured, *phrases: str) -> str:
    assert result.code == 2, (result.code, result.stderr)
    assert result.seconds <= BUDGET_SECONDS and result.peak_bytes <= BUDGET_BYTES
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in result.stderr, (
        result.stderr
    )
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("file", "field"),
    [
        (
            "doctor-containers-string.yaml",
            "Deployment/d: spec.template.spec.containers must be a list, found a string",
        ),
        ("doctor-containers-null.yaml", "spec.template.spec.containers[0] must be a mapping, found a null"),
        (
            "doctor-initial-delay-string.yaml",
            "readinessProbe.initialDelaySeconds must be an integer, found a string",
        ),
        ("doctor-scale-target-list.yaml", "HorizontalPodAutoscaler/h: spec.scaleTargetRef must be a mapping"),
    ],
)
def test_doctor_file_of_the_wrong_shape(file: str, field: str) -> None:
    """`doctor -f` on these ended in AttributeError / ValueError ("internal error")."""
    _clean_refusal(run_measured(["doctor", "-f", str(CORPUS / file)]), str(CORPUS / file), field)


def test_migrate_metadata_string() -> None:
    _clean_refusal(
        run_measured(["migrate-hpa", "-f", str(CORPUS / "migrate-metadata-string.yaml"), "--dry-run=client"]),
        "metadata must be a mapping, found a string",
    )


@pytest.mark.parametrize("command", [["migrate-hpa", "--dry-run=client"], ["doctor"]])
def test_alias_bomb_is_refused_fast(tmp_path: Path, command: list[str]) -> None:
    """840 bytes, 9**10 strings expanded (was: ~19 s and 1.4 GB, one level more: out of memory)."""
    bomb = tmp_path / "hpa.yaml"
    bomb.write_text(hostile.alias_bomb())
    assert bomb.stat().st_size < 1000
    _clean_refusal(run_measured([*command, "-f", str(bomb)]), "YAML aliases expand to more than 10,000 nodes")


def test_modest_aliases_still_load() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: &l {app: vllm}, annotations: *l}\n"
        "data: {a: x}\n"
    )
    [loaded] = manifests.parse_text(text, "cm.yaml")
    assert loaded.obj["metadata"]["annotations"] == {"app": "vllm"}


def test_alias_budget_counts_expanded_nodes() -> None:
    with pytest.raises(InputError, match="more than 10,000 nodes"):
        manifests.parse_text(hostile.alias_bomb(levels=5, fan=9), "x.yaml")  # 9**5 = 59,049 leaves


def test_kind_must_be_a_string() -> None:
    with pytest.raises(InputError, match="apiVersion and kind must be strings"):
        manifests.parse_text("apiVersion: v1\nkind: [Pod]\nmetadata: {name: x}\n", "k.yaml")


def test_deeply_nested_yaml_is_a_clean_error() -> None:
    depth = 50_000
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nx: &a " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(InputError):
        manifests.parse_text(text, "deep.yaml")


def test_quantities_may_be_bare_numbers() -> None:
    """resource.Quantity's UnmarshalJSON takes a bare number (k8s.io/apimachinery pkg/api/resource/quantity.go)."""
    text = (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, namespace: ml}\n"
        "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  maxReplicas: 3\n"
        "  metrics:\n  - type: Pods\n    pods:\n      metric: {name: vllm:num_requests_waiting}\n"
        "      target: {type: AverageValue, averageValue: 0.5}\n"
    )
    [loaded] = manifests.parse_text(text, "hpa.yaml")
    assert loaded.obj["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == 0.5


def test_the_error_names_file_object_and_field() -> None:
    text = (
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: vllm, namespace: ml}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: a\n        ports: [{containerPort: http}]\n"
    )
    with pytest.raises(InputError) as error:
        manifests.parse_text(text, "sts.yaml")
    assert error.value.line() == (
        "cannot read sts.yaml: StatefulSet/vllm: spec.template.spec.containers[0].ports[0]"
        ".containerPort must be an integer, found a string; fix that field "
        "(`kubectl explain` shows its type)"
    )


@pytest.mark.parametrize(
    "text", ["- a\n", "contexts: [1]\n", "contexts: {default: [1]}\n", "contexts: {x: {k: [1]}}\n"]
)
def test_local_settings_file_of_the_wrong_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """~/.config/kubectl-gpuscale/config.yaml (was: AttributeError when not a mapping of mappings)."""
    from kubectl_gpuscale import config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "kubectl-gpuscale").mkdir()
    (tmp_path / "kubectl-gpuscale" / "config.yaml").write_text(text)
    with pytest.raises(InputError, match=r"config.yaml: .* must be"):
        config.load_local("x")

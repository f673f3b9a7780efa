"""Validate emitted objects against the real CRD schemas in shared/schemas and, for core kinds,
the Kubernetes OpenAPI schema (kubernetes-validate)."""

from __future__ import annotations

import functools
from typing import Any

import yaml
from jsonschema import Draft7Validator

from tests.support.paths import SCHEMAS


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in SCHEMAS.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found


def _prepare(schema: Any) -> Any:
    """Map the Kubernetes OpenAPI extensions onto plain JSON Schema (int-or-string, preserve-unknown)."""
    if isinstance(schema, dict):
        out = {k: _prepare(v) for k, v in schema.items()}
        if out.pop("x-kubernetes-int-or-string", False):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if isinstance(schema, list):
        return [_prepare(v) for v in schema]
    return schema


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Schema violations of a custom resource; raises KeyError when its CRD is not in shared/schemas."""
    schema = _prepare(_crd_schemas()[(obj["apiVersion"], obj["kind"])])
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(obj)
    ]


def core_errors(obj: dict[str, Any], k8s_version: str = "1.33.0") -> list[str]:
    """Violations of the Kubernetes OpenAPI schema for built-in kinds (kubernetes-validate)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc.message)]
    return []


def assert_valid(obj: dict[str, Any]) -> None:
    """Fail the test when `obj` violates its schema (CRD schema for custom kinds, OpenAPI for core)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    errors = crd_errors(obj) if key in _crd_schemas() else core_errors(obj)
    assert not errors, f"{key[1]} {obj.get('metadata', {}).get('name')} is invalid: {errors}"

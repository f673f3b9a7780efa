"""Discovery for the test API server: ``/version``, ``/api``, ``/apis``, ``/apis/<group>``, the
APIResourceList of a group/version, and a minimal ``/openapi/v3`` so ``kubectl apply`` validates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.api_base import ApiError, not_served
from tests.support.api_store import Store
from tests.support.kube_types import ResourceType

if TYPE_CHECKING:
    from tests.support.apiserver import ApiServer


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


class Discovery:
    """The documents clients read to learn what the server serves (groups as the store has them)."""

    def __init__(self, store: Store, api: ApiServer) -> None:
        self.store = store
        self.api = api

    def version(self) -> dict[str, Any]:
        """The ``/version`` document (``ApiServer.version`` as ``gitVersion``)."""
        major, minor = self.api.version.split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{self.api.version}",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def core(self) -> dict[str, Any]:
        """``/api``: the core group's versions."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.api.port}"}
            ],
        }

    def groups(self) -> dict[str, Any]:
        """``/apis``: every served group with its versions."""
        with self.store.lock:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g, vs) for g, vs in self.store.group_versions().items()],
            }

    def group(self, name: str) -> dict[str, Any]:
        """``/apis/<group>``, or 404 for a group not served."""
        with self.store.lock:
            versions = self.store.group_versions().get(name)
        if not versions:
            raise not_served()
        return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(name, versions)}

    @staticmethod
    def resources(api_version: str, types: list[ResourceType]) -> dict[str, Any]:
        """The APIResourceList of one group/version."""
        version = api_version.split("/")[-1]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": [e for rt in types for e in rt.discovery(version)],
        }

    def openapi(self, path: str) -> dict[str, Any]:
        """A minimal OpenAPI v3: the index, and per group/version a permissive schema per kind and a PATCH
        path declaring ``fieldValidation`` (so kubectl validates server-side instead of downloading v2)."""
        with self.store.lock:
            gvs = ["v1"] + [f"{g}/{v}" for g, vs in self.store.group_versions().items() for v in vs]
            if path.rstrip("/") in ("/openapi/v3",):
                return {
                    "paths": {
                        ("api/v1" if gv == "v1" else f"apis/{gv}"): {
                            "serverRelativeURL": f"/openapi/v3/{'api/v1' if gv == 'v1' else 'apis/' + gv}?hash={self.store.rv}"
                        }
                        for gv in gvs
                    }
                }
            suffix = path[len("/openapi/v3/") :].strip("/") if path.startswith("/openapi/v3/") else ""
            gv = "v1" if suffix == "api/v1" else suffix[len("apis/") :] if suffix.startswith("apis/") else ""
            types = self.store.served_types(gv) if gv else []
            if not types:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            schemas: dict[str, Any] = {}
            paths: dict[str, Any] = {}
            version = gv.split("/")[-1]
            field_validation = {
                "name": "fieldValidation",
                "in": "query",
                "schema": {"type": "string"},
                "uniqueItems": True,
            }
            for rt in types:
                gvk = {"group": rt.group, "version": version, "kind": rt.kind}
                scope = "/namespaces/{namespace}" if rt.namespaced else ""
                paths[f"/{suffix}{scope}/{rt.plural}/{{name}}"] = {
                    "patch": {
                        "operationId": f"patch{rt.kind}",
                        "x-kubernetes-group-version-kind": gvk,
                        "x-kubernetes-action": "patch",
                        "parameters": [field_validation],
                        "responses": {"200": {"description": "OK"}},
                    }
                }
                schemas[f"io.gpuscale.test.{rt.group or 'core'}.{version}.{rt.kind}"] = {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "x-kubernetes-group-version-kind": [
                        {"group": rt.group, "kind": rt.kind, "version": version}
                    ],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            return {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": f"v{self.api.version}"},
                "paths": paths,
                "components": {"schemas": schemas},
            }

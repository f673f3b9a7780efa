"""Prometheus: the gateway (`Prometheus`, the only importer of prometheus_api_client) and pure helpers.

Importing this package costs nothing: ``promql`` and ``settings`` are pure, and the gateway's
names (`Prometheus`, `Sample`, `Series`) load ``prometheus_api_client`` only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubectl_gpuscale.prom.gateway import Prometheus, Sample, Series

__all__ = ["Prometheus", "Sample", "Series"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kubectl_gpuscale.prom import gateway

        return getattr(gateway, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

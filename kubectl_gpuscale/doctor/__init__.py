"""doctor: a GPU-aware lint of autoscaling, cold-start and serving configuration.

`run(objects, prometheus=None, cold_start=None)` applies every rule to plain Kubernetes objects
(pure, no server); `service` gathers the objects from a cluster or from files and applies patches.
"""

from __future__ import annotations

from kubectl_gpuscale.doctor.model import Finding, Patch, Rule
from kubectl_gpuscale.doctor.rules import BY_ID, RULES, run

__all__ = ["BY_ID", "RULES", "Finding", "Patch", "Rule", "run"]

"""The migrate service: CPU/memory HPAs on GPU inference -> queue-depth KEDA ScaledObjects (or Knative).

`plan` reads the input (files or the cluster), validates it, finds Prometheus and the target
versions, measures cold starts and converts; `apply` runs the preflight, backs up the adopted
HPAs and writes; `rollback` undoes a migration. The `migrate-hpa` command (and `tune`) parse
flags into a `MigrateRequest`, call these and render. Conversion and the cluster writes
themselves live in `kubectl_gpuscale.autoscale` (convert, apply).
"""

from __future__ import annotations

from kubectl_gpuscale.migrate.service import (
    MigrateRequest,
    Plan,
    apply,
    check_request,
    plan,
    plan_rollback,
    read_backup,
    rollback,
)

__all__ = [
    "MigrateRequest",
    "Plan",
    "apply",
    "check_request",
    "plan",
    "plan_rollback",
    "read_backup",
    "rollback",
]

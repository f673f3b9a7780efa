"""Pod update validation the test API server enforces, ported from the real one.

kubernetes/kubernetes ``pkg/apis/core/validation/validation.go`` ``ValidatePodUpdate``:
``spec.activeDeadlineSeconds`` may be lowered but never raised, nor removed once set.
(Only this rule is ported: the helper pods of ``checkpoint fetch`` rely on it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pod_update_errors(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for each rule the update from `old` to `new` breaks, as the API server words it."""
    before = (old.get("spec") or {}).get("activeDeadlineSeconds")
    after = (new.get("spec") or {}).get("activeDeadlineSeconds")
    field = "spec.activeDeadlineSeconds"
    if after is not None:
        if not isinstance(after, int) or after < 0:
            return [(field, f"Invalid value: {after}: must be greater than or equal to 0")]
        if before is not None and before < after:
            return [(field, f"Invalid value: {after}: must be less than or equal to previous value")]
    elif before is not None:
        return [(field, "Invalid value: null: must not update from a positive integer to nil value")]
    return []

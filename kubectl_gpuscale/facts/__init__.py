"""Versioned facts about the systems gpuscale configures: one place for "present since X, gone in Y".

Pure: imports no kubernetes, click or prometheus client. Component modules (``keda``, and
others added beside it) each own their facts; this package only re-exports the version model.
"""

from kubectl_gpuscale.facts.versions import (
    COMPONENTS,
    Targets,
    Version,
    find_version,
    parse_targets,
    parse_version,
    pinned_targets,
)

__all__ = [
    "COMPONENTS",
    "Targets",
    "Version",
    "find_version",
    "parse_targets",
    "parse_version",
    "pinned_targets",
]

"""The queries migrate-hpa emits: built on prom/promql.py (colon-robust name matchers, escaping),
plus the pod-name regex that scopes a query to one workload's pods."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kubectl_gpuscale.prom import promql as base

quote = base.quote


def selector(names: Sequence[str], labels: Iterable[tuple[str, str, str]] = ()) -> str:
    """A selector matching every spelling of `names` (colon/underscore, renames); labels are (name, op, value)."""
    constraints: dict[str, base.LabelValue] = {label: (op, value) for label, op, value in labels}
    unique = list(dict.fromkeys(names))
    if len(unique) == 1:
        return base.name_matcher(unique[0], constraints)
    return base.names_matcher(unique, constraints)


def pod_regex(kind: str, name: str) -> str:
    """A regex matching the pod names a workload creates (RE2, anchored by Prometheus).

    Deployment pods are ``<name>-<template-hash>-<5 chars>``, StatefulSet pods ``<name>-<ordinal>``,
    LeaderWorkerSet pods ``<name>-<group>[-<worker>]``; so ``vllm`` does not also match ``vllm-large``'s pods.
    """
    stem = base.regex_escape(name)
    if kind == "Deployment":
        return f"{stem}-[a-z0-9]+-[a-z0-9]+"
    if kind == "StatefulSet":
        return f"{stem}-[0-9]+"
    if kind == "LeaderWorkerSet":
        return f"{stem}-[0-9]+(-[0-9]+)?"
    return f"{stem}-.+"

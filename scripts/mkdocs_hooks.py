"""mkdocs hook: keep mkdocs.yml's nav in step with the pages that exist, and say what changed.

Pages (docs/<command>.md and others) are written alongside the code, by several people. The
strict build must pass for the pages that exist: a nav entry whose page is not written yet is
left out, and a page nobody added to nav yet goes under "More". Both are logged at INFO. Links
and anchors inside pages stay strict.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.gpuscale")


def _prune(items: list[Any], docs_dir: Path, missing: list[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                children = _prune(value, docs_dir, missing)
                if children:
                    kept.append({title: children})
                continue
            target = value
        else:
            title, target = None, item
        if isinstance(target, str) and "://" not in target and not (docs_dir / target).is_file():
            missing.append(target)
            continue
        kept.append(item)
    return kept


def _listed(items: list[Any]) -> set[str]:
    found: set[str] = set()
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            found |= _listed(value)
        elif isinstance(value, str):
            found.add(value)
    return found


def on_config(config: Any, **kwargs: Any) -> Any:
    """Prune nav entries for pages not written yet; list unlisted pages under "More" (logged at INFO)."""
    if not config.get("nav"):
        return config
    docs_dir = Path(config["docs_dir"])
    missing: list[str] = []
    nav = _prune(config["nav"], docs_dir, missing)
    listed = _listed(nav)
    extra = sorted(p.relative_to(docs_dir).as_posix() for p in docs_dir.rglob("*.md"))
    extra = [page for page in extra if page not in listed]
    if extra:
        nav.append({"More": extra})
    config["nav"] = nav
    if missing:
        log.info("nav pages not written yet (left out): %s", ", ".join(missing))
    if extra:
        log.info("pages not in mkdocs.yml nav yet (listed under More): %s", ", ".join(extra))
    return config

"""Write docs/compatibility.md from the versioned facts modules (``--check``: fail when it is out of date)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compatibility.md"


def generate() -> str:
    """The page's text."""
    sys.path.insert(0, str(ROOT))
    from kubectl_gpuscale.facts.matrix import render, sections

    return render(sections())


def main(argv: list[str]) -> int:
    """Write the page, or with --check say whether it is current (exit 1 when not)."""
    text = generate()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(
                f"{DOC.relative_to(ROOT)} is out of date: run python scripts/gen_compatibility.py",
                file=sys.stderr,
            )
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

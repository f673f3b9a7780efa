"""docs/compatibility.md is generated from the facts modules and kept current (scripts/gen_compatibility.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kubectl_gpuscale.facts import matrix
from kubectl_gpuscale.facts.keda import fallback_plan
from kubectl_gpuscale.facts.versions import Targets, parse_version

ROOT = Path(__file__).resolve().parents[1]


def test_the_page_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_compatibility.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_keda_and_http_version_of_the_issue_has_a_row() -> None:
    parts = {s.title: s for s in matrix.sections()}
    keda = [row[0] for row in parts["KEDA"].rows]
    assert [f"2.{m}.0" for m in range(11, 21)] == [v for v in keda if v.endswith(".0")]
    assert [row[0] for row in parts["KEDA HTTP add-on"].rows] == ["0.12.0", "0.13.0", "0.14.0", "0.15.0"]


def test_rows_are_the_facts_the_builders_use() -> None:
    """A row says what fallback_plan decides for that version (the builders call the same function)."""
    for row in next(s for s in matrix.sections() if s.title == "KEDA").rows:
        plan = fallback_plan(Targets(versions={"keda": parse_version(row[0])}), 0)
        assert row[3].startswith("yes") == plan.emit


def test_a_facts_module_with_compatibility_section_is_picked_up(tmp_path: Path) -> None:
    """The hook the Knative rows use: any kubectl_gpuscale.facts module defining compatibility_section()."""
    import kubectl_gpuscale.facts as package

    module = tmp_path / "zz_probe.py"
    module.write_text(
        "from kubectl_gpuscale.facts.matrix import Section\n"
        "def compatibility_section():\n"
        "    return Section(10**6, 'Probe', 'x', ['v'], [['1']])\n"
    )
    package.__path__.append(str(tmp_path))
    try:
        assert [s.title for s in matrix.sections()][-1] == "Probe"
    finally:
        package.__path__.remove(str(tmp_path))
        sys.modules.pop("kubectl_gpuscale.facts.zz_probe", None)

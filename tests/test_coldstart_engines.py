"""The per-engine cold-start modules (coldstart/engines/) and the mark vocabulary (coldstart/marks.M)
hold together: every mark a phase rule can ask for is one some engine's pattern produces, and each
engine module's patterns say they are that engine's."""

from __future__ import annotations

import re

from kubectl_gpuscale.coldstart import engines
from kubectl_gpuscale.coldstart.engines import sglang, tgi, vllm
from kubectl_gpuscale.coldstart.logs import scan
from kubectl_gpuscale.coldstart.marks import M

NOT_FROM_PATTERNS = {M.BAR, M.FAILURE}  # made by logs.scan from progress bars and failure lines


def test_every_mark_name_is_produced_by_a_pattern() -> None:
    produced = {mark for _, _, mark, _ in engines.PATTERNS}
    assert set(M) - NOT_FROM_PATTERNS == produced


def test_each_engine_module_owns_its_patterns() -> None:
    for module, hint in ((vllm, "vllm"), (sglang, "sglang"), (tgi, "tgi")):
        assert module.PATTERNS
        for word, regex, _, engine in module.PATTERNS:
            assert engine == hint
            assert isinstance(regex, re.Pattern)
            assert regex.pattern.replace("\\", "").startswith(word)  # logs.py dispatches on the first word


def test_marks_are_keyed_by_the_enum_and_equal_to_their_historical_names() -> None:
    s = scan(
        [
            "INFO 11-27 10:00:00 [api_server.py:1] vLLM API server version 0.11.0",
            "INFO 11-27 10:00:05 [loader.py:1] Loading weights took 12.50 seconds",
        ]
    )
    assert s.get(M.VERSION)[0].values["groups"] == ("0.11.0",)
    assert s.get(M.LOAD_LOGGED)[0].name == "load_logged"
    assert s.marks.get("load_logged") == s.get(M.LOAD_LOGGED)  # type: ignore[call-overload]
    assert s.engine == "vllm" and s.version == "0.11.0"

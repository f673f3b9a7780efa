"""One module per inference engine: its startup log patterns and its phase rules together.

`PATTERNS` is every engine's patterns (vLLM, SGLang, TGI, then the engine-agnostic ones) in the
order `coldstart/logs.py` tries them; `coldstart/timeline.py` orders the engines' phase rules.
"""

from __future__ import annotations

import re

from kubectl_gpuscale.coldstart.engines import sglang, tgi, vllm
from kubectl_gpuscale.coldstart.engines.base import Pattern
from kubectl_gpuscale.coldstart.marks import M

ANY_ENGINE: list[Pattern] = [
    ("Uvicorn", re.compile(r"Uvicorn running on (\S+)"), M.LISTENING, None),
    ("Application", re.compile(r"Application startup complete"), M.APP_STARTED, None),
]

PATTERNS: list[Pattern] = vllm.PATTERNS + sglang.PATTERNS + tgi.PATTERNS + ANY_ENGINE

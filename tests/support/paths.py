"""Where the shared project material lives: `../shared` beside the clone (GPUSCALE_SHARED overrides)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("GPUSCALE_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "samples"
MANIFESTS = SAMPLES / "manifests"
LOGS = SAMPLES / "logs"
METRICS = SAMPLES / "metrics"
SCHEMAS = SHARED / "schemas"
REFERENCE = SHARED / "reference"

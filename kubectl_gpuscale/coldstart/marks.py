"""The marks a startup log yields (`Mark`, gathered in a `LogScan`) and their names (`M`).

The names are one vocabulary shared by the log patterns (coldstart/engines/*.py: what a line
means) and the phase rules (coldstart/timeline.py and the engine modules: what the marks add up
to). `M` is a string enum: a misspelt mark is an AttributeError (and a mypy error), never a silent
empty list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class M(str, Enum):
    """A mark name. The values are the historical strings (tests and debug output read them)."""

    def __str__(self) -> str:
        return str(self.value)

    # any engine
    VERSION = "version"
    HEAD = "head"  # the first lines of a start (platform, args)
    WEIGHTS_START = "weights_start"
    LISTENING = "listening"
    APP_STARTED = "app_started"
    READY = "ready"
    DOWNLOAD_SKIPPED = "download_skipped"
    BAR = "bar"  # a tqdm progress bar
    FAILURE = "failure"  # a recognised start failure
    # vLLM
    DOWNLOAD_LOGGED = "download_logged"
    LOAD_LOGGED = "load_logged"
    WEIGHTS_GB = "weights_gb"
    MODEL_LOADING = "model_loading"
    COMPILE_DIR = "compile_dir"
    COMPILE_NOCACHE = "compile_nocache"
    DYNAMO = "dynamo"
    COMPILE_MISS = "compile_miss"
    COMPILE_HIT = "compile_hit"
    AOT_SAVED = "aot_saved"
    COMPILE_TOTAL = "compile_total"
    PROFILING_LOGGED = "profiling_logged"
    GRAPH_MEM = "graph_mem"
    KV_MEM = "kv_mem"
    KV_TOKENS = "kv_tokens"
    GPU_BLOCKS = "gpu_blocks"
    MAX_CONCURRENCY = "max_concurrency"
    GRAPH_BEGIN = "graph_begin"
    GRAPH_END = "graph_end"
    EAGER = "eager"
    INIT_ENGINE = "init_engine"
    API_WARMUP = "api_warmup"
    # SGLang
    DIST = "dist"
    SG_LOAD_END = "sg_load_end"
    SG_KV = "sg_kv"
    SG_POOL_END = "sg_pool_end"
    SG_CAPACITY = "sg_capacity"
    GRAPH_END_PRECISE = "graph_end_precise"
    # TGI
    TGI_DL_START = "tgi_dl_start"
    TGI_DL_FILE = "tgi_dl_file"
    TGI_DL_DONE = "tgi_dl_done"
    TGI_WEIGHTS_START = "weights_start_tgi"
    TGI_SHARDS = "tgi_shards"
    TGI_SHARD_READY = "tgi_shard_ready"
    TGI_WARMUP = "tgi_warmup"
    TGI_TOKENS = "tgi_tokens"


@dataclass(slots=True)
class Mark:
    """One recognised line: what it means, when, on which rank, with its numbers."""

    name: M
    ts: datetime | None
    rank: str
    index: int
    values: dict[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass
class LogScan:
    """Everything the log says about a start: marks by name, clock facts, engine."""

    marks: dict[M, list[Mark]]
    engine: str | None
    version: str | None
    first_ts: datetime | None
    last_ts: datetime | None
    lines: int
    utc: bool  # timestamps came from an outer UTC collector (kubectl --timestamps, CI): absolute
    yearless: bool  # timestamps had no year (vLLM's %m-%d): anchor them with the pod's times

    def get(self, name: M) -> list[Mark]:
        """The marks called `name` (empty when none)."""
        return self.marks.get(name, [])

    def has(self, *names: M) -> bool:
        """True when any of `names` was seen."""
        return any(self.marks.get(n) for n in names)

"""Wrapped and prefixed variants of the real engine logs in ../shared/samples/logs.

A pod log rarely reaches `coldstart -f` as the engine wrote it: `kubectl logs --prefix` and
`--timestamps` put their own text first, a node's CRI log file and syslog/journald add theirs,
log exporters (Docker json-file, Loki, CloudWatch) turn each line into a JSON record, and job
orchestrators print their own `HH:MM:SS [LEVEL] [job]` header before every line they relay.
Each wrapper here is the documented format of that tool; the time it writes on a line is the
line's own engine time (or the last one seen, for lines the engine printed without one, as a
collector stamps them on arrival), so the hand-computed phases in each `.source.txt` hold for
every variant.

The variants are generated, not checked in: the samples are third-party text (reference/engines.md
§5). To look at them: ``.venv/bin/python -m tests.support.wrapped_logs OUT_DIR`` writes every
variant of every sample to OUT_DIR.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from kubectl_gpuscale.coldstart.logs import YEARLESS, split_line
from tests.support.paths import LOGS

POD, CONTAINER, NODE = "llm-7c9f8d6b5-x2x4q", "engine", "gpu-node-3"
YEAR = (
    2024  # the year written where no line of the log names one (a leap year, like the parser's placeholder)
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def rfc3339nano(ts: datetime) -> str:
    """Go's time.RFC3339Nano as kubectl writes it: nanoseconds with trailing zeros trimmed."""
    frac = f"{ts.microsecond:06d}000".rstrip("0")
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _epoch_ms(ts: datetime) -> int:
    return int(ts.replace(tzinfo=timezone.utc).timestamp() * 1000)


Wrapper = Callable[[str, datetime, str], str]

WRAPPERS: dict[str, Wrapper] = {
    # kubectl logs --prefix: "[pod/<pod>/<container>] " (kubectl/pkg/cmd/logs/logs.go addPrefixIfNeeded)
    "kubectl-prefix": lambda line, ts, level: f"[pod/{POD}/{CONTAINER}] {line}",
    # kubectl logs --timestamps: the kubelet's RFC3339Nano stamp first
    "kubectl-timestamps": lambda line, ts, level: f"{rfc3339nano(ts)} {line}",
    "kubectl-prefix-timestamps": lambda line, ts, level: f"[pod/{POD}/{CONTAINER}] {rfc3339nano(ts)} {line}",
    # a CRI log file under /var/log/pods (what node log shippers read): stamp, stream, P|F tag
    "cri-log-file": lambda line, ts, level: f"{rfc3339nano(ts)} stderr F {line}",
    # syslog RFC 3164 / journalctl's default short format: "Mon dd HH:MM:SS host prog[pid]: "
    "syslog-rfc3164": lambda line, ts, level: (
        f"{_MONTHS[ts.month - 1]} {ts.day:>2} {ts:%H:%M:%S} {NODE} vllm[4242]: {line}"
    ),
    # syslog RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"
    "syslog-rfc5424": lambda line, ts, level: (
        f"<14>1 {ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z {NODE} vllm 4242 - - {line}"
    ),
    # journalctl -o short-iso
    "journald-short-iso": lambda line, ts, level: f"{ts:%Y-%m-%dT%H:%M:%S}+0000 {NODE} vllm[4242]: {line}",
    # Docker json-file driver (also what Fluent Bit tails): {"log": "...\n", "stream", "time"}
    "docker-json": lambda line, ts, level: json.dumps(
        {"log": line + "\n", "stream": "stderr", "time": rfc3339nano(ts)}
    ),
    # Loki: logcli query --output=jsonl
    "loki-jsonl": lambda line, ts, level: json.dumps(
        {
            "labels": {"namespace": "llm", "pod": POD, "container": CONTAINER},
            "line": line,
            "timestamp": rfc3339nano(ts),
        }
    ),
    # CloudWatch Logs events (filter-log-events / export): epoch milliseconds and "message"
    "cloudwatch-json": lambda line, ts, level: json.dumps(
        {
            "timestamp": _epoch_ms(ts),
            "message": line,
            "ingestionTime": _epoch_ms(ts) + 812,
            "logStreamName": f"kubernetes.var.log.containers.{POD}_llm_{CONTAINER}",
        }
    ),
    # a job orchestrator relaying the engine's output under its own header (issue 14, item 7)
    "orchestrator-prefix": lambda line, ts, level: (
        f"{ts:%H:%M:%S} [{level or 'INFO'}] [inf-job] [INFERENCE LOG] {line}"
    ),
}


def wrap(lines: list[str], wrapper: str) -> list[str]:
    """`lines` as `wrapper` writes them; every line gets its own engine time or the last one seen.

    vLLM's stamps carry no year: the year is the one another line of the log names (a FlashInfer or
    CI stamp), else YEAR.
    """
    stamps = [split_line(line) for line in lines]
    named = sorted(s.ts.year for s in stamps if s.ts is not None and s.ts.year != YEARLESS)
    year = named[0] if named else YEAR
    times = [
        None if s.ts is None else s.ts.replace(year=year) if s.ts.year == YEARLESS else s.ts for s in stamps
    ]
    first = next((t for t in times if t is not None), datetime(year, 1, 1))
    out, last = [], first
    for line, parsed, ts in zip(lines, stamps, times, strict=True):
        if ts is not None:
            last = ts
        out.append(WRAPPERS[wrapper](line, last, parsed.level))
    return out


def sample_logs() -> list[Path]:
    """The real sample logs, sorted."""
    return sorted(LOGS.glob("*.log"))


def main(argv: list[str]) -> None:
    """Write every variant of every sample to the directory given."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m tests.support.wrapped_logs OUT_DIR")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for path in sample_logs():
        lines = path.read_text(encoding="utf-8").splitlines()
        for name in WRAPPERS:
            (out / f"{path.stem}.{name}.log").write_text(
                "\n".join(wrap(lines, name)) + "\n", encoding="utf-8"
            )


if __name__ == "__main__":
    main(sys.argv[1:])

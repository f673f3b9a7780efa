"""Real metrics exporters for tests: prometheus_client serving engine metrics for fake pods.

`Exporter` is a prometheus_client registry with one custom collector, served by
prometheus_client's own HTTP server on 127.0.0.1 (a free port). Values are settable while it
runs. Because it is the real prometheus_client, a Prometheus that negotiates OpenMetrics gets
colon names such as ``vllm:num_requests_waiting`` written as ``vllm_num_requests_waiting``
(prometheus/client_python#1177): tests meet that real behaviour.

`ReplayServer` serves real /metrics pages from ../shared/samples/metrics verbatim in the text
format 0.0.4 (as vLLM's own server may), so colon names survive there.

The engine helpers (`vllm_v1`, `vllm_v0`, `sglang`, `tgi`, `dcgm`) write the series each engine
exposes, with the names from reference/engines.md; `populate_fleet` sets up the standard fleet
the session Prometheus scrapes, and returns the values it set, for tests to compare against.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

Labels = tuple[tuple[str, str], ...]
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Family:
    kind: str
    help: str
    samples: dict[Labels, Any] = field(default_factory=dict)


class Exporter:
    """A running prometheus_client exporter whose series are set by the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> Exporter:
        """Serve on 127.0.0.1 at a free port (``self.port``, ``self.url``)."""
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = int(self._server.server_port)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The /metrics URL."""
        return f"http://{self.target}/metrics"

    # ---- series -------------------------------------------------------------------------

    def set(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        kind: str = "gauge",
        doc: str = "",
    ) -> None:
        """Set a gauge or counter sample (a counter ``name`` is given without ``_total``)."""
        self._put(name, kind, doc, labels, float(value))

    def set_histogram(
        self,
        name: str,
        observations: Sequence[float],
        labels: Mapping[str, str] | None = None,
        *,
        buckets: Sequence[float] = TTFT_BUCKETS,
        doc: str = "",
    ) -> None:
        """Set a histogram from raw observations (cumulative buckets, +Inf, sum, count)."""
        counts = [
            (f"{b:g}" if b != int(b) else f"{b:.1f}", float(sum(1 for o in observations if o <= b)))
            for b in buckets
        ]
        counts.append(("+Inf", float(len(observations))))
        self._put(name, "histogram", doc, labels, (counts, float(sum(observations))))

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Drop one series (or the whole family when ``labels`` is None)."""
        with self._lock:
            if labels is None:
                self._families.pop(name, None)
            elif name in self._families:
                self._families[name].samples.pop(_key(labels), None)

    def _put(self, name: str, kind: str, doc: str, labels: Mapping[str, str] | None, value: Any) -> None:
        with self._lock:
            family = self._families.setdefault(name, _Family(kind, doc or f"{name} ({kind})"))
            if family.kind != kind:
                raise ValueError(f"{name} is a {family.kind}, not a {kind}")
            family.samples[_key(labels or {})] = value

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client Collector protocol."""
        with self._lock:
            families = {name: _Family(f.kind, f.help, dict(f.samples)) for name, f in self._families.items()}
        for name, family in sorted(families.items()):
            metric = Metric(name, family.help, family.kind)
            for key, value in sorted(family.samples.items()):
                labels = dict(key)
                if family.kind == "counter":
                    metric.add_sample(name + "_total", labels, value)
                elif family.kind == "histogram":
                    buckets, total = value
                    for le, count in buckets:
                        metric.add_sample(name + "_bucket", {**labels, "le": le}, count)
                    metric.add_sample(name + "_count", labels, buckets[-1][1])
                    metric.add_sample(name + "_sum", labels, total)
                else:
                    metric.add_sample(name, labels, value)
            yield metric


def _key(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


# ---- engines ------------------------------------------------------------------------------


def vllm_v1(
    exp: Exporter,
    namespace: str,
    pod: str,
    *,
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    waiting: float = 0,
    running: float = 0,
    kv_cache: float = 0.0,
    generation_tokens: float = 0,
    ttft: Sequence[float] = (),
    engine: str = "0",
) -> None:
    """A vLLM V1 (>= 0.9.2) pod: labels model_name + engine, ``kv_cache_usage_perc``."""
    labels = {"namespace": namespace, "pod": pod, "model_name": model, "engine": engine}
    exp.set("vllm:num_requests_waiting", waiting, labels)
    exp.set("vllm:num_requests_running", running, labels)
    exp.set("vllm:kv_cache_usage_perc", kv_cache, labels)
    exp.set("vllm:generation_tokens", generation_tokens, labels, kind="counter")
    exp.set_histogram("vllm:time_to_first_token_seconds", ttft, labels)


def vllm_v0(
    exp: Exporter,
    namespace: str,
    pod: str,
    *,
    model: str = "facebook/opt-125m",
    waiting: float = 0,
    running: float = 0,
    gpu_cache: float = 0.0,
) -> None:
    """A vLLM V0 pod: label model_name only, ``gpu_cache_usage_perc`` (renamed in 0.9.2)."""
    labels = {"namespace": namespace, "pod": pod, "model_name": model}
    exp.set("vllm:num_requests_waiting", waiting, labels)
    exp.set("vllm:num_requests_running", running, labels)
    exp.set("vllm:num_requests_swapped", 0, labels)
    exp.set("vllm:gpu_cache_usage_perc", gpu_cache, labels)


def sglang(
    exp: Exporter,
    namespace: str,
    pod: str,
    *,
    model: str = "Qwen/Qwen2.5-7B-Instruct",
    queue: float = 0,
    running: float = 0,
    token_usage: float = 0.0,
) -> None:
    """An SGLang pod (``--enable-metrics``)."""
    labels = {
        "namespace": namespace,
        "pod": pod,
        "model_name": model,
        "engine_type": "unified",
        "tp_rank": "0",
        "pp_rank": "0",
    }
    exp.set("sglang:num_queue_reqs", queue, labels)
    exp.set("sglang:num_running_reqs", running, labels)
    exp.set("sglang:token_usage", token_usage, labels)


def tgi(exp: Exporter, namespace: str, pod: str, *, queue: float = 0, batch: float = 0) -> None:
    """A TGI router: underscore names, no model label."""
    labels = {"namespace": namespace, "pod": pod}
    exp.set("tgi_queue_size", queue, labels)
    exp.set("tgi_batch_current_size", batch, labels)


def dcgm(
    exp: Exporter,
    namespace: str,
    pod: str,
    *,
    gpu: int = 0,
    util: float = 0,
    fb_used: float = 0,
    fb_free: float = 81920,
    hostname: str = "gpu-node-1",
    container: str = "server",
) -> None:
    """A DCGM exporter series set for one GPU assigned to ``pod`` (Kubernetes mapping on)."""
    labels = {
        "gpu": str(gpu),
        "UUID": f"GPU-{zlib.crc32(f'{hostname}/{gpu}'.encode()):08x}",
        "device": f"nvidia{gpu}",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": hostname,
        "container": container,
        "namespace": namespace,
        "pod": pod,
    }
    exp.set("DCGM_FI_DEV_GPU_UTIL", util, labels)
    exp.set("DCGM_FI_DEV_FB_USED", fb_used, labels)
    exp.set("DCGM_FI_DEV_FB_FREE", fb_free, labels)


# ---- the standard fleet -------------------------------------------------------------------


@dataclass(frozen=True)
class FleetPod:
    """One fake pod of the standard fleet and the values it serves."""

    namespace: str
    pod: str
    engine: str
    values: Mapping[str, float]


def populate_fleet(engines: Exporter, gpus: Exporter) -> list[FleetPod]:
    """Fill the engines exporter (job ``engines``) and the DCGM exporter (job ``dcgm``)."""
    fleet = [
        FleetPod("ml", "llama-7d9f-a", "vllm-v1", {"waiting": 3, "running": 8, "kv_cache": 0.42}),
        FleetPod("ml", "llama-7d9f-b", "vllm-v1", {"waiting": 5, "running": 16, "kv_cache": 0.91}),
        FleetPod("legacy", "opt-5c4b-a", "vllm-v0", {"waiting": 2, "running": 1, "gpu_cache": 0.25}),
        FleetPod("chat", "qwen-66f8-a", "sglang", {"queue": 7, "running": 4, "token_usage": 0.63}),
        FleetPod("tgi", "falcon-5d7c-a", "tgi", {"queue": 4, "batch": 2}),
        FleetPod("edge", "phi-44b1-a", "dcgm-direct", {"util": 55}),
    ]
    for p in fleet:
        v = dict(p.values)
        if p.engine == "vllm-v1":
            vllm_v1(
                engines,
                p.namespace,
                p.pod,
                waiting=v["waiting"],
                running=v["running"],
                kv_cache=v["kv_cache"],
                generation_tokens=1000,
                ttft=(0.08, 0.2, 0.3, 1.2),
            )
        elif p.engine == "vllm-v0":
            vllm_v0(
                engines,
                p.namespace,
                p.pod,
                waiting=v["waiting"],
                running=v["running"],
                gpu_cache=v["gpu_cache"],
            )
        elif p.engine == "sglang":
            sglang(
                engines,
                p.namespace,
                p.pod,
                queue=v["queue"],
                running=v["running"],
                token_usage=v["token_usage"],
            )
        elif p.engine == "tgi":
            tgi(engines, p.namespace, p.pod, queue=v["queue"], batch=v["batch"])
        elif p.engine == "dcgm-direct":
            # A DCGM scraped with honorLabels: its pod/namespace labels are kept as they are.
            dcgm(engines, p.namespace, p.pod, util=v["util"], hostname="edge-node-1")
    gpu_pods = [
        ("ml", "llama-7d9f-a", 0, 71.0),
        ("ml", "llama-7d9f-b", 1, 93.0),
        ("chat", "qwen-66f8-a", 2, 64.0),
    ]
    for namespace, pod, gpu, util in gpu_pods:
        # Scraped through a ServiceMonitor (honorLabels false): stored as exported_pod/exported_namespace.
        dcgm(gpus, namespace, pod, gpu=gpu, util=util, fb_used=60000)
        fleet.append(FleetPod(namespace, pod, "dcgm", {"util": util, "gpu": gpu}))
    return fleet


# ---- replaying real pages -----------------------------------------------------------------


class ReplayServer:
    """Serve a real /metrics page verbatim as ``text/plain; version=0.0.4`` on 127.0.0.1."""

    def __init__(self, page: Path) -> None:
        self.page = page
        body = page.read_bytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name=f"replay-{page.name}", daemon=True).start()

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

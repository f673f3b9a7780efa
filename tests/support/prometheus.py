"""The real Prometheus server for tests, scraping real exporters every second.

`start_prometheus` runs /usr/bin/prometheus with a temporary config and TSDB on 127.0.0.1 at a
free port and waits (bounded) until every scrape job has delivered samples; on failure the
error carries Prometheus' log tail. The session fixture `prometheus_server` scrapes:

- job ``engines``: a prometheus_client exporter with the standard fleet (vLLM V1 and V0,
  SGLang, TGI, and a DCGM scraped with its pod labels kept), ``namespace``/``pod`` labels;
- job ``dcgm``: a prometheus_client DCGM exporter scraped like a ServiceMonitor does, target
  labels ``namespace``/``pod`` naming the exporter itself, so the GPUs' pod labels are stored
  as ``exported_namespace``/``exported_pod``;
- job ``samples``: the real vLLM /metrics pages of ../shared/samples/metrics served verbatim
  (text format 0.0.4), each target labelled ``namespace="samples"``, ``pod="vllm-sample-N"``.

`prometheus` is a connected `kubectl_gpuscale.prom.Prometheus` gateway on that server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.support.exporter import Exporter, FleetPod, ReplayServer, populate_fleet
from tests.support.paths import METRICS

if TYPE_CHECKING:
    from kubectl_gpuscale.prom import Prometheus

STARTUP_TIMEOUT = 30.0
DCGM_TARGET_LABELS = {
    "namespace": "gpu-operator",
    "pod": "nvidia-dcgm-exporter-6xk2p",
    "container": "nvidia-dcgm-exporter",
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job: its targets and the labels added to each (as service discovery would)."""

    name: str
    targets: Sequence[tuple[str, Mapping[str, str]]]
    honor_labels: bool = False


@dataclass
class PrometheusServer:
    """A running Prometheus: its URL, process, data directory, and what it scrapes."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    jobs: Sequence[ScrapeJob]
    engines: Exporter | None = None
    gpus: Exporter | None = None
    fleet: list[FleetPod] = field(default_factory=list)
    replays: list[ReplayServer] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        """Prometheus' own log (stderr)."""
        return self.workdir / "prometheus.log"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Prometheus' log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET an API path with plain urllib (independent of the gateway under test); the ``data``."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}" + (f"?{query}" if query else ""), timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def stored_names(self) -> set[str]:
        """Every metric name the server holds, asked directly."""
        return set(self.api("/api/v1/label/__name__/values"))

    def wait_for(
        self, promql: str, until: Callable[[list[dict[str, Any]]], bool] = bool, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Poll an instant query until ``until(result)`` holds; AssertionError with the log tail after ``timeout``."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"Prometheus exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                result = self.api("/api/v1/query", {"query": promql})["result"]
                if until(result):
                    return result
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Prometheus: {promql!r} did not reach the expected state within {timeout}s "
                    f"(last result {result!r}); log tail:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate Prometheus (and kill it if it lingers)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def scrape_config(jobs: Sequence[ScrapeJob], interval: str = "1s") -> dict[str, Any]:
    """The prometheus.yml for these jobs."""
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job.name,
                "honor_labels": job.honor_labels,
                "static_configs": [
                    {"targets": [target], "labels": dict(labels)} for target, labels in job.targets
                ],
            }
            for job in jobs
        ],
    }


def start_prometheus(
    binary: str,
    jobs: Sequence[ScrapeJob],
    workdir: Path,
    timeout: float = STARTUP_TIMEOUT,
    retention: str = "1h",
) -> PrometheusServer:
    """Start Prometheus scraping ``jobs`` every second; return once every job has delivered samples.

    ``retention``: the TSDB's retention time (longer for a data directory backfilled with old blocks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(jobs)))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.retention.time={retention}",
            "--log.level=info",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
    )
    log.close()
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, workdir, jobs)
    expected = {job.name: len(job.targets) for job in jobs}
    try:
        # `up` is written in the same commit as the samples of a successful scrape.
        server.wait_for(
            "count by (job) (up == 1)",
            lambda result: {r["metric"]["job"]: int(r["value"][1]) for r in result} == expected,
            timeout=timeout,
        )
    except BaseException:
        server.stop()
        raise
    return server


def _standard_server(binary: str, workdir: Path) -> PrometheusServer:
    engines, gpus = Exporter().start(), Exporter().start()
    fleet = populate_fleet(engines, gpus)
    pages = sorted(p for p in METRICS.glob("*.txt") if not p.name.endswith(".source.txt"))
    replays = [ReplayServer(p) for p in pages]
    jobs = [
        ScrapeJob("engines", [(engines.target, {})]),
        ScrapeJob("dcgm", [(gpus.target, DCGM_TARGET_LABELS)]),
    ]
    if replays:
        jobs.append(
            ScrapeJob(
                "samples",
                [
                    (r.target, {"namespace": "samples", "pod": f"vllm-sample-{i}"})
                    for i, r in enumerate(replays, start=1)
                ],
            )
        )
    try:
        server = start_prometheus(binary, jobs, workdir)
    except BaseException:
        engines.stop()
        gpus.stop()
        for replay in replays:
            replay.stop()
        raise
    server.engines, server.gpus, server.fleet, server.replays = engines, gpus, fleet, replays
    return server


@pytest.fixture(scope="session")
def prometheus_server(prometheus_bin: str) -> Iterator[PrometheusServer]:
    """The real Prometheus scraping the standard fleet (see the module docstring); shared by the session."""
    with tempfile.TemporaryDirectory(prefix="gpuscale-prom-") as tmp:
        server = _standard_server(prometheus_bin, Path(tmp))
        try:
            yield server
        finally:
            server.stop()
            for exporter in (server.engines, server.gpus):
                if exporter is not None:
                    exporter.stop()
            for replay in server.replays:
                replay.stop()
            if os.environ.get("GPUSCALE_KEEP_PROM_LOG"):
                print(server.log_tail(200))


@pytest.fixture
def prometheus(prometheus_server: PrometheusServer) -> Iterator[Prometheus]:
    """A `kubectl_gpuscale.prom.Prometheus` gateway connected to the session's Prometheus."""
    from kubectl_gpuscale.prom import Prometheus

    gateway = Prometheus.connect(prometheus_server.url, timeout=5)
    try:
        yield gateway
    finally:
        gateway.close()

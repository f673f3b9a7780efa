"""The demo source: a small simulated cluster, run by the `sim` model in real time or faster.

No cluster, no Prometheus, no network. Three namespaces:

- ``chat``: Llama 3.1 8B under a load step (10x at 00:10). The same traffic drives a
  CPU HPA that never fires (the GPU pods sit at a few % CPU), a KEDA ScaledObject on
  queue depth that reacts, and an always-on pool of three;
- ``batch``: Llama 3.3 70B (2 GPUs per pod, ~85 s cold start) behind Knative, with
  a traffic spike every three hours;
- ``dev``: a dev endpoint with ~100 requests a day, KEDA + HTTP add-on at zero.

The simulated clock starts on Monday 00:09 and advances by `speed` simulated
seconds per real second. Doctor findings come from the real rules, run on the
manifests of the demo workloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kubectl_gpuscale.sim import engine as sim_engine
from kubectl_gpuscale.sim.core import WorkloadState
from kubectl_gpuscale.sim.policies import build_controller, parse_policies
from kubectl_gpuscale.sim.simulation import Simulation
from kubectl_gpuscale.sim.traffic import pattern
from kubectl_gpuscale.tui.model import (
    ColdStartPhase,
    Finding,
    Pod,
    ScalingEvent,
    Snapshot,
    Trigger,
    Workload,
)

START = 540  # Monday 00:09 in simulated seconds: the chat load step comes a minute in
DURATION = 2 * 24 * 3600
DEMO_IMAGE = {"vLLM": "vllm/vllm-openai:v0.11.0"}


@dataclass(frozen=True)
class DemoWorkload:
    """One demo workload: where it lives and the policy that scales it."""

    namespace: str
    name: str
    policy: str
    scaler: str
    trigger: str
    threshold: float
    low: int
    high: int
    model: str
    engine: str = "vLLM"
    unit: str = ""


@dataclass(frozen=True)
class DemoGroup:
    """Workloads sharing one traffic stream, one model and one cold-start profile."""

    traffic: str
    rps: float
    model_profile: str
    coldstart: str
    workloads: tuple[DemoWorkload, ...]


GROUPS: tuple[DemoGroup, ...] = (
    DemoGroup(
        "step",
        30.0,
        "8b",
        "8b-warm",
        (
            DemoWorkload(
                "chat",
                "llama-8b",
                "keda:min=1:max=8:threshold=5",
                "KEDA",
                "queue",
                5,
                1,
                8,
                "meta-llama/Llama-3.1-8B-Instruct",
            ),
            DemoWorkload(
                "chat",
                "llama-8b-cpu-hpa",
                "cpu-hpa:min=1:max=8:target=70",
                "HPA",
                "cpu",
                70,
                1,
                8,
                "meta-llama/Llama-3.1-8B-Instruct",
                unit="%",
            ),
            DemoWorkload(
                "chat",
                "llama-8b-fixed",
                "always-on:n=3",
                "none",
                "",
                0,
                3,
                3,
                "meta-llama/Llama-3.1-8B-Instruct",
            ),
        ),
    ),
    DemoGroup(
        "spiky",
        8.0,
        "70b",
        "70b-warm",
        (
            DemoWorkload(
                "batch",
                "llama-70b",
                "knative:min=1:max=4:target=10",
                "Knative",
                "concurrency",
                7,
                1,
                4,
                "meta-llama/Llama-3.3-70B-Instruct",
            ),
        ),
    ),
    DemoGroup(
        "dev",
        100.0,
        "8b",
        "8b-uncached",
        (
            DemoWorkload(
                "dev",
                "qwen-dev",
                "keda-zero:max=2",
                "KEDA",
                "concurrency",
                10,
                0,
                2,
                "Qwen/Qwen2.5-7B-Instruct",
            ),
        ),
    ),
)


class DemoSource:
    """The dashboard's view of the simulated cluster.

    It runs the simulator's Python path (`kernel=False`): the dashboard advances a few simulated
    seconds per frame, which that path does in milliseconds, and the compiled kernel's first
    compile on a new machine (~15 s of CPU) would freeze the first start of `top --demo`.
    """

    name = "demo (simulated cluster)"

    def __init__(
        self,
        *,
        seed: int = 7,
        speed: float = 10.0,
        realtime: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.speed = speed
        self.realtime = realtime
        self._clock = clock
        self.namespace: str | None = None
        self._sims: list[tuple[DemoGroup, Simulation]] = []
        for group in GROUPS:
            controllers = [build_controller(parse_policies(w.policy)[0]) for w in group.workloads]
            sim = Simulation(
                pattern(group.traffic, group.rps),
                sim_engine.engine_profile(group.model_profile),
                sim_engine.coldstart_profile(group.coldstart),
                controllers,
                DURATION,
                seed=seed,
                kernel=False,
            )
            self._sims.append((group, sim))
        self.advance_to(START)
        self._started = clock()
        self._origin = START
        self._overrides: dict[tuple[str, str], int] = {}
        self._paused: dict[tuple[str, str], int] = {}
        self.findings = _doctor_findings()

    @property
    def now(self) -> int:
        """Simulated seconds since Monday 00:00."""
        return self._sims[0][1].time

    def advance_by(self, seconds: float) -> None:
        """Run the simulation `seconds` further (simulated)."""
        self.advance_to(self.now + seconds)

    def advance_to(self, seconds: float) -> None:
        """Run the simulation up to `seconds` (simulated, since Monday 00:00); never backwards."""
        for _, sim in self._sims:
            if seconds > sim.time:
                sim.advance(seconds - sim.time)

    def refresh(self) -> Snapshot:
        """Advance the clock (in real time when asked) and describe every workload."""
        if self.realtime:
            self.advance_to(self._origin + (self._clock() - self._started) * self.speed)
        workloads: list[Workload] = []
        events: list[ScalingEvent] = []
        for group, sim in self._sims:
            profile = sim.coldstart
            for spec, state in zip(group.workloads, sim.states(), strict=True):
                if self.namespace and spec.namespace != self.namespace:
                    continue
                workloads.append(self._workload(spec, state, profile, group.model_profile))
                events.extend(_events(spec, state))
        events.sort(key=lambda e: e.time)
        return Snapshot(
            _clock_text(self.now),
            self.name,
            tuple(workloads),
            tuple(events),
            tuple(self.findings),
            namespaces=tuple(sorted({w.namespace for g in GROUPS for w in g.workloads})),
        )

    def scale(self, namespace: str, name: str, replicas: int) -> str:
        """The demo records the request; its autoscalers keep control, as they would in a cluster."""
        self._overrides[(namespace, name)] = replicas
        return f"demo: asked {namespace}/{name} for {replicas} replicas (its autoscaler stays in charge)"

    def pause(self, namespace: str, name: str, replicas: int | None) -> str:
        """Mark the workload paused (demo only: shown in the table)."""
        if replicas is None:
            self._paused.pop((namespace, name), None)
            return f"demo: resumed {namespace}/{name}"
        self._paused[(namespace, name)] = replicas
        return f"demo: paused {namespace}/{name} at {replicas} replicas"

    def set_namespace(self, namespace: str | None) -> None:
        """Show one namespace only (None: all)."""
        self.namespace = namespace

    def checkpoint(self, namespace: str, pod: str) -> str:
        """The demo has no kubelet: say what would happen."""
        return (
            f"demo: would POST /api/v1/nodes/NODE/proxy/checkpoint/{namespace}/{pod}/vllm "
            f"(see kubectl gpuscale checkpoint pod --help)"
        )

    def set_context(self, context: str) -> str:
        """The demo cluster has one context."""
        return "demo: the simulated cluster has no other context"

    def cold_start(self, namespace: str, pod: str) -> tuple[tuple[ColdStartPhase, ...], str]:
        """The simulated cold-start profile of the pod's model (the guide's table)."""
        for group, sim in self._sims:
            if any(w.namespace == namespace and pod.startswith(w.name + "-") for w in group.workloads):
                phases = tuple(ColdStartPhase(n.replace("_", " "), s) for n, s in sim.coldstart.phases)
                return phases, f"profile {sim.coldstart.name} ({sim.coldstart.source})"
        return (), "unknown pod"

    def _workload(
        self,
        spec: DemoWorkload,
        state: WorkloadState,
        profile: sim_engine.ColdStartProfile,
        model_profile: str,
    ) -> Workload:
        phases = tuple(ColdStartPhase(name.replace("_", " "), seconds) for name, seconds in profile.phases)
        pods = tuple(
            Pod(
                name=f"{spec.name}-{p.name.rsplit('-', 1)[-1]}",
                phase="Running" if p.ready or p.phase != "image_pull" else "Pending",
                ready=p.ready,
                node=f"gpu-node-{i % 4 + 1}",
                age_seconds=float(p.age),
                gpu_util=state.gpu_util_pct if p.ready else None,
                starting_phase=None if p.ready else p.phase.replace("_", " "),
                start_progress=None if p.ready else min(0.99, p.age / profile.total),
                phases=phases,
            )
            for i, p in enumerate(state.pods)
        )
        triggers: tuple[Trigger, ...] = ()
        if spec.trigger == "queue":
            triggers = (Trigger("queue", round(state.waiting, 1), spec.threshold),)
        elif spec.trigger == "cpu":
            triggers = (Trigger("cpu", round(state.cpu_util_pct, 1), spec.threshold, "%"),)
        elif spec.trigger == "concurrency":
            per_pod = (state.waiting + state.running) / max(1, state.ready)
            triggers = (Trigger("concurrency", round(per_pod, 1), spec.threshold),)
        key = (spec.namespace, spec.name)
        return Workload(
            namespace=spec.namespace,
            name=spec.name,
            engine=spec.engine,
            model=spec.model,
            scaler=spec.scaler,
            scaler_name=spec.name if spec.scaler != "none" else "",
            ready=state.ready,
            desired=state.desired,
            min_replicas=spec.low,
            max_replicas=spec.high,
            triggers=triggers,
            queue_waiting=round(state.waiting, 1),
            queue_running=round(state.running, 1),
            kv_cache_pct=state.kv_cache_pct,
            gpu_util_pct=state.gpu_util_pct,
            cpu_pct=state.cpu_util_pct,
            ttft_p95_s=state.ttft_p95,
            paused=key in self._paused,
            pods=pods,
        )


def _events(spec: DemoWorkload, state: WorkloadState) -> list[ScalingEvent]:
    """Scale changes named as the cluster names them (KEDA's activation events, the HPA's rescales)."""
    out = []
    for e in state.events:
        if spec.scaler == "KEDA" and e.old == 0:
            reason = "KEDAScaleTargetActivated"
        elif spec.scaler == "KEDA" and e.new == 0:
            reason = "KEDAScaleTargetDeactivated"
        elif spec.scaler == "Knative":
            reason = "KPAScale"
        else:
            reason = "SuccessfulRescale"
        out.append(
            ScalingEvent(
                _clock_text(e.time),
                spec.namespace,
                spec.name,
                reason,
                f"New size: {e.new} (was {e.old}); {e.reason}",
            )
        )
    return out


def _clock_text(seconds: int) -> str:
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    day, rest = divmod(int(seconds), 86400)
    return f"{days[day % 7]} {rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def demo_manifests() -> list[dict[str, object]]:
    """The demo workloads as Kubernetes manifests (Deployments and their scalers), for the doctor."""
    objects: list[dict[str, object]] = []
    for group in GROUPS:
        for w in group.workloads:
            gpus = "2" if group.model_profile == "70b" else "1"
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": w.name, "namespace": w.namespace},
                    "spec": {
                        "selector": {"matchLabels": {"app": w.name}},
                        "template": {
                            "metadata": {"labels": {"app": w.name}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "vllm",
                                        "image": DEMO_IMAGE["vLLM"],
                                        "args": ["--model", w.model, "--max-num-seqs", "256"],
                                        "ports": [{"containerPort": 8000}],
                                        "resources": {"limits": {"nvidia.com/gpu": gpus}},
                                    }
                                ]
                            },
                        },
                    },
                }
            )
            if w.scaler == "HPA":
                objects.append(
                    {
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": w.name, "namespace": w.namespace},
                        "spec": {
                            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name},
                            "minReplicas": w.low,
                            "maxReplicas": w.high,
                            "metrics": [
                                {
                                    "type": "Resource",
                                    "resource": {
                                        "name": "cpu",
                                        "target": {
                                            "type": "Utilization",
                                            "averageUtilization": int(w.threshold),
                                        },
                                    },
                                }
                            ],
                        },
                    }
                )
            elif w.scaler == "KEDA" and not w.policy.startswith("keda-zero"):
                objects.append(
                    {
                        "apiVersion": "keda.sh/v1alpha1",
                        "kind": "ScaledObject",
                        "metadata": {"name": w.name, "namespace": w.namespace},
                        "spec": {
                            "scaleTargetRef": {"name": w.name},
                            "minReplicaCount": w.low,
                            "maxReplicaCount": w.high,
                            "triggers": [
                                {
                                    "type": "prometheus",
                                    "metadata": {
                                        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                                        "query": f'sum(vllm:num_requests_waiting{{namespace="{w.namespace}"}})',
                                        "threshold": str(int(w.threshold)),
                                    },
                                }
                            ],
                        },
                    }
                )
            if w.policy.startswith("keda-zero"):
                objects.append(
                    {
                        "apiVersion": "http.keda.sh/v1alpha1",
                        "kind": "HTTPScaledObject",
                        "metadata": {"name": w.name, "namespace": w.namespace},
                        "spec": {
                            "hosts": [f"{w.name}.{w.namespace}.example.com"],
                            "scaleTargetRef": {
                                "name": w.name,
                                "kind": "Deployment",
                                "apiVersion": "apps/v1",
                                "service": w.name,
                                "port": 8000,
                            },
                            "replicas": {"min": w.low, "max": w.high},
                        },
                    }
                )
            if w.scaler == "none":
                objects[-1]["spec"]["replicas"] = w.low  # type: ignore[index]
    return objects


def _doctor_findings() -> list[Finding]:
    from kubectl_gpuscale import doctor

    return [
        Finding(f.rule, f.severity, f.object, f.title) for f in doctor.run(demo_manifests(), from_files=True)
    ]

"""`kubectl gpuscale tune` offline (--history FILE, -f manifests), against the real Prometheus holding a
backfilled history, and against the test API server through the real kubernetes client (--apply,
--dry-run=server, rollback)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from kubectl_gpuscale.cli import main
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.manifests import load
from kubectl_gpuscale.tune.history import History
from tests.support.backfill import Backfilled, Workload
from tests.support.keda_sim import seed_gemma_hpa
from tests.support.paths import MANIFESTS
from tests.support.schemas import assert_valid
from tests.support.tune_history import MONDAY, pattern_history

NS = "ml"
FILES = [
    "-f",
    str(MANIFESTS / "hpa_k8s-examples_1.yaml"),
    "-f",
    str(MANIFESTS / "deploy_k8s-examples_1.yaml"),
]
FAST = ["--cold-start", "20s", "--headroom", "1.2"]


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Four hours of a dev endpoint (Monday 16:00-20:00 UTC): busy until 18:00, then idle."""
    path = tmp_path_factory.mktemp("tune") / "history.json"
    history = pattern_history("dev", 2000.0, days=4 / 24, start=MONDAY + 16 * 3600)
    path.write_text(json.dumps(history.to_json()), encoding="utf-8")
    return str(path)


def _tune(*args: str) -> Result:
    return CliRunner().invoke(cli, ["tune", *args])


@pytest.fixture(scope="module")
def offline(history_file: str) -> dict[str, Any]:
    result = _tune(*FILES, "--history", history_file, *FAST, "-o", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_offline_json_is_a_tune_result(offline: dict[str, Any], history_file: str) -> None:
    saved = History.load(history_file)
    assert offline["kind"] == "TuneResult"
    assert (
        offline["workload"]["name"] == "vllm-gemma-deployment" and offline["workload"]["kind"] == "Deployment"
    )
    assert offline["history"]["requests"] == saved.requests
    assert offline["coldStart"] == {"seconds": 20.0, "source": "--cold-start"}
    assert offline["calibration"]["source"] == "preset"  # a history with no TTFT histogram constrains nothing
    assert {"observedTtftP95", "predictedTtftP95", "observedReplicaHours", "predictedReplicaHours"} <= set(
        offline["calibration"]["replay"]
    )
    assert (
        offline["calibration"]["replay"]["observedReplicaHours"] is None
    )  # no replica series in this history
    assert offline["baseline"]["policy"] == "keda"  # the sample HPA scales on vllm:num_requests_waiting
    assert offline["candidates"] >= 40 and offline["frontier"]
    rec = offline["recommendation"]
    assert rec["sloAttainment"] >= 0.99 and rec["headroomSloAttainment"] >= 0.99
    assert isinstance(rec["coldStartCliffSeconds"], float) and rec["coldStartCliffSeconds"] >= 20


def test_objects_carry_the_recommendation_and_validate(offline: dict[str, Any]) -> None:
    """Built by migrate-hpa's builders, with the searched parameters written in; valid for the real CRDs."""
    rec = offline["recommendation"]
    objects = rec["objects"]
    assert objects
    for obj in objects:
        assert_valid(obj)
    params = rec["params"]
    if rec["policy"] == "knative":
        (svc,) = objects
        notes = svc["spec"]["template"]["metadata"]["annotations"]
        assert notes["autoscaling.knative.dev/target"] == str(params["target"])
        assert notes["autoscaling.knative.dev/min-scale"] == str(params["minScale"])
        assert notes["autoscaling.knative.dev/scale-down-delay"] == f"{params['scaleDownDelaySeconds']}s"
    else:
        so = next(o for o in objects if o["kind"] == "ScaledObject")
        assert so["spec"]["minReplicaCount"] == params["minReplicas"]
        assert so["spec"]["maxReplicaCount"] == params["maxReplicas"]
        assert so["spec"]["pollingInterval"] == params["pollingSeconds"]
        assert so["spec"]["cooldownPeriod"] == params["cooldownSeconds"]
        down = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] == params["scaleDownStabilizationSeconds"]
        queue = so["spec"]["triggers"][0]["metadata"]
        assert float(queue["threshold"]) == params["threshold"]


def test_table_reason_and_plot(history_file: str, tmp_path: Path) -> None:
    png = tmp_path / "tune.png"
    result = _tune(*FILES, "--history", history_file, *FAST, "--policies", "keda", "--plot", str(png))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in (
        "baseline",
        "frontier",
        "recommended",
        "SLO",
        "$/MONTH",
        "AT ZERO",
        "cold-start cliff",
        "is the cheapest of the configurations simulated",
    ):
        assert word in out, word
    assert "keda-zero" not in out and "knative" not in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_history_from_the_real_prometheus_then_tune_from_it(
    backfilled_prometheus: Callable[..., Backfilled], tmp_path: Path
) -> None:
    """The Prometheus path end to end: six hours of the sample Deployment's metrics, backfilled into the
    real Prometheus from a known model, fetched by `tune`, saved, and tuned again offline to the same answer."""
    bf = backfilled_prometheus(
        Workload(namespace="default", name="vllm-gemma-deployment", days=0.25, rps=10.0, seed=7)
    )
    truth = bf.truth["default"]
    since = f"{math.ceil((time.time() - truth.start) / 3600)}h"  # the backfill ends at today's 00:00 UTC
    saved = tmp_path / "history.json"
    first = _tune(
        *FILES,
        "--prometheus",
        bf.url,
        "--since",
        since,
        "--save-history",
        str(saved),
        *FAST,
        "--policies",
        "keda",
        "-o",
        "json",
    )
    assert first.exit_code == 0, first.output
    history = History.load(saved)
    assert history.requests == round(float(np.sum(truth.arrivals)))
    again = _tune(*FILES, "--history", str(saved), *FAST, "--policies", "keda", "-o", "json")
    assert again.exit_code == 0, again.output
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["history"] == b["history"] and a["recommendation"]["params"] == b["recommendation"]["params"]


@pytest.mark.parametrize(
    "args, words",
    [
        ([], "nothing to tune"),
        (["deploy/x", *FILES], "TARGET and -f are exclusive"),
        ([*FILES, "--history", "/nonexistent/h.json"], "cannot read history"),
        ([*FILES, "--history", "{bad}"], "not a TuneHistory"),
        ([*FILES, "--slo", "150%"], "not a share"),
        ([*FILES, "--slo", "abc"], "not a share"),
        ([*FILES, "--slo-ttft", "-2s"], "--slo-ttft"),
        ([*FILES, "--cold-start", "soon"], "bad --cold-start"),
        ([*FILES, "--policies", "cpu-hpa"], "unknown policy cpu-hpa"),
        ([*FILES, "--headroom", "0.5"], "--headroom"),
        ([*FILES, "--apply"], "--apply needs a TARGET"),
        ([*FILES, "--history", "{h}", "--save-history", "x.json"], "exclusive"),
    ],
)
def test_bad_input_is_one_clear_line(
    history_file: str, tmp_path: Path, args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `main` (the console script's error handling): exit code, one line on stderr, nothing on stdout."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "Something"}', encoding="utf-8")
    args = [a.replace("{bad}", str(bad)).replace("{h}", history_file) for a in args]
    if "--cold-start" not in args:
        args += ["--cold-start", "20s"]
    with pytest.raises(SystemExit) as stop:
        main(["tune", *args])
    captured = capsys.readouterr()
    assert stop.value.code not in (0, None)
    err = captured.err.strip()
    assert words in err, err
    assert (
        "Traceback" not in err and len([x for x in err.splitlines() if x.lower().startswith("error")]) == 1
    ), err
    assert not captured.out.strip()


def test_dry_run_then_apply_adopts_the_hpa_with_a_backup_and_rollback_restores_it(
    history_file: str, apiserver: Any, tmp_path: Path
) -> None:
    before = seed_gemma_hpa(apiserver, NS)
    base = [
        "hpa/gemma-server-hpa",
        "--kubeconfig",
        apiserver.kubeconfig,
        "-n",
        NS,
        "--history",
        history_file,
        *FAST,
        "--policies",
        "keda",
        "-o",
        "json",
    ]
    client = _tune(*base, "--apply", "--dry-run=client")
    assert client.exit_code == 0 and "nothing written" in client.stderr
    assert not apiserver.requests_to("PATCH") and not apiserver.requests_to("POST")
    dry = _tune(*base, "--apply", "--dry-run=server")
    assert dry.exit_code == 0, dry.output
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    assert apiserver.requests_to("PATCH", prefix="/apis/keda.sh")  # sent, with dryRun=All
    assert all(r.param("dryRun") == "All" for r in apiserver.requests_to("PATCH", prefix="/apis/keda.sh"))

    done = _tune(*base, "--apply")
    assert done.exit_code == 0, done.output
    rec = json.loads(done.stdout)["recommendation"]
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    assert so is not None
    assert so["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "gemma-server-hpa"
    assert so["spec"]["minReplicaCount"] == rec["params"]["minReplicas"]
    backup = next(line for line in done.stderr.splitlines() if "backup of HPA" in line)
    path = backup.split(": ", 1)[1].split(" (")[0]
    assert json.loads(Path(path).read_text())["spec"] == before["spec"]

    # tuning again from the ScaledObject now in place: the baseline is it, the plan adopts the same HPA
    again = _tune("scaledobject/gemma-server-hpa", *base[1:])
    assert again.exit_code == 0, again.output
    redo = json.loads(again.stdout)
    assert redo["baseline"]["policy"] == "keda"
    (so_again,) = redo["recommendation"]["objects"]
    assert so_again["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "gemma-server-hpa"

    back = CliRunner().invoke(
        cli, ["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, "--rollback", "gemma-server-hpa"]
    )
    assert back.exit_code == 0, back.output
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    hpa = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert hpa is not None and hpa["spec"] == before["spec"]


def test_deploy_target_searches_what_the_cluster_serves(history_file: str, apiserver: Any) -> None:
    """deploy/NAME finds the HPA scaling it; without --policies only what the server serves is searched
    (KEDA here: no HTTP add-on, no Knative); -o yaml carries the ScaledObject."""
    import yaml

    seed_gemma_hpa(apiserver, NS)
    apiserver.disable_group("http.keda.sh")
    apiserver.disable_group("serving.knative.dev")
    result = _tune(
        "deploy/vllm-gemma-deployment",
        "--kubeconfig",
        apiserver.kubeconfig,
        "-n",
        NS,
        "--history",
        history_file,
        *FAST,
        "-o",
        "yaml",
    )
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert {p["policy"] for p in doc["frontier"]} == {"keda"}
    assert doc["workload"] == {**doc["workload"], "namespace": NS, "name": "vllm-gemma-deployment"}
    (so,) = doc["recommendation"]["objects"]
    assert so["kind"] == "ScaledObject" and so["metadata"]["namespace"] == NS
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "gemma-server-hpa"
    assert not apiserver.requests_to("PATCH") and not apiserver.requests_to("POST")


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["tune", "--help"])
    assert result.exit_code == 0
    assert "kubectl gpuscale tune deploy/vllm -n ml --prometheus" in result.output
    for flag in (
        "--since",
        "--slo-ttft",
        "--slo",
        "--policies",
        "--max-replicas",
        "--price",
        "--headroom",
        "--cold-start",
        "--seed",
        "--plot",
        "--apply",
        "--dry-run",
        "--history",
        "--save-history",
    ):
        assert flag in result.output, flag


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rich bar on stderr while searching when stderr is a terminal; nothing otherwise (pipes, CI logs)."""
    import sys

    from kubectl_gpuscale.cli.tune import _progress_bar

    with _progress_bar() as update:
        assert update is None  # pytest captures stderr: not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with _progress_bar() as update:
        assert update is not None
        update(3, 10)


def test_apply_without_an_hpa_to_adopt_is_refused_before_searching(
    history_file: str, apiserver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    objs = [i.obj for i in load([str(MANIFESTS / "deploy_k8s-examples_1.yaml")])]
    objs[0]["metadata"]["namespace"] = NS
    apiserver.seed(*objs)
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "tune",
                "deploy/vllm-gemma-deployment",
                "--kubeconfig",
                apiserver.kubeconfig,
                "-n",
                NS,
                "--history",
                history_file,
                "--apply",
            ]
        )
    assert stop.value.code == 2  # bad input (InputError)
    assert "no HPA or ScaledObject scales it" in capsys.readouterr().err
    assert not apiserver.requests_to("PATCH") and not apiserver.requests_to("POST")


def test_a_dropped_metric_is_one_line_on_stderr(
    backfilled_prometheus: Callable[..., Backfilled], capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's path for a series a metric_relabel_configs rule dropped: `main` prints the
    MissingSeriesError as one `error:` line (what, why, what to do), exit 1, no traceback, nothing on stdout
    (the text docs/troubleshooting.md quotes)."""
    bf = backfilled_prometheus(
        Workload(
            namespace="default", name="vllm-gemma-deployment", days=0.25, rps=10.0, seed=7, drop=("requests",)
        )
    )
    since = f"{math.ceil((time.time() - bf.truth['default'].start) / 3600)}h"
    with pytest.raises(SystemExit) as ended:
        main(["tune", *FILES, "--prometheus", bf.url, "--since", since, *FAST])
    out, err = capsys.readouterr()
    assert ended.value.code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: no vllm:request_success_total in Prometheus for pods matching ")
    assert "a metric_relabel_configs rule renamed or dropped them" in lines[0]
    assert lines[0].endswith(
        "keep the engine's series in the scrape config (see docs/tune.md), or pass --history FILE"
    )
    print(lines[0])

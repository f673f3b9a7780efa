"""Prometheus credentials never leak (issue 13, item 7).

- ``user:password@`` in a Prometheus URL is redacted in every message, never written into an
  emitted object (the ScaledObject's serverAddress) and never stored in ConfigMap gpuscale-config;
  it still authenticates the user's own requests (HTTP basic).
- When the Prometheus needs auth, migrate-hpa emits a KEDA TriggerAuthentication that references a
  Secret, valid against the real CRD and shaped the way KEDA's prometheus scaler reads it.
- ``$GPUSCALE_PROMETHEUS_TOKEN`` goes only to a URL given in the same invocation, never to one
  read from the cluster (a tiny HTTP server records the headers each URL receives).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale import config
from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import GpuscaleError, InputError
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE
from kubectl_gpuscale.prom import settings
from kubectl_gpuscale.prom.settings import ENV_TOKEN, ENV_URL, resolve_url
from tests.support.kube_fixtures import TestApiServer
from tests.support.paths import MANIFESTS
from tests.support.recording_http import recording_server
from tests.support.schemas import assert_valid

PASSWORD = "hunter2-p%2Fss"  # percent-encoded '/' in the URL: the password is "hunter2-p/ss"
DECODED = "hunter2-p/ss"
TOKEN = "tok-7f3c9e1d"
HPA = str(MANIFESTS / "hpa_k8s-examples_1.yaml")
DEPLOY = str(MANIFESTS / "deploy_k8s-examples_1.yaml")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _leaks(*texts: str) -> list[str]:
    secrets = ("hunter2", TOKEN)
    return [s for s in secrets for t in texts if s in t]


# ---- redaction -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{PASSWORD}@prom:9090/?q=1",
        f"ftp://alice:{PASSWORD}@prom:9090",
        "http://alice:hunter2-raw/slash@prom:9090",
        "http://alice:hunter2@raw@prom:9090#frag",
    ],
)
def test_userinfo_is_redacted_in_url_errors(url: str) -> None:
    with pytest.raises(InputError) as err:
        settings.normalize_url(url)
    assert not _leaks(err.value.line()), err.value.line()
    assert "***@" in err.value.line()


def test_userinfo_is_split_off_and_decoded() -> None:
    clean, auth = settings.split_userinfo(f"https://alice:{PASSWORD}@prom.example:9090/prom/")
    assert clean == "https://prom.example:9090/prom"
    assert auth is not None and (auth.username, auth.password) == ("alice", DECODED)
    assert DECODED not in repr(auth) and "hunter2" not in settings.redact(
        f"see http://alice:{PASSWORD}@prom:9090 now"
    )


def test_gateway_error_shows_the_url_without_userinfo() -> None:
    """A refused connection names the server, not the password (before: "cannot reach Prometheus at
    http://alice:hunter2@...")."""
    from kubectl_gpuscale.prom import Prometheus
    from tests.support.prometheus import free_port

    port = free_port()
    with Prometheus.connect(f"http://alice:{PASSWORD}@127.0.0.1:{port}", timeout=2) as prom:
        assert prom.url == f"http://127.0.0.1:{port}"
        with pytest.raises(GpuscaleError) as err:
            prom.build_info()
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in err.value.line()
    assert not _leaks(err.value.line())


def test_userinfo_still_authenticates_the_users_own_requests(apiserver: TestApiServer) -> None:
    """doctor --prometheus http://alice:PASSWORD@HOST sends HTTP basic auth to HOST, prints no password."""
    with recording_server() as server:
        url = server.url.replace("http://", f"http://alice:{PASSWORD}@")
        result = CliRunner().invoke(
            cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", "ml", "--prometheus", url]
        )
    assert result.exit_code == 0, result.stderr
    assert server.authorizations() and set(server.authorizations()) == {
        "Basic " + base64.b64encode(f"alice:{DECODED}".encode()).decode()
    }
    assert not _leaks(result.stdout, result.stderr)


# ---- migrate-hpa: serverAddress and TriggerAuthentication -----------------------------------------------------


def _migrate_yaml(*extra: str) -> tuple[list[dict[str, Any]], str, str]:
    result = CliRunner().invoke(
        cli, ["migrate-hpa", "-f", HPA, "-f", DEPLOY, "-n", "ml", "-o", "yaml", *extra]
    )
    assert result.exit_code == 0, result.stderr
    return yaml.safe_load(result.stdout)["items"], result.stdout, result.stderr


def _keda_auth_params(trigger_auth: dict[str, Any]) -> set[str]:
    """The authParams KEDA builds from a TriggerAuthentication: kedacore/keda
    pkg/scaling/resolver/scale_resolvers.go resolveAuthRef, ``result[e.Parameter] = resolveAuthSecret(...,
    e.Name, triggerNamespace, e.Key)`` for each secretTargetRef entry."""
    return {ref["parameter"] for ref in trigger_auth["spec"]["secretTargetRef"]}


def _check_keda_parses(trigger: dict[str, Any], trigger_auth: dict[str, Any], mode: str) -> None:
    """What KEDA's prometheus scaler needs, from kedacore/keda:

    - pkg/scalers/prometheus_scaler.go ``prometheusMetadata``: ``PrometheusAuth *authentication.Config``
      and ``AuthModes string `keda:"name=authModes, order=triggerMetadata, optional"```; ``ExecutePromQuery``
      sets ``Authorization`` from ``GetBearerToken()`` (bearer) or ``SetBasicAuth(Username, Password)`` (basic).
    - pkg/scalers/authentication/authentication_types.go ``Config``: ``Modes`` is
      ``name=authModes;authMode, order=triggerMetadata;authParams, enum=apiKey;basic;tls;bearer;custom;oauth,
      exclusiveSet=bearer;basic;oauth``; ``BearerToken`` is ``name=bearerToken;token, order=authParams``;
      ``BasicAuth`` is ``username``/``password`` in ``order=authParams``; ``Validate``: bearer needs a
      token, basic a username.
    """
    assert trigger["authenticationRef"] == {
        "name": trigger_auth["metadata"]["name"],
        "kind": "TriggerAuthentication",
    }
    modes = [m.strip() for m in trigger["metadata"]["authModes"].split(",")]
    assert modes == [mode]
    assert set(modes) <= {"apiKey", "basic", "tls", "bearer", "custom", "oauth"}
    assert len(set(modes) & {"bearer", "basic", "oauth"}) <= 1
    params = _keda_auth_params(trigger_auth)
    assert params == ({"username", "password"} if mode == "basic" else {"bearerToken"})
    # Secrets live in authParams, never in the trigger's metadata.
    assert not {"username", "password", "bearerToken", "token"} & set(trigger["metadata"])
    assert trigger_auth["metadata"]["namespace"] == "ml"


def test_migrate_basic_auth_goes_through_a_trigger_authentication() -> None:
    items, out, err = _migrate_yaml("--prometheus", f"http://alice:{PASSWORD}@prom.monitoring.svc:9090")
    assert not _leaks(out, err) and "alice" not in out
    kinds = [o["kind"] for o in items]
    assert kinds == ["TriggerAuthentication", "ScaledObject"]
    trigger_auth, scaled = items
    for obj in items:
        assert_valid(obj)
    prometheus_triggers = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    assert len(prometheus_triggers) == 2
    for trigger in prometheus_triggers:
        assert trigger["metadata"]["serverAddress"] == "http://prom.monitoring.svc:9090"
        _check_keda_parses(trigger, trigger_auth, "basic")
    assert trigger_auth["spec"]["secretTargetRef"] == [
        {"parameter": "username", "name": "gpuscale-prometheus", "key": "username"},
        {"parameter": "password", "name": "gpuscale-prometheus", "key": "password"},
    ]
    assert (
        'printf %s "$PROMETHEUS_PASSWORD" | kubectl create secret generic gpuscale-prometheus -n ml '
        '--from-literal=username="$PROMETHEUS_USER" --from-file=password=/dev/stdin'
    ) in err


def test_migrate_bearer_token_goes_through_a_trigger_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    items, out, err = _migrate_yaml("--prometheus-secret", "prom-creds")
    assert not _leaks(out, err)
    trigger_auth, scaled = items
    assert_valid(trigger_auth)
    assert_valid(scaled)
    assert trigger_auth["spec"]["secretTargetRef"] == [
        {"parameter": "bearerToken", "name": "prom-creds", "key": "bearerToken"}
    ]
    for trigger in (t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"):
        _check_keda_parses(trigger, trigger_auth, "bearer")
    assert (
        'printf %s "$GPUSCALE_PROMETHEUS_TOKEN" | kubectl create secret generic prom-creds -n ml '
        "--from-file=bearerToken=/dev/stdin"
    ) in err


def test_migrate_without_credentials_emits_no_trigger_authentication() -> None:
    items, _, err = _migrate_yaml("--prometheus", "http://prom.monitoring.svc:9090")
    assert [o["kind"] for o in items] == ["ScaledObject"]
    assert all("authenticationRef" not in t for t in items[0]["spec"]["triggers"])
    assert "TriggerAuthentication" not in err


def test_trigger_authentication_is_applied_with_the_scaled_object(
    apiserver: TestApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server-side applied to the test API server (KEDA's admission rules) before the ScaledObject."""
    import copy

    from kubectl_gpuscale.manifests import load

    apiserver.enable_group("keda.sh")
    objs = [
        copy.deepcopy(i.obj)
        for name in ("deploy_k8s-examples_1", "hpa_k8s-examples_1")
        for i in load([str(MANIFESTS / f"{name}.yaml")])
    ]
    for obj in objs:
        obj["metadata"]["namespace"] = "ml"
    apiserver.seed(*objs)
    result = CliRunner().invoke(
        cli,
        [
            "migrate-hpa",
            "gemma-server-hpa",
            "-n",
            "ml",
            "--apply",
            "--kubeconfig",
            apiserver.kubeconfig,
            "--prometheus",
            f"http://alice:{PASSWORD}@prom.monitoring.svc:9090",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert not _leaks(result.stdout, result.stderr)
    stored = apiserver.get_object("keda.sh/v1alpha1", "TriggerAuthentication", "gpuscale-prometheus", "ml")
    assert stored is not None and not _leaks(json.dumps(stored))
    scaled = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", "ml")
    assert scaled is not None and not _leaks(json.dumps(scaled))
    written = [
        r.path.rsplit("/", 2)[-2] for r in apiserver.requests if r.method == "PATCH" and "keda.sh" in r.path
    ]
    assert written.index("triggerauthentications") < written.index("scaledobjects")


def test_builders_never_take_a_credential() -> None:
    trigger_auth = builders.trigger_authentication(name="a", namespace="ml", mode="bearer", secret="s")
    assert trigger_auth["spec"] == {
        "secretTargetRef": [{"parameter": "bearerToken", "name": "s", "key": "bearerToken"}]
    }
    assert_valid(trigger_auth)


# ---- the install ConfigMap ------------------------------------------------------------------------------------


def test_configmap_never_stores_userinfo(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster

    cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)
    config.write_cluster(
        cluster, {config.KEY_PROMETHEUS: f"http://alice:{PASSWORD}@prom.monitoring.svc:9090"}
    )
    stored = apiserver.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    assert stored is not None
    assert stored["data"][config.KEY_PROMETHEUS] == "http://prom.monitoring.svc:9090"
    assert not _leaks(json.dumps(stored))


def test_install_records_and_prints_no_password(apiserver: TestApiServer, tmp_path: Path) -> None:
    """install --prometheus with userinfo: the plan, the summary and the ConfigMap hold the bare URL."""
    from tests.test_install_cluster import Controllers, gpuscale, write_keda

    apiserver.enable_group("keda.sh")
    with Controllers(apiserver):
        ran = gpuscale(
            apiserver,
            "install",
            "keda",
            "--manifests",
            str(write_keda(tmp_path / "m")),
            "--prometheus",
            f"http://alice:{PASSWORD}@prom.example:9090",
            "--timeout",
            "20s",
        )
    assert not _leaks(ran.stdout, ran.stderr), ran.stderr
    assert "recording Prometheus http://prom.example:9090 without the credentials" in ran.stderr
    stored = apiserver.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    assert stored is not None and stored["data"][config.KEY_PROMETHEUS] == "http://prom.example:9090"


# ---- the token goes only to a URL given in this invocation ----------------------------------------------------


def _plant_configmap(apiserver: TestApiServer, url: str) -> None:
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CONFIG_NAMESPACE}},
        config.config_map({config.KEY_PROMETHEUS: url}),
    )


def test_token_is_not_sent_to_a_url_from_the_configmap(
    apiserver: TestApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who can edit ConfigMap gpuscale-config names their server; doctor connects to it (its
    queries are harmless) but without the user's token, and says why."""
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    with recording_server() as attacker:
        _plant_configmap(apiserver, attacker.url)
        result = CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", "ml"])
    assert result.exit_code == 0, result.stderr
    assert attacker.seen, "doctor did not connect to the recorded Prometheus at all"
    assert attacker.authorizations() == [None] * len(attacker.seen)
    assert (
        f"${ENV_TOKEN} not sent to {attacker.url} (ConfigMap gpuscale-system/gpuscale-config): a token goes "
        f"only to a URL given with --prometheus or ${ENV_URL}"
    ) in result.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_token_is_sent_to_a_url_given_now(
    apiserver: TestApiServer, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    with recording_server() as mine:
        args = ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", "ml"]
        if how == "flag":
            args += ["--prometheus", mine.url]
        else:
            monkeypatch.setenv(ENV_URL, mine.url)
        _plant_configmap(apiserver, "http://127.0.0.1:9/attacker")
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert mine.seen and set(mine.authorizations()) == {f"Bearer {TOKEN}"}
    assert not _leaks(result.stdout, result.stderr)


def test_migrate_preflight_sends_no_token_to_the_configmap_url(
    apiserver: TestApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """migrate-hpa --apply checks the trigger queries on the recorded Prometheus: without the token."""
    import copy

    from kubectl_gpuscale.manifests import load

    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    apiserver.enable_group("keda.sh")
    objs = [
        copy.deepcopy(i.obj)
        for name in ("deploy_k8s-examples_1", "hpa_k8s-examples_1")
        for i in load([str(MANIFESTS / f"{name}.yaml")])
    ]
    for obj in objs:
        obj["metadata"]["namespace"] = "ml"
    apiserver.seed(*objs)
    with recording_server() as attacker:
        _plant_configmap(apiserver, attacker.url)
        result = CliRunner().invoke(
            cli,
            [
                "migrate-hpa",
                "gemma-server-hpa",
                "-n",
                "ml",
                "--apply",
                "--dry-run=server",
                "--kubeconfig",
                apiserver.kubeconfig,
            ],
        )
    assert result.exit_code == 0, result.stderr
    assert attacker.seen and attacker.authorizations() == [None] * len(attacker.seen)
    assert f"preflight: ${ENV_TOKEN} not sent to {attacker.url}" in result.stderr
    assert not _leaks(result.stdout, result.stderr)


def test_resolve_url_attaches_the_token_only_to_given_urls() -> None:
    env = {ENV_TOKEN: TOKEN}
    assert resolve_url("http://flag:9090", env=env).token == TOKEN
    assert resolve_url(None, env={**env, ENV_URL: "http://env:9090"}).token == TOKEN
    cfg = resolve_url(None, configured="http://cfg:9090", configured_source="ConfigMap x/y", env=env)
    assert cfg.token is None and cfg.token_withheld and cfg.source == "ConfigMap x/y"
    assert TOKEN not in repr(cfg) and TOKEN not in repr(resolve_url("http://flag:9090", env=env))


def test_migrate_diff_redacts_a_password_left_in_a_live_scaled_object(apiserver: TestApiServer) -> None:
    """A ScaledObject written before credentials were split off still holds one: --diff prints it redacted."""
    import copy

    from kubectl_gpuscale.manifests import load

    apiserver.enable_group("keda.sh")
    objs = [
        copy.deepcopy(i.obj)
        for name in ("deploy_k8s-examples_1", "hpa_k8s-examples_1")
        for i in load([str(MANIFESTS / f"{name}.yaml")])
    ]
    for obj in objs:
        obj["metadata"]["namespace"] = "ml"
    legacy = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "gemma-server-hpa", "namespace": "ml"},
        "spec": {
            "scaleTargetRef": {"name": "vllm-gemma-deployment"},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": f"http://alice:{PASSWORD}@prom.monitoring.svc:9090",
                        "query": "sum(x)",
                        "threshold": "4",
                    },
                }
            ],
        },
    }
    apiserver.seed(*objs, legacy)
    result = CliRunner().invoke(
        cli,
        [
            "migrate-hpa",
            "gemma-server-hpa",
            "-n",
            "ml",
            "--diff",
            "--kubeconfig",
            apiserver.kubeconfig,
            "--prometheus",
            "http://prom.monitoring.svc:9090",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert re.search(r"^-\s+serverAddress: http://\*\*\*@prom\.monitoring\.svc:9090$", result.stdout, re.M)
    assert not _leaks(result.stdout, result.stderr)


# ---- the real Prometheus behind basic auth ------------------------------------------------------------------

# bcrypt of DECODED, cost 4: crypt.crypt(DECODED, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)) (libxcrypt)
ALICE_BCRYPT = "$2b$04$mIZicHcfigf4JV8VrGo.vO.mZA7teh.5SYaZOi34o/cMxINWsBqtq"


@pytest.fixture
def guarded_prometheus(prometheus_bin: str, tmp_path: Path) -> Any:
    """The real Prometheus with HTTP basic auth on every endpoint (--web.config.file basic_auth_users)."""
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from tests.support.prometheus import free_port

    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    (tmp_path / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {"alice": ALICE_BCRYPT}}))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--web.config.file={tmp_path / 'web.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    ready = urllib.request.Request(
        f"{url}/-/ready",
        headers={"Authorization": "Basic " + base64.b64encode(f"alice:{DECODED}".encode()).decode()},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(ready, timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-2000:]
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_userinfo_authenticates_against_the_real_prometheus(guarded_prometheus: str) -> None:
    """The credentials split off the URL reach the real server as HTTP basic auth; a wrong or missing
    password is a 401 whose message holds no password."""
    from kubectl_gpuscale.errors import ForbiddenError
    from kubectl_gpuscale.prom import Prometheus

    with_userinfo = guarded_prometheus.replace("http://", f"http://alice:{PASSWORD}@")
    with Prometheus.connect(with_userinfo) as prom:
        assert prom.build_info()["version"].startswith("2.")
        assert prom.query("vector(1)")[0].value == 1.0
    for wrong in (guarded_prometheus, guarded_prometheus.replace("http://", "http://alice:hunter2-wrong@")):
        with Prometheus.connect(wrong) as prom, pytest.raises(ForbiddenError) as err:
            prom.query("vector(1)")
        assert "HTTP 401" in err.value.line() and not _leaks(err.value.line())
        assert f"at {guarded_prometheus}" in err.value.line()

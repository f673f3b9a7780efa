"""The migrate service without click (issue 16): what `migrate-hpa` and a future `tune` call.

Through the real kubernetes client against the test API server, like the CLI tests.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kubectl_gpuscale import migrate
from kubectl_gpuscale.autoscale.convert import Options
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.kube import Cluster
from tests.support.keda_sim import seed_gemma_hpa
from tests.support.kube_fixtures import TestApiServer
from tests.test_migrate_cluster import NS


def test_plan_then_apply_writes_what_the_cli_writes(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)
    notes: list[str] = []
    request = migrate.MigrateRequest(names=("gemma-server-hpa",), namespace=NS, options=Options(kv_cache=0.8))
    plan = migrate.plan(request, cluster, note=notes.append)
    assert [r.action for r in plan.results] == ["migrate"] and not plan.failed
    assert [o["kind"] for o in plan.objects] == ["ScaledObject"]
    assert plan.targets.get("keda") is not None
    cli_plan = CliRunner().invoke(
        cli,
        [
            "migrate-hpa",
            "--kubeconfig",
            apiserver.kubeconfig,
            "-n",
            NS,
            "gemma-server-hpa",
            "--kv-cache",
            "0.8",
            "-o",
            "json",
        ],
    )
    assert cli_plan.exit_code == 0, cli_plan.output
    shown = json.loads(cli_plan.stdout)
    assert [o["spec"] for o in shown.get("items", [shown])] == [o["spec"] for o in plan.objects]
    migrate.apply(plan, cluster, note=notes.append, warn=notes.append)
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    assert so is not None and so["spec"]["triggers"] == plan.objects[0]["spec"]["triggers"]
    assert any(n.startswith(f"backup of HPA {NS}/gemma-server-hpa: ") for n in notes), notes


def test_a_request_naming_nothing_is_refused_before_any_read() -> None:
    with pytest.raises(InputError) as exc:
        migrate.plan(migrate.MigrateRequest(), None)
    assert exc.value.what == "nothing to migrate"

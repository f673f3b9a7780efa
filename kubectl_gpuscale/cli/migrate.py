"""`kubectl gpuscale migrate-hpa`: CPU/memory HPAs on GPU inference -> queue-depth KEDA ScaledObjects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.options import (
    KubeOptions,
    announce_targets,
    kube_options,
    resolve_targets,
    target_versions_option,
)
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.cli.types import finite_float
from kubectl_gpuscale.errors import InputError

if TYPE_CHECKING:
    from kubectl_gpuscale.autoscale.builders import Schedule
    from kubectl_gpuscale.autoscale.convert import Conversion
    from kubectl_gpuscale.kube import Cluster


def _schedule(ctx: click.Context, param: click.Parameter, value: str | None) -> Schedule | None:
    if not value:
        return None
    from kubectl_gpuscale.autoscale.builders import Schedule

    fields = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if not sep:
            raise click.BadParameter(f"{part!r} is not key=value; e.g. "
                                     "'timezone=Europe/Berlin;start=0 8 * * 1-5;end=0 18 * * 1-5;replicas=2'")
        fields[key.strip()] = val.strip()
    missing = {"timezone", "start", "end", "replicas"} - set(fields)
    if missing:
        raise click.BadParameter(f"missing {', '.join(sorted(missing))}")
    if fields["start"] == fields["end"]:
        raise click.BadParameter("start and end must differ")
    try:
        replicas = int(fields["replicas"])
    except ValueError:
        raise click.BadParameter("replicas must be an integer") from None
    if replicas < 1:
        raise click.BadParameter("replicas must be >= 1 (KEDA rejects desiredReplicas 0)")
    if not _known_timezone(fields["timezone"]):
        raise click.BadParameter(f"timezone {fields['timezone']!r} is not an IANA time zone (KEDA's cron scaler "
                                 "loads it with Go's time.LoadLocation); e.g. Europe/Berlin, America/New_York, UTC")
    return Schedule(fields["timezone"], fields["start"], fields["end"], replicas)


def _known_timezone(name: str) -> bool:
    """Whether `name` is in the IANA time zone database, as Go's time.LoadLocation needs."""
    import zoneinfo

    if name in ("UTC", "Local"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return not zoneinfo.available_timezones()  # no time zone database here: leave it to KEDA
    return True


@click.command("migrate-hpa", context_settings=CONTEXT_SETTINGS)
@click.argument("names", nargs=-1)
@click.option("--all", "all_hpas", is_flag=True, help="Every HPA in the namespace (-A: in all namespaces).")
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE|DIR|-",
              help="Read HPAs and their workloads from files, a directory or stdin (offline, no cluster).")
@click.option("--apply", "do_apply", is_flag=True, help="Write the objects (server-side apply) after preflight.")
@click.option("--diff", is_flag=True, help="Show what would change against what the cluster has.")
@click.option("--rollback", metavar="NAME", default=None,
              help="Undo a migration: restore the original HPA, then delete ScaledObject NAME (Orphan propagation).")
@click.option("--from-backup", "from_backup", metavar="FILE", default=None,
              help="With --rollback: restore the HPA from the backup file --apply wrote, not from the ScaledObject.")
@click.option("--prometheus", metavar="URL", default=None,
              help="Prometheus URL for the triggers (default: found in the cluster, else "
                   "http://prometheus-operated.monitoring.svc:9090).")
@click.option("--prometheus-secret", metavar="SECRET", default="gpuscale-prometheus", show_default=True,
              help="Secret KEDA reads Prometheus credentials from, when the URL carries user:password@ "
                   "(keys username, password) or $GPUSCALE_PROMETHEUS_TOKEN is set (key bearerToken); "
                   "referenced through a TriggerAuthentication, never inlined.")
@click.option("--target-queue", type=finite_float(0, 1e9, low_open=True), default=None,
              help="Waiting requests per replica that trigger a scale-up (default: the HPA's own queue target, "
                   "else ceil(engine max concurrency / 20), e.g. 13 for vLLM's 256).")
@click.option("--activation", type=finite_float(0, 1e9), default=0, show_default=True,
              help="activationThreshold: the queue must exceed it to wake a workload scaled to zero.")
@click.option("--kv-cache", type=finite_float(0, 1, low_open=True), default=None, metavar="FRACTION",
              help="Add a KV-cache usage trigger (e.g. 0.8); handles vLLM's gpu_ -> kv_cache_usage_perc rename.")
@click.option("--gpu-util", type=finite_float(0, 100, low_open=True), default=None, metavar="PERCENT",
              help="Add a DCGM GPU-utilisation trigger (pod or exported_pod labels).")
@click.option("--query", default=None, help="The PromQL to scale on, for an unknown engine (wrap it in sum()).")
@click.option("--force", is_flag=True, help="Migrate workloads with no accelerator request too.")
@click.option("--scale-to-zero", is_flag=True,
              help="minReplicaCount 0 with an HTTPScaledObject (KEDA HTTP add-on) buffering requests.")
@click.option("--host", "hosts", multiple=True, help="Host header(s) the HTTP add-on routes (with --scale-to-zero).")
@click.option("--cold-start", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="Cold-start estimate (default: measured on the workload's pods, else its startupProbe budget, else "
                   "the engine's typical; never a readiness delay).")
@click.option("--to", "to", type=click.Choice(["keda", "knative"]), default="keda", show_default=True,
              help="knative: a Knative Service instead of a ScaledObject (dev/staging scale-to-zero).")
@click.option("--pdb", is_flag=True, help="Also a PodDisruptionBudget keeping one warm replica (minAvailable 1).")
@click.option("--schedule", callback=_schedule, default=None, metavar="SPEC",
              help="Business-hours floor (KEDA cron): 'timezone=TZ;start=CRON;end=CRON;replicas=N'.")
@click.option("--polling-interval", type=click.IntRange(min=1), default=15, show_default=True,
              help="Seconds between KEDA polls; the HPA reads metrics every 15 s anyway.")
@click.option("--cooldown-period", type=click.IntRange(min=0), default=600, show_default=True,
              help="Seconds after the last activity before scaling to zero (only with --scale-to-zero).")
@click.option("--continue-on-error", is_flag=True, help="Migrate what converts and report each failure.")
@target_versions_option
@kube_options(writes=True)
def migrate_hpa(names: tuple[str, ...], all_hpas: bool, files: tuple[str, ...], do_apply: bool, diff: bool,
                rollback: str | None, from_backup: str | None, prometheus: str | None, prometheus_secret: str,
                target_queue: float | None, activation: float,
                kv_cache: float | None, gpu_util: float | None, query: str | None, force: bool,
                scale_to_zero: bool, hosts: tuple[str, ...], cold_start: int | None, to: str, pdb: bool,
                schedule: Schedule | None, polling_interval: int, cooldown_period: int,
                continue_on_error: bool, target_versions: dict[str, Any], kube: KubeOptions) -> None:
    """Turn CPU/memory HPAs on GPU inference into queue-depth KEDA ScaledObjects.

    Each HPA is read with its workload; the engine (vLLM, SGLang, TGI, Triton,
    TensorRT-LLM, NIM, Ollama) is detected from image, command, env and ports.
    The ScaledObject scales on the engine's queue (e.g. vllm:num_requests_waiting,
    matched in its ':' and '_' spellings), summed over this workload's pods,
    adopts the existing HPA with no gap (transfer-hpa-ownership), keeps the HPA's
    min/max and behavior with scale-down stabilization >= the cold start, and
    sets ignoreNullValues "false" plus a fallback so a missing metric never
    scales the workload down. The original HPA is saved on the ScaledObject
    and, with --apply, in a local backup file (0600, path printed) for --rollback.

    GPU defaults: pollingInterval 15 s (KEDA's 30 s doubles reaction time),
    cooldownPeriod 600 s (a GPU replica costs minutes to bring back),
    fallback after 3 failed polls to the current replica count.

    Without --apply nothing is written: the table and plan (or -o yaml|json,
    a List that pipes into 'kubectl apply -f -').

    \b
    Examples:
      kubectl gpuscale migrate-hpa -f hpa.yaml -f deploy.yaml           # offline plan
      kubectl gpuscale migrate-hpa -f manifests/ -o yaml | kubectl apply --server-side -f -
      kubectl gpuscale migrate-hpa vllm -n ml                           # plan from the cluster
      kubectl gpuscale migrate-hpa --all -n ml --apply --dry-run=server
      kubectl gpuscale migrate-hpa vllm -n ml --kv-cache 0.8 --apply
      kubectl gpuscale migrate-hpa vllm -n ml --scale-to-zero --host llm.example.com -o yaml
      kubectl gpuscale migrate-hpa vllm -n ml --to knative -o yaml
      kubectl gpuscale migrate-hpa --rollback vllm -n ml                # undo
      kubectl gpuscale migrate-hpa --rollback vllm -n ml --from-backup FILE
    """
    from kubectl_gpuscale.autoscale import convert as conv
    from kubectl_gpuscale.cli.output import emit_objects, note, warn

    if rollback:
        _rollback(rollback, kube, from_backup)
        return
    if from_backup:
        raise InputError("--from-backup needs --rollback", "it names the HPA backup a rollback restores",
                         "run: kubectl gpuscale migrate-hpa --rollback NAME -n NS --from-backup FILE")
    if not files and not names and not all_hpas and not kube.selector:
        raise InputError("nothing to migrate", "no HPA named", "pass NAME..., --all, -l SELECTOR or -f FILE")
    if files and (names or all_hpas) and kube.selector:
        raise InputError("cannot combine -f with -l", "selectors apply to cluster reads", "drop one of them")
    cluster = None
    prometheus_flag = prometheus
    originals: dict[tuple[str, str], Any] = {}
    measured: dict[tuple[str, str, str], tuple[int, str]] = {}
    wheres: list[str] = []
    if files:
        from kubectl_gpuscale.manifests import load

        loaded = load(files)
        objects = [item.obj for item in loaded]
        wheres = [item.where for item in loaded]
        namespace = kube.namespace
    else:
        cluster = kube.cluster()
        from kubectl_gpuscale.autoscale.apply import read_inputs

        namespace = kube.target_namespace(cluster)
        inputs = read_inputs(cluster, namespace, names, selector=kube.selector, services=scale_to_zero)
        for hpa, why in inputs.skipped:
            note(f"skipping HPA {hpa}: {why}")
        objects, originals = inputs.objects, inputs.originals
        if cold_start is None:
            from kubectl_gpuscale.coldstart.service import measured_cold_start

            for obj in objects:
                if obj.get("kind") in conv.WORKLOAD_KINDS:
                    ns = (obj.get("metadata") or {}).get("namespace") or namespace or "default"
                    found = measured_cold_start(cluster, obj, ns)
                    if found:
                        measured[(str(obj["kind"]), ns, obj["metadata"]["name"])] = found
        if prometheus is None:
            prometheus = _find_prometheus(cluster)
    if cluster is None and do_apply and kube.dry_run != "client":
        cluster = kube.cluster()
    targets = resolve_targets(target_versions, cluster)
    knative: tuple[int, int] | None = None
    if to == "knative":
        knative = _knative_version(targets, cluster)
    server, server_auth = _server_address(prometheus)
    options = conv.Options(
        prometheus=server or conv.DEFAULT_PROMETHEUS, target_queue=target_queue, activation=activation,
        kv_cache=kv_cache, gpu_util=gpu_util, query=query, force=force, scale_to_zero=scale_to_zero,
        cold_start=cold_start, to=to, pdb=pdb, schedule=schedule, polling=polling_interval,
        cooldown=cooldown_period, hosts=hosts, namespace=namespace, from_cluster=not files,
        measured_cold_starts=measured, knative_version=knative, targets=targets)
    results = conv.convert_all(objects, options, wheres=wheres, only=names if files else (), originals=originals)
    if files and names:
        missing = set(names) - {r.name for r in results}
        if missing:
            raise InputError(f"cannot find HPA {', '.join(sorted(missing))}", "not in the input",
                             "check the names and the -f files")
    if not results:
        raise InputError("nothing to migrate", "no HorizontalPodAutoscaler in the input",
                         "pass the HPA manifests (-f) or name HPAs in the cluster")
    _authenticate(results, server_auth is not None, prometheus_secret)
    failed = [r for r in results if r.action == "error"]
    if failed and not continue_on_error:
        first = failed[0]
        assert first.error is not None
        if len(failed) > 1:
            first.error.why += f" (and {len(failed) - 1} more HPA(s) failed; --continue-on-error to see all)"
        raise first.error
    to_write = [obj for r in results if r.ok for obj in r.objects]
    announce_targets(targets)
    if diff:
        if cluster is None:
            cluster = kube.cluster()
        _diff(cluster, to_write)
    if do_apply and kube.dry_run != "client" and to_write:
        from kubectl_gpuscale.autoscale.apply import apply_all, preflight

        if cluster is None:
            cluster = kube.cluster()
        for line in preflight(cluster, to_write, targets):
            warn(line)
        _check_queries(prometheus_flag, cluster, kube, to_write)
        if kube.dry_run != "server":
            _backup(cluster, to_write)
        apply_all(cluster, to_write, dry_run=kube.dry_run == "server", force=kube.force_conflicts)
        suffix = " (server dry run)" if kube.dry_run == "server" else ""
        for r in results:
            if r.ok:
                note(f"migrated HPA {r.hpa} -> " + ", ".join(f"{o['kind']}/{o['metadata']['name']}"
                                                             for o in r.objects) + suffix)
    if kube.output == "yaml":
        _emit_yaml(to_write)
    elif kube.output in ("json", "name"):
        emit_objects(to_write, kube.output)
    elif not diff:
        _report(results, wide=kube.output == "wide")
    if failed:
        raise SystemExit(1)


def _server_address(url: str | None) -> tuple[str | None, Any]:
    """The triggers' serverAddress without ``user:password@``, and whether it carried credentials."""
    if not url:
        return None, None
    from kubectl_gpuscale.prom.settings import split_userinfo

    return split_userinfo(url)


def _authenticate(results: list[Conversion], basic: bool, secret: str) -> None:
    """When the Prometheus needs auth, add a TriggerAuthentication referencing `secret` and say how to create it."""
    from kubectl_gpuscale.autoscale import auth
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.prom.settings import ENV_TOKEN, resolve_token

    mode = auth.mode_for(basic=basic, token=resolve_token() is not None)
    if mode is None:
        return
    how = auth.PrometheusAuth(mode, secret)
    why = "--prometheus carries user:password@" if basic else f"${ENV_TOKEN} is set"
    for namespace in auth.attach([r.objects for r in results if r.ok], how):
        where = f"{namespace}/" if namespace else ""
        note(f"KEDA authenticates to Prometheus ({mode}, because {why}) with Secret {where}{secret}, "
             f"through TriggerAuthentication {where}{how.name}; create the Secret first: "
             f"{auth.create_secret_command(how, namespace)}")


def _emit_yaml(objects: list[dict[str, Any]]) -> None:
    """The objects as a YAML `List` (libyaml's emitter when present: 10x faster on 1,000 objects)."""
    from kubectl_gpuscale.cli.output import as_list
    from kubectl_gpuscale.manifests import dump_yaml

    click.echo(dump_yaml(as_list(objects)), nl=False)


def _check_queries(flag: str | None, cluster: Any, kube: KubeOptions, objects: list[dict[str, Any]]) -> None:
    """Preflight: run each trigger query once on the Prometheus the user can reach; warnings only.

    That Prometheus is --prometheus, else $GPUSCALE_PROMETHEUS_URL, else the one `install` recorded
    (the in-cluster Service found for the triggers' serverAddress is usually not reachable from here).
    """
    from kubectl_gpuscale.autoscale.apply import SO_KIND, query_preflight
    from kubectl_gpuscale.cli.output import note, warn
    from kubectl_gpuscale.prom.settings import resolve_url

    if not any(t.get("type") == "prometheus" for o in objects if o.get("kind") == SO_KIND
               for t in (o.get("spec") or {}).get("triggers") or []):
        return
    ref = None
    if flag is None:
        from kubectl_gpuscale import config

        ref = config.configured_prometheus(cluster, context=kube.context)
    try:
        url = resolve_url(flag, configured=ref.url if ref else None, configured_source=ref.source if ref else None)
    except InputError as exc:
        if exc.what == "no Prometheus URL":
            note("preflight: trigger queries not checked: no Prometheus URL known (pass --prometheus URL, "
                 "e.g. a port-forward, or set $GPUSCALE_PROMETHEUS_URL)")
        else:
            warn(f"trigger queries not checked: {exc.what}: {exc.why}; {exc.fix}")
        return
    from kubectl_gpuscale.prom import Prometheus

    note(f"preflight: checking trigger queries on Prometheus at {url.url} ({url.source})")
    if url.token_withheld:
        note(f"preflight: {url.withheld_note()}")
    with Prometheus.open(url, timeout=kube.request_timeout or 10.0) as prom:
        for finding in query_preflight(prom, objects):
            if finding.level == "warning":
                warn(finding.text)
            else:
                note(f"preflight: {finding.text}")


def _find_prometheus(cluster: Any) -> str | None:
    """The Prometheus Service in the cluster: kube-prometheus-stack's, else the operator's governing one."""
    from kubectl_gpuscale.errors import GpuscaleError

    try:
        for svc in cluster.list("v1", "Service", None, label_selector="app=kube-prometheus-stack-prometheus"):
            meta = svc["metadata"]
            port = ((svc.get("spec") or {}).get("ports") or [{}])[0].get("port", 9090)
            return f"http://{meta['name']}.{meta['namespace']}.svc:{port}"
        for svc in cluster.list("v1", "Service", None, field_selector="metadata.name=prometheus-operated"):
            return f"http://prometheus-operated.{svc['metadata']['namespace']}.svc:9090"
    except GpuscaleError:
        return None
    return None


def _report(results: list[Conversion], *, wide: bool) -> None:
    from kubectl_gpuscale.cli.output import Column, render_table

    columns = [
        Column("hpa", lambda r: r.hpa), Column("target", lambda r: r.target, wide=True),
        Column("engine", lambda r: r.engine), Column("gpu", lambda r: r.gpu), Column("metric", lambda r: r.metric),
        Column("threshold", lambda r: r.threshold), Column("min/max", lambda r: r.replicas),
        Column("action", lambda r: r.action if r.ok else f"{r.action}: {r.why}"),
    ]
    render_table(results, columns, wide=wide)
    for r in results:
        if not r.ok:
            continue
        click.echo(f"\nplan for HPA {r.hpa}:")
        for obj in r.objects:
            adopt = obj.get("spec", {}).get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("name")
            extra = f" adopting HPA {adopt} (no gap: KEDA takes it over in place)" if adopt else ""
            click.echo(f"  apply {obj['kind']} {obj['metadata'].get('namespace')}/{obj['metadata']['name']}{extra}")
            for trigger in obj.get("spec", {}).get("triggers", []):
                meta = trigger.get("metadata", {})
                if "query" in meta:
                    click.echo(f"    trigger {trigger.get('name')}: {meta['query']} > {meta['threshold']} per replica"
                               if trigger.get("metricType") in (None, "AverageValue") else
                               f"    trigger {trigger.get('name')}: {meta['query']} ({trigger['metricType']} "
                               f"{meta['threshold']})")
                else:
                    click.echo(f"    trigger {trigger.get('name')}: {trigger.get('type')}")
        for line in r.notes:
            click.echo(f"  note: {line}")


def _diff(cluster: Any, objects: list[dict[str, Any]]) -> None:
    import difflib

    from kubectl_gpuscale.cli.output import dump
    from kubectl_gpuscale.prom.settings import redact

    for obj in objects:
        meta = obj["metadata"]
        current = cluster.get_or_none(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        before = ""
        if current:
            current = {"apiVersion": current.get("apiVersion"), "kind": current.get("kind"),
                       "metadata": {k: current["metadata"][k] for k in ("name", "namespace", "labels", "annotations")
                                    if k in current["metadata"]},
                       "spec": current.get("spec")}
            before = dump(current, "yaml")
        after = dump(obj, "yaml")
        label = f"{obj['kind']}/{meta.get('namespace')}/{meta['name']}"
        before, after = redact(before), redact(after)  # a serverAddress written before credentials were split off
        lines = list(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                          f"live/{label}", f"merged/{label}"))
        click.echo("".join(lines) if lines else f"# {label}: no change\n", nl=False)


def _backup(cluster: Any, objects: list[dict[str, Any]]) -> None:
    """Write a local copy of every HPA the ScaledObjects adopt, before any write; say where on stderr."""
    from kubectl_gpuscale.autoscale.apply import backup_adopted
    from kubectl_gpuscale.cli.output import note

    for hpa, path in backup_adopted(objects, cluster.context):
        name = hpa.split("/", 1)[-1]
        note(f"backup of HPA {hpa}: {path} (restore with: kubectl gpuscale migrate-hpa --rollback {name} "
             f"-n {hpa.split('/', 1)[0]} --from-backup {path})")


def _rollback(name: str, kube: KubeOptions, from_backup: str | None) -> None:
    from kubectl_gpuscale.autoscale.apply import plan_rollback, rollback
    from kubectl_gpuscale.cli.output import emit_objects, note

    backup = None
    if from_backup:
        from kubectl_gpuscale.autoscale.backup import read_backup

        backup = read_backup(from_backup)
    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    if kube.dry_run == "client":
        plan = plan_rollback(cluster, name, namespace, backup=backup, backup_path=from_backup)
        hpa = plan.hpa["metadata"]["name"]
        then = (f", then delete ScaledObject {namespace}/{name} (propagationPolicy=Orphan)"
                if plan.scaled_object is not None else f" (ScaledObject {namespace}/{name} not found)")
        note(f"would restore HPA {namespace}/{hpa} from {plan.source}{then}")
        if kube.output in ("json", "yaml", "name"):
            emit_objects([plan.hpa], kube.output, single=True)
        return
    done = rollback(cluster, name, namespace, dry_run=kube.dry_run == "server", backup=backup,
                    backup_path=from_backup)
    suffix = " (server dry run)" if kube.dry_run == "server" else ""
    if kube.output in ("json", "yaml", "name"):
        emit_objects([done.hpa], kube.output, single=True)
    else:
        click.echo(f"horizontalpodautoscaler.autoscaling/{done.hpa['metadata']['name']} restored{suffix}")
        if done.scaled_object_deleted:
            click.echo(f"scaledobject.keda.sh/{name} deleted (orphan){suffix}")
    for line in done.notes:
        note(line)
    note("the HPA scales on its original metrics again")


def _knative_version(targets: Any, cluster: Cluster | None) -> tuple[int, int] | None:
    """The Knative version the Service is built for: --target-versions, else the one detected from
    knative-serving's webhook or controller, else None (the builder assumes the pinned one and says so)."""
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.facts.detect import GIVEN_SOURCE

    given = targets.get("knative")
    if given is not None and targets.sources.get("knative") == GIVEN_SOURCE:
        return given.major, given.minor
    if cluster is not None:
        from kubectl_gpuscale.autoscale.apply import knative_version

        found = knative_version(cluster)
        if found:
            note(f"Knative {found[0]}.{found[1]} detected (knative-serving/webhook): the Service is built for it")
            return found
    return (given.major, given.minor) if given is not None else None

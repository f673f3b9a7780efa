"""migrate-hpa as a service: a request in, a plan out, then apply or roll back (no click, no rendering).

Messages for the user go through the `note` and `warn` callables the caller passes (the CLI's
stderr lines); errors are raised as `GpuscaleError` with what, why and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.names import DEFAULT_PROMETHEUS_URL, PROMETHEUS_SECRET

if TYPE_CHECKING:
    from kubectl_gpuscale.autoscale.apply import Rollback, RollbackPlan
    from kubectl_gpuscale.autoscale.convert import Conversion, Options
    from kubectl_gpuscale.kube import Cluster

Say = Callable[[str], None]


def _silent(_: str) -> None:
    return None


def _options() -> Options:
    from kubectl_gpuscale.autoscale.convert import Options

    return Options()


@dataclass(frozen=True, kw_only=True)
class MigrateRequest:
    """What to migrate and how: the meaning of `migrate-hpa`'s flags.

    Input is `files` (offline: -f FILE|DIR|-) or the cluster (`names`, `all_hpas`, `selector`);
    `namespace` is the one already resolved by the caller (None: all namespaces in the cluster,
    the objects' own in files). `options` shape the objects (`kubectl_gpuscale.autoscale.convert.Options`);
    `plan` fills in what it finds: the Prometheus, the namespace, the measured cold starts, the versions.
    """

    names: tuple[str, ...] = ()
    all_hpas: bool = False
    files: tuple[str, ...] = ()
    selector: str | None = None
    namespace: str | None = None
    context: str | None = None
    request_timeout: float | None = None
    prometheus: str | None = None
    """--prometheus: the triggers' serverAddress (default: discovered in the cluster) and the preflight's."""
    prometheus_secret: str = PROMETHEUS_SECRET
    options: Options = field(default_factory=_options)
    continue_on_error: bool = False
    target_versions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """The conversions of one request: what would be written, what failed, for which versions."""

    request: MigrateRequest
    results: list[Conversion]
    targets: Any

    @property
    def failed(self) -> list[Conversion]:
        """The HPAs that did not convert (only with `continue_on_error`)."""
        return [r for r in self.results if r.action == "error"]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The objects to write, in order."""
        return [obj for r in self.results if r.ok for obj in r.objects]


def check_request(request: MigrateRequest) -> None:
    """InputError when the request names nothing to migrate or combines what does not go together."""
    if not request.files and not request.names and not request.all_hpas and not request.selector:
        raise InputError("nothing to migrate", "no HPA named", "pass NAME..., --all, -l SELECTOR or -f FILE")
    if request.files and (request.names or request.all_hpas) and request.selector:
        raise InputError("cannot combine -f with -l", "selectors apply to cluster reads", "drop one of them")


def plan(request: MigrateRequest, cluster: Cluster | None, *, note: Say = _silent) -> Plan:
    """Read the input, find Prometheus, the target versions and the cold starts, and convert.

    With `request.files` the input is read from them (`cluster`, when given, only detects versions);
    else from `cluster`. Raises InputError on bad input, and the first conversion error unless
    `request.continue_on_error`.
    """
    from kubectl_gpuscale.autoscale import convert as conv
    from kubectl_gpuscale.facts.detect import detect_targets, offline_targets

    check_request(request)
    files, names, namespace = request.files, request.names, request.namespace
    prometheus = request.prometheus
    originals: dict[tuple[str, str], Any] = {}
    measured: dict[tuple[str, str, str], tuple[int, str]] = {}
    wheres: list[str] = []
    if files:
        from kubectl_gpuscale.manifests import load

        loaded = load(files)
        objects = [item.obj for item in loaded]
        wheres = [item.where for item in loaded]
    else:
        assert cluster is not None, "a cluster request needs a cluster"
        from kubectl_gpuscale.autoscale.apply import read_inputs

        inputs = read_inputs(
            cluster, namespace, names, selector=request.selector, services=request.options.scale_to_zero
        )
        for hpa, why in inputs.skipped:
            note(f"skipping HPA {hpa}: {why}")
        objects, originals = inputs.objects, inputs.originals
        if request.options.cold_start is None:
            measured = _measured_cold_starts(cluster, objects, namespace)
        if prometheus is None:
            prometheus = _find_prometheus(cluster)
    given = request.target_versions
    targets = detect_targets(cluster, given) if cluster is not None else offline_targets(given)
    knative: tuple[int, int] | None = None
    if request.options.to == "knative":
        knative = _knative_version(targets, cluster, note)
    server, server_auth = _server_address(prometheus)
    options = replace(
        request.options,
        prometheus=server or DEFAULT_PROMETHEUS_URL,
        namespace=namespace,
        from_cluster=not files,
        measured_cold_starts=measured,
        knative_version=knative,
        targets=targets,
    )
    results = conv.convert_all(
        objects, options, wheres=wheres, only=names if files else (), originals=originals
    )
    if files and names:
        missing = set(names) - {r.name for r in results}
        if missing:
            raise InputError(
                f"cannot find HPA {', '.join(sorted(missing))}",
                "not in the input",
                "check the names and the -f files",
            )
    if not results:
        raise InputError(
            "nothing to migrate",
            "no HorizontalPodAutoscaler in the input",
            "pass the HPA manifests (-f) or name HPAs in the cluster",
        )
    _authenticate(results, server_auth is not None, request.prometheus_secret, note)
    done = Plan(request, results, targets)
    failed = done.failed
    if failed and not request.continue_on_error:
        first = failed[0]
        assert first.error is not None
        if len(failed) > 1:
            first.error.why += f" (and {len(failed) - 1} more HPA(s) failed; --continue-on-error to see all)"
        raise first.error
    return done


def _measured_cold_starts(
    cluster: Cluster, objects: Sequence[dict[str, Any]], namespace: str | None
) -> dict[tuple[str, str, str], tuple[int, str]]:
    """The cold start measured in the cluster for each workload among `objects`, by (kind, namespace, name)."""
    from kubectl_gpuscale.autoscale import convert as conv
    from kubectl_gpuscale.coldstart.service import measured_cold_start

    measured: dict[tuple[str, str, str], tuple[int, str]] = {}
    for obj in objects:
        if obj.get("kind") in conv.WORKLOAD_KINDS:
            ns = cluster.namespace_or_default((obj.get("metadata") or {}).get("namespace") or namespace)
            found = measured_cold_start(cluster, obj, ns)
            if found:
                measured[(str(obj["kind"]), ns, obj["metadata"]["name"])] = found
    return measured


def apply(
    plan: Plan,
    cluster: Cluster,
    *,
    dry_run: bool = False,
    force_conflicts: bool = False,
    note: Say = _silent,
    warn: Say = _silent,
) -> None:
    """Preflight (cluster checks, each trigger query on the user's Prometheus), back up every adopted
    HPA (not on a server dry run), then write the plan's objects all-or-nothing."""
    from kubectl_gpuscale.autoscale.apply import apply_all, preflight

    objects = plan.objects
    if not objects:
        return
    for line in preflight(cluster, objects, plan.targets):
        warn(line)
    _check_queries(plan.request, cluster, objects, note, warn)
    if not dry_run:
        _backup(cluster, objects, note)
    apply_all(cluster, objects, dry_run=dry_run, force=force_conflicts)


def read_backup(path: str | None) -> Mapping[str, Any] | None:
    """The HPA backup file `apply` wrote (None without a path); InputError when it is not one."""
    if not path:
        return None
    from kubectl_gpuscale.autoscale.backup import read_backup as read

    return read(path)


def plan_rollback(
    cluster: Cluster,
    name: str,
    namespace: str,
    *,
    backup: Mapping[str, Any] | None = None,
    backup_path: str | None = None,
) -> RollbackPlan:
    """What `rollback` would do: the HPA to restore (from ScaledObject `name`, or the `backup`)."""
    from kubectl_gpuscale.autoscale import apply as cluster_apply

    return cluster_apply.plan_rollback(cluster, name, namespace, backup=backup, backup_path=backup_path)


def rollback(
    cluster: Cluster,
    name: str,
    namespace: str,
    *,
    backup: Mapping[str, Any] | None = None,
    backup_path: str | None = None,
    dry_run: bool = False,
) -> Rollback:
    """Restore the original HPA (from ScaledObject `name`, or the `backup`), then delete the ScaledObject
    (Orphan propagation)."""
    from kubectl_gpuscale.autoscale import apply as cluster_apply

    return cluster_apply.rollback(
        cluster, name, namespace, dry_run=dry_run, backup=backup, backup_path=backup_path
    )


def _server_address(url: str | None) -> tuple[str | None, Any]:
    """The triggers' serverAddress without ``user:password@``, and whether it carried credentials."""
    if not url:
        return None, None
    from kubectl_gpuscale.prom.settings import split_userinfo

    return split_userinfo(url)


def _authenticate(results: list[Conversion], basic: bool, secret: str, note: Say) -> None:
    """When the Prometheus needs auth, add a TriggerAuthentication referencing `secret` and say how to create it."""
    from kubectl_gpuscale.autoscale import auth
    from kubectl_gpuscale.prom.settings import ENV_TOKEN, resolve_token

    mode = auth.mode_for(basic=basic, token=resolve_token() is not None)
    if mode is None:
        return
    how = auth.PrometheusAuth(mode, secret)
    why = "--prometheus carries user:password@" if basic else f"${ENV_TOKEN} is set"
    for namespace in auth.attach([r.objects for r in results if r.ok], how):
        where = f"{namespace}/" if namespace else ""
        note(
            f"KEDA authenticates to Prometheus ({mode}, because {why}) with Secret {where}{secret}, "
            f"through TriggerAuthentication {where}{how.name}; create the Secret first: "
            f"{auth.create_secret_command(how, namespace)}"
        )


def _check_queries(
    request: MigrateRequest, cluster: Cluster, objects: list[dict[str, Any]], note: Say, warn: Say
) -> None:
    """Preflight: run each trigger query once on the Prometheus the user can reach; warnings only.

    That Prometheus is --prometheus, else $GPUSCALE_PROMETHEUS_URL, else the one `install` recorded
    (the in-cluster Service found for the triggers' serverAddress is usually not reachable from here).
    """
    from kubectl_gpuscale.autoscale.apply import SO_KIND, query_preflight
    from kubectl_gpuscale.prom import resolve

    if not any(
        t.get("type") == "prometheus"
        for o in objects
        if o.get("kind") == SO_KIND
        for t in (o.get("spec") or {}).get("triggers") or []
    ):
        return
    try:
        url = resolve.resolve(request.prometheus, cluster, context=request.context)
    except InputError as exc:
        if exc.what == resolve.NO_URL:
            note(
                "preflight: trigger queries not checked: no Prometheus URL known (pass --prometheus URL, "
                "e.g. a port-forward, or set $GPUSCALE_PROMETHEUS_URL)"
            )
        else:
            warn(f"trigger queries not checked: {exc.what}: {exc.why}; {exc.fix}")
        return
    note(f"preflight: checking trigger queries on Prometheus at {url.url} ({url.source})")
    if url.token_withheld:
        note(f"preflight: {url.withheld_note()}")
    with resolve.connect(url, timeout=request.request_timeout) as prom:
        for finding in query_preflight(prom, objects):
            if finding.level == "warning":
                warn(finding.text)
            else:
                note(f"preflight: {finding.text}")


def _find_prometheus(cluster: Cluster) -> str | None:
    """The in-cluster Prometheus Service the triggers' serverAddress names (`config.discover_prometheus`)."""
    from kubectl_gpuscale.config import discover_prometheus
    from kubectl_gpuscale.errors import GpuscaleError

    try:
        found = discover_prometheus(cluster)
    except GpuscaleError:
        return None
    return found.url if found else None


def _backup(cluster: Cluster, objects: list[dict[str, Any]], note: Say) -> None:
    """Write a local copy of every HPA the ScaledObjects adopt, before any write; say where."""
    from kubectl_gpuscale.autoscale.apply import backup_adopted

    for hpa, path in backup_adopted(objects, cluster.context):
        name = hpa.split("/", 1)[-1]
        note(
            f"backup of HPA {hpa}: {path} (restore with: kubectl gpuscale migrate-hpa --rollback {name} "
            f"-n {hpa.split('/', 1)[0]} --from-backup {path})"
        )


def _knative_version(targets: Any, cluster: Cluster | None, note: Say) -> tuple[int, int] | None:
    """The Knative version the Service is built for: --target-versions, else the one detected from
    knative-serving's webhook or controller, else None (the builder assumes the pinned one and says so)."""
    from kubectl_gpuscale.facts.detect import GIVEN_SOURCE

    given = targets.get("knative")
    if given is not None and targets.sources.get("knative") == GIVEN_SOURCE:
        return given.major, given.minor
    if cluster is not None:
        from kubectl_gpuscale.autoscale.apply import knative_version

        found = knative_version(cluster)
        if found:
            note(
                f"Knative {found[0]}.{found[1]} detected (knative-serving/webhook): the Service is built for it"
            )
            return found
    return (given.major, given.minor) if given is not None else None

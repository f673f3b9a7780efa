"""Load a kubeconfig (or the in-cluster service account) into a `kubernetes` API client.

Nothing global is touched: the configuration object is private to one `Cluster`.
"""

from __future__ import annotations

import os
from typing import Any

from kubectl_gpuscale.errors import InputError

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def load_api_client(
    *, kubeconfig: str | None = None, context: str | None = None, insecure_skip_tls_verify: bool = False
) -> tuple[Any, str, str | None]:
    """An API client from a kubeconfig (``KUBECONFIG`` lists honoured): (client, namespace, context name).

    Falls back to the in-cluster service account only when no kubeconfig or
    context was asked for and no kubeconfig file exists.

    Raises:
        InputError: the kubeconfig is missing, unreadable or has no such context.
    """
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    configuration.retries = False
    config_file = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    files = [p for p in config_file.split(os.pathsep) if p]
    have_file = any(os.path.exists(os.path.expanduser(p)) for p in files)
    namespace = "default"
    if kubeconfig and not os.path.exists(kubeconfig):
        raise InputError(
            f"cannot read kubeconfig {kubeconfig}", "no such file", "check the --kubeconfig path"
        )
    if not have_file and not kubeconfig and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise InputError(
                "cannot load the in-cluster config", str(exc), "pass --kubeconfig or set KUBECONFIG"
            ) from None
        try:
            with open(IN_CLUSTER_NAMESPACE_FILE) as fh:
                namespace = fh.read().strip() or "default"
        except OSError:
            pass
    else:
        if not have_file:
            raise InputError(
                "no kubeconfig found",
                f"{config_file} does not exist",
                "pass --kubeconfig, set KUBECONFIG, or run inside a cluster",
            )
        try:
            config.load_kube_config(
                config_file=config_file,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = config.list_kube_config_contexts(config_file=config_file)
        except ConfigException as exc:
            raise InputError(
                f"cannot use kubeconfig {config_file}",
                str(exc).splitlines()[0],
                "check --context and the file (kubectl config get-contexts)",
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(
                f"cannot read kubeconfig {config_file}",
                str(exc).splitlines()[0],
                "check the file is valid YAML",
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark is not None else ""
            raise InputError(
                f"cannot read kubeconfig {config_file}",
                f"it is not valid YAML{at}",
                "fix the file, or pass another with --kubeconfig",
            ) from None
        except (TypeError, AttributeError, KeyError, IndexError):
            raise InputError(
                f"cannot read kubeconfig {config_file}",
                "it is not a kubeconfig (clusters, contexts and users of the wrong shape)",
                "check it with `kubectl config view`",
            ) from None
        chosen = next((c for c in contexts if c.get("name") == context), current) if context else current
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        context = (chosen or {}).get("name", context)
    if insecure_skip_tls_verify:
        import urllib3

        configuration.verify_ssl = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # asked for: no per-request noise
    return client.ApiClient(configuration), namespace, context

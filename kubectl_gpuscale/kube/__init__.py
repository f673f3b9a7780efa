"""The cluster gateway: the only package that imports `kubernetes`.

`config` loads a kubeconfig, `transport` sends requests (and the exec websocket), `errors` maps
the API server's Status answers to typed errors, `cluster` holds the verbs; `resources` says where
each kind lives and `watch` lists once then watches. This face only re-exports the public names.
"""

from kubectl_gpuscale.kube.cluster import Cluster, Objects, Versions
from kubectl_gpuscale.kube.config import IN_CLUSTER_NAMESPACE_FILE
from kubectl_gpuscale.kube.errors import CommandFailedError, ExpiredError
from kubectl_gpuscale.kube.transport import DEFAULT_REQUEST_TIMEOUT, Response

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "IN_CLUSTER_NAMESPACE_FILE",
    "Cluster",
    "CommandFailedError",
    "ExpiredError",
    "Objects",
    "Response",
    "Versions",
]

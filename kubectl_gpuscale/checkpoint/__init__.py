"""Container checkpoint/restore of inference pods.

Pure modules: `facts` (the one place for versions, paths, images, annotations),
`archive` (offline archive inspection), `preflight` (node/runtime checks),
`diagnose` (403/404/500 explanations, the RBAC fix), `helper` (the read-only
helper pod), `restore` (the restore plan). `service` is the only module that
talks to the cluster, through `kubectl_gpuscale.kube.Cluster`.
"""

"""Installing KEDA (+ HTTP add-on), Knative Serving + Kourier, the DCGM exporter and the image
pre-pull DaemonSet, configured for GPU cold starts: catalog, plan, installers, readiness, status."""

"""Data sources of the dashboard: `live` (a cluster and its Prometheus) and `demo` (the simulator)."""

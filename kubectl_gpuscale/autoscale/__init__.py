"""Autoscaling objects as plain data: the HPA model, KEDA / HTTP add-on / Knative builders,
the HPA -> KEDA conversion and its rollback. Pure: no kubernetes, prometheus or click imports."""

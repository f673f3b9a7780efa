"""`tune`: the cheapest autoscaling settings that meet a TTFT SLO, from the workload's own history.

Pure (no I/O, click or textual): Prometheus is read by `prom.history.fetch_history`, the cluster by
the CLI, writes go through the `migrate` service.

- `history`: `History`, what the workload did (arrivals, tokens, TTFT histogram, replicas) per step.
- `calibrate`: the engine capacity fitted to the history, and the replay check of the current policy.
- `baseline`: the current policy (HPA, ScaledObject, Knative Service) as a simulator policy.
- `search`: candidates per policy, simulated on the history and its `--headroom` variant, the
  cost/SLO frontier, the recommendation, its cold-start cliff.

The seams (signatures fixed; each part fills in its own)::

    prom.history.fetch_history(prom, *, namespace, pods, engine, since, step=15.0, end=None) -> History
    tune.calibrate.calibrate(history, preset: EngineProfile) -> Calibration
    tune.calibrate.replay(history, calibration, coldstart, baseline: PolicySpec, *, seed) -> Replay
    tune.baseline.baseline_policy(objects: Sequence[Mapping]) -> PolicySpec
    tune.search.recommend(history, calibration, coldstart, baseline, options: TuneOptions,
                          progress=callable(done, total)) -> TuneResult
"""

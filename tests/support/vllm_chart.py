"""The vLLM project's own Helm chart (vllm-project/vllm examples/online_serving/chart-helm) as
``helm template test`` renders its Deployment with the chart's default values.yaml (namespace ``ml``),
and a CPU HPA as its hpa.yaml renders with ``autoscaling.enabled=true``. Not in ../shared/samples
(its INDEX has the production-stack chart only): rendered here from templates/deployment.yaml,
templates/_helpers.tpl (chart.probes, chart.container-port-name "container-port") and values.yaml
(readinessProbe 5 s delay / 5 s period / 3 failures; livenessProbe 15 s / 10 s / 3: the pod is killed
after 15 + 10 x 3 = 45 s while the model still loads)."""

from __future__ import annotations

from typing import Any

import yaml

RENDERED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "test-deployment-vllm"
  namespace: ml
  labels:
    environment: test
    release: test
spec:
  replicas: 1
  strategy:
    rollingUpdate:
      maxSurge: 100%
      maxUnavailable: 0
  selector:
    matchLabels:
      environment: "test"
      release: "test"
  progressDeadlineSeconds: 1200
  template:
    metadata:
      labels:
        environment: "test"
        release: "test"
    spec:
      containers:
        - name: "vllm"
          image: "vllm/vllm-openai:latest"
          command:
          - vllm
          - serve
          - /data/
          - --served-model-name
          - opt-125m
          - --enforce-eager
          - --dtype
          - bfloat16
          - --block-size
          - "16"
          - --host
          - 0.0.0.0
          - --port
          - "8000"
          securityContext:
            runAsNonRoot: false
          imagePullPolicy: IfNotPresent
          env: []
          ports:
            - name: "container-port"
              containerPort: 8000
          readinessProbe:
            failureThreshold: 3
            httpGet:
              path: /health
              port: 8000
            initialDelaySeconds: 5
            periodSeconds: 5
          livenessProbe:
            failureThreshold: 3
            httpGet:
              path: /health
              port: 8000
            initialDelaySeconds: 15
            periodSeconds: 10
          resources:
            requests:
              memory: "16Gi"
              cpu: "4"
              nvidia.com/gpu: "1"
            limits:
              memory: "16Gi"
              cpu: "4"
              nvidia.com/gpu: "1"
          volumeMounts:
          - name: test-storage
            mountPath: /data
      initContainers:
      - name: wait-download-model
        image: amazon/aws-cli:2.6.4
        imagePullPolicy: IfNotPresent
        command: ["/bin/bash"]
        args:
          - -eucx
          - while aws --endpoint-url $S3_ENDPOINT_URL s3 sync --dryrun s3://$S3_BUCKET_NAME/$S3_PATH /data | grep -q download; do sleep 10; done
        env:
        - name: S3_PATH
          value: "relative_s3_model_path/opt-125m"
        resources:
          requests:
            cpu: 200m
            memory: 1Gi
          limits:
            cpu: 500m
            memory: 2Gi
        volumeMounts:
        - name: test-storage
          mountPath: /data
      volumes:
        - name: test-storage
          persistentVolumeClaim:
            claimName: test-storage-claim
      runtimeClassName: nvidia
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                - key: nvidia.com/gpu.product
                  operator: In
                  values:
                    - "TYPE_GPU_USED"
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: test-deployment-vllm
  namespace: ml
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: test-deployment-vllm
  minReplicas: 1
  maxReplicas: 100
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 80
"""


def objects() -> list[dict[str, Any]]:
    """Fresh copies of the rendered Deployment and HPA."""
    return [d for d in yaml.safe_load_all(RENDERED) if d]

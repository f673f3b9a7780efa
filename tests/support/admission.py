"""Validating admission for the test API server: the hook interface and the answer a webhook gives.

A hook is any callable taking an `AdmissionRequest` (operation, group, kind, obj, old, dry_run,
server); append it to ``ApiServer.admission``. To reject, raise the `ApiError` that `deny`
builds: kube-apiserver answers a webhook denial with the webhook's Status code (controller-runtime's
``admission.Denied`` is 403 Forbidden) and the message ``admission webhook "<name>" denied the
request: <reason>`` (k8s.io/apiserver pkg/admission/plugin/webhook/errors ToStatusErr).
"""

from __future__ import annotations

from tests.support.apiserver import AdmissionHook, AdmissionRequest, ApiError

__all__ = ["AdmissionHook", "AdmissionRequest", "deny"]


def deny(webhook: str, message: str, *, code: int = 403, reason: str = "Forbidden") -> ApiError:
    """The error kube-apiserver returns when validating webhook ``webhook`` denies a request."""
    return ApiError(code, reason, f'admission webhook "{webhook}" denied the request: {message}')

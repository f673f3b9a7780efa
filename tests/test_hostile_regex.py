"""Hostile text reaches these patterns (pod logs, kubelet and API answers, object fields, PromQL from
ScaledObjects, -f input, exception text): each must read a long line in time linear in its length.
Before the fix each input here took seconds to hours (nested `.*` scans, a `findall` restarting at
every digit, a sub or search retrying from every unclosed opener); a linear read takes milliseconds.
Where a regex was replaced by string searches, the previous regex is kept here and the new reader
must give what it gave on any generated text."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kubectl_gpuscale.autoscale.querycheck import (
    _BRACE,
    _BRACKET,
    _GROUPING,
    _blank_spans,
    _blank_strings,
    metric_names,
    regex_names,
)
from kubectl_gpuscale.checkpoint.diagnose import _subresources, kubelet_forbidden_user
from kubectl_gpuscale.coldstart.logs import scan
from kubectl_gpuscale.manifests import _helm, _terraform, template_kind
from kubectl_gpuscale.prom.settings import redact
from kubectl_gpuscale.units import duration_seconds

T = TypeVar("T")
BUDGET_S = 1.0  # CPU for a 200 kB line: the quadratic reads took minutes


def _cpu(call: Callable[[Any], T], arg: Any) -> tuple[float, T]:
    start = time.process_time()
    result = call(arg)
    return time.process_time() - start, result


@pytest.mark.parametrize(
    "line",
    [
        "[2025-11-30 12:50:10] Load weight end." + " elapsed=1 s" * 20_000,
        "[2025-11-30 12:50:10] max_total_num_tokens=" + "1" * 200_000,
    ],
    ids=["sglang-load-weight-end", "sglang-max-total-num-tokens"],
)
def test_a_long_sglang_line_is_read_in_linear_time(line: str) -> None:
    seconds, _ = _cpu(scan, [line])
    assert seconds < BUDGET_S


def test_the_sglang_lines_still_read_their_figures() -> None:
    s = scan(
        [
            "[2026-01-15 13:56:49 TP0] Load weight end. elapsed=12.5 s, type=X, avail mem=29.92 GB, mem usage=30.67 GB.",
            "[2026-01-15 13:56:49 TP1] Load weight end. type=X, dtype=torch.bfloat16, avail mem=29.86 GB, mem usage=30.6 GB.",
            "[2026-01-15 13:56:50 TP0] max_total_num_tokens=834615, chunked_prefill_size=8192, max_running_requests=4096",
        ]
    )
    assert [m.values["groups"] for m in s.marks["sg_load_end"]] == [("12.5", "30.67"), (None, "30.6")]  # type: ignore[index]
    assert s.marks["sg_capacity"][0].values["groups"] == ("834615", "4096")  # type: ignore[index]


def test_a_long_kubelet_answer_is_read_in_linear_time() -> None:
    body = "Forbidden " + " user=x" * 30_000
    seconds, user = _cpu(kubelet_forbidden_user, body)
    assert seconds < BUDGET_S and user is None
    real = "Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[checkpoint])"
    assert kubelet_forbidden_user(real) == "kube-apiserver-kubelet-client"
    other = real.replace("kube-apiserver-kubelet-client", "apiserver-kubelet").replace(
        "checkpoint]", "proxy]"
    )
    assert kubelet_forbidden_user(other) is None


def test_a_long_number_is_refused_as_a_duration_in_linear_time() -> None:
    start = time.process_time()
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("1" * 200_000 + "x")
    assert time.process_time() - start < BUDGET_S
    assert duration_seconds("1h30m") == 5400 and duration_seconds("1m2.5s") == 62.5


# The previous readers, kept here as the reference the linear ones must agree with on any text.
PREVIOUS_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
PREVIOUS_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
PREVIOUS_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)\S*@")
PREVIOUS_HELM = re.compile(r"\{\{-?\s*.*?-?\}\}")
PREVIOUS_TF = re.compile(r"""%\{[^}]*\}|(:|^\s*-)\s*(["']?)\$\{[^}]*\}\2\s*(#.*)?$|\[.*["']\$\{[^}]*\}["']""")
PREVIOUS_SUBRESOURCE = re.compile(r"subresource\(s\)=\[([^\]]*)\]")
N = 20_000  # repeats of each forged fragment: 40-300 kB, which took seconds to hours before


@pytest.mark.parametrize(
    ("read", "text"),
    [
        (metric_names, '"' + '\\"' * N),  # an unterminated string full of escaped quotes
        (metric_names, "{" * N * 4),
        (metric_names, "by(" * N),
        (metric_names, "[" * N * 4),
        (regex_names, '__name__="' * N),
        (redact, "a." * N + "://"),
        (redact, "x://" * N),
        (template_kind, "a: {{" * N),
        (template_kind, "a: %{" * N),
        (template_kind, "a: ${" * N),
        (template_kind, "a: [" * N + "${"),
        (template_kind, "a: [" + "'${" * N),
        (template_kind, "a: ${ b: ${" * N + "}" + " " * N + "x"),
        (kubelet_forbidden_user, "user=x " + "subresource(s)=[" * N),
    ],
    ids=[
        "promql-strings",
        "promql-braces",
        "promql-grouping",
        "promql-ranges",
        "promql-name-matchers",
        "redact-scheme-dots",
        "redact-schemes",
        "helm",
        "terraform-directive",
        "terraform-value",
        "terraform-list",
        "terraform-list-quoted",
        "terraform-shared-tail",
        "kubelet-subresources",
    ],
)
def test_forged_text_is_read_in_linear_time(read: Callable[[str], object], text: str) -> None:
    seconds, _ = _cpu(read, text)
    assert seconds < BUDGET_S


def _text(*fragments: str) -> st.SearchStrategy[str]:
    """Text made of a few fragments: small alphabets, so the generated cases reach the readers' corners."""
    return st.lists(st.sampled_from(fragments), max_size=16).map("".join)


EXAMPLES = settings(max_examples=1500, deadline=None)


@EXAMPLES
@given(_text('"', "\\", "\n", "a"))
@example('"\\\n"a"')  # a string stopped at a backslash before a newline, then a whole string
def test_the_promql_string_blanking_is_the_previous_regex(text: str) -> None:
    assert _blank_strings(text) == PREVIOUS_STRING.sub('""', text)


@EXAMPLES
@given(_text("{", "}", "[", "]", "a", "by", "on", " ", "(", ")", "_"))
def test_the_promql_span_blanking_is_the_previous_regexes(text: str) -> None:
    assert _blank_spans(text, _BRACE, "}", "{}") == re.sub(r"\{[^}]*\}", "{}", text)
    assert _blank_spans(text, _GROUPING, ")", " ") == PREVIOUS_GROUPING.sub(" ", text)
    assert _blank_spans(text, _BRACKET, "]", "[]") == re.sub(r"\[[^\]]*\]", "[]", text)


@EXAMPLES
@given(_text("h", "1", ".", "://", "@", " ", "_", "\u212a", "/"))
@example("1h://a@b")  # no word boundary before the scheme: left alone
@example("\u212a://a@b")  # the Kelvin sign is a letter [a-z] matches under IGNORECASE
def test_redact_is_the_previous_regex(text: str) -> None:
    assert redact(text) == PREVIOUS_USERINFO.sub(r"\1***@", text)


@EXAMPLES
@given(_text("{{", "}}", "{", "}", "%{", "${", "${a}", "'${", ":", " ", "-", "'", '"', "[", "#", "a"))
@example("a: ${x}' # c")  # a closing quote that no opening quote asked for
@example('["${x}}"')
def test_the_template_checks_are_the_previous_regexes(line: str) -> None:
    assert _helm(line) == bool(PREVIOUS_HELM.search(line))
    assert _terraform(line) == bool(PREVIOUS_TF.search(line))


@EXAMPLES
@given(_text("subresource(s)=[", "checkpoint", "]", "x"))
def test_the_kubelet_403_read_is_the_previous_regex(body: str) -> None:
    sub = PREVIOUS_SUBRESOURCE.search(body, 1)
    assert _subresources(body, 1) == (sub[1] if sub else "")


def test_the_real_inputs_still_read_the_same() -> None:
    query = 'sum by (pod) (rate(vllm:num_requests_waiting{model_name="llama", ns=~"a|b"}[1m])) > on() group_left vector(1)'
    assert metric_names(query) == ["vllm:num_requests_waiting"]
    assert regex_names('{__name__=~"vllm[:_]num_requests_waiting|sglang:num_queue_reqs"}') == [
        "vllm:num_requests_waiting",
        "sglang:num_queue_reqs",
    ]
    assert redact("GET http://bob:p@ss@prom:9090/api failed") == "GET http://***@prom:9090/api failed"
    assert template_kind("image: {{ .Values.image }}\n") == ("Helm", 1)
    assert template_kind("name: x\nreplicas: ${replicas} # set by tf\n") == ("Terraform", 2)
    assert template_kind('args: ["${model}"]\n') == ("Terraform", 1)
    assert template_kind('args: ["serve --model ${MODEL}"]\n') is None

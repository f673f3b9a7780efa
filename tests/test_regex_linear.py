"""Every regular expression in the package reads forged text in time about linear in its length.

Patterns meet hostile text everywhere (pod logs, API answers, object fields, PromQL, -f input), and a
pattern that retries from every unclosed opener or nests two scans of one character reads 100 kB in
seconds to hours. This test finds such a pattern before a user does: each module-level pattern and
each literal `re.<method>(...)` pattern, with the methods the code calls on it (found in the source;
`search` when the code passes it on), reads repeats of fragments of its own text (its literal runs,
an opener repeated without its closer, punctuation, words), alone and after its leading literal, at
400 and 1,600 characters (4 and 16 times that when too quick to judge). A linear read grows about 4x
from one length to the other, a quadratic one 16x: a pattern that grows more than 6x past 2 ms fails
when three more reads agree, with the text that showed it. Every pattern found quadratic so far must
be found again (HISTORIC); tests/test_hostile_regex.py holds the readers that replaced them to their
results.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import kubectl_gpuscale
from kubectl_gpuscale.coldstart.engines import PATTERNS
from tests import test_hostile_regex as hostile

PACKAGE = Path(kubectl_gpuscale.__file__).parent
METHODS = frozenset({"match", "fullmatch", "search", "sub", "subn", "findall", "finditer", "split"})
GENERIC = (" ", "a", "0", "1", "\t", "x:", "a.", "=", '"', "'", "a ", "0.", "-", "ab", "\\", "\n")
SHORT, LONG = 400, 1_600
GROWTH = 6.0  # linear: ~4x for 4x the length; quadratic: ~16x
FLOOR_S = 0.002  # below this a read is too quick to judge (timer noise)
# a pattern's pieces: an escape, a character class, a counted repeat, a group or flag opener, one character
_PIECE = re.compile(
    r"\\.|\[\^?\]?(?:\\.|[^\]])*\]|\{\d*,?\d*\}|\(\?(?:[aiLmsux-]*\)|P?<\w+>|<?[=!]|:)?|.", re.S
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_calls(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, method, pattern) of each `re.<method>(<literal>, ...)` call."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.args
        ):
            try:
                value = ast.literal_eval(node.args[0])
            except ValueError:
                continue
            if isinstance(value, str):
                yield node.lineno, node.func.attr, value


def patterns() -> list[tuple[str, re.Pattern[str], frozenset[str]]]:
    """(where, pattern, the methods the code calls on it) for every pattern of the package."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))}
    uses: dict[str, set[str]] = {}  # a name -> the pattern methods called on it anywhere in the package
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in METHODS and isinstance(node.value, ast.Name):
                uses.setdefault(node.value.id, set()).add(node.attr)
    found: dict[tuple[str, int], tuple[str, re.Pattern[str], frozenset[str]]] = {}
    for path, tree in trees.items():
        module = importlib.import_module(_module_name(path))
        for line, method, pattern in _literal_calls(tree):
            if method == "compile":
                continue  # a module-level compile is read below, with its uses
            compiled = re.compile(pattern)
            found.setdefault(
                (pattern, compiled.flags), (f"{path.name}:{line}", compiled, frozenset({method}))
            )
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }
        for name in sorted(assigned):
            value = getattr(module, name, None)
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                methods = frozenset(uses.get(name) or {"search"})
                found.setdefault((value.pattern, value.flags), (f"{path.name}:{name}", value, methods))
    # the engines' startup patterns are matched at a message's start (coldstart/logs._scan_lines)
    for word, compiled, mark, _ in PATTERNS:
        found.setdefault(
            (compiled.pattern, compiled.flags), (f"{mark}:{word}", compiled, frozenset({"match"}))
        )
    return list(found.values())


def _literal(piece: str) -> str | None:
    """The character a pattern piece matches as written, None for any other piece."""
    if len(piece) == 1 and piece not in "()*+?|^$.[]{}":
        return piece
    if len(piece) == 2 and piece[0] == "\\" and not piece[1].isalnum():
        return piece[1]
    return None


def literal_runs(pattern: str) -> list[str]:
    """The runs of text the pattern matches as written (``subresource(s)=[``, ``elapsed=``), in order."""
    runs, run = [], ""
    for piece in _PIECE.findall(pattern):
        char = _literal(piece)
        if char is not None:
            run += char
        elif run:
            runs.append(run)
            run = ""
    return list(dict.fromkeys([*runs, run] if run else runs))


def fragments(pattern: str) -> tuple[list[str], list[str]]:
    """(pieces, pieces to pair) of the pattern's own text: its literal runs (``subresource(s)=[``,
    ``__name__``), escaped and other punctuation, words, and a few generic pieces."""
    runs = literal_runs(pattern)
    escaped = list(dict.fromkeys(re.findall(r"\\([^\w\s])", pattern)))
    marks = sorted(set(re.findall(r"[^\w\s\\]", pattern)) - set(escaped))
    words = sorted(set(re.findall(r"[A-Za-z_]{2,}", pattern)), key=len)[:8]
    # an opener repeated without its closer: the pattern's literal text up to some point, or two of
    # its literal runs with a figure between (``elapsed=1 s``)
    openers = ["".join(runs[:k]) for k in range(2, min(len(runs), 6) + 1)]
    figures = [f"{a}1{b}" for a, b in itertools.pairwise(runs[:8])]
    pieces = list(dict.fromkeys(runs[:12] + openers + figures + escaped + marks + words + list(GENERIC)))
    paired = list(dict.fromkeys(runs[:6] + escaped[:4] + marks[:4] + words[:2] + ["a", " ", "0"]))
    return pieces, paired


def read_seconds(pattern: re.Pattern[str], methods: frozenset[str], text: str) -> float:
    """CPU seconds for every method the code calls, on `text`."""
    start = time.process_time()
    for method in methods:
        if method in ("sub", "subn"):
            getattr(pattern, method)("", text)
        elif method == "finditer":
            for _ in pattern.finditer(text):
                pass
        else:
            getattr(pattern, method)(text)
    return time.process_time() - start


def growth(pattern: re.Pattern[str], methods: frozenset[str], head: str, unit: str) -> tuple[float, float]:
    """(seconds, growth) for `head` and repeats of `unit` at SHORT and LONG characters; a read that
    grows past GROWTH too quickly to judge is read again at 4 and 16 times those lengths."""
    seconds, grew = 0.0, 0.0
    for scale in (1, 4, 16):
        short = read_seconds(pattern, methods, head + unit * max(1, scale * SHORT // len(unit)))
        seconds = read_seconds(pattern, methods, head + unit * max(1, scale * LONG // len(unit)))
        grew = seconds / max(short, 1e-6)
        if grew <= GROWTH or seconds > FLOOR_S:
            break
    return seconds, grew


def quadratic(pattern: re.Pattern[str], methods: frozenset[str]) -> str | None:
    """The first text (the pattern's leading literal, then repeats of a fragment) that the pattern reads
    in more than linear time, else None."""
    pieces, paired = fragments(pattern.pattern)
    first = _PIECE.match(pattern.pattern.lstrip("^"))
    leading = literal_runs(pattern.pattern)[0] if first and _literal(first.group()) is not None else ""
    heads = ["", leading] if leading else [""]
    units = pieces + ["".join(pair) for pair in itertools.permutations(paired, 2)]
    for head, unit in itertools.product(heads, units):
        seconds, grew = growth(pattern, methods, head, unit)
        if seconds > FLOOR_S and grew > GROWTH:
            retried = [growth(pattern, methods, head, unit) for _ in range(3)]
            if all(again > FLOOR_S and more > GROWTH for again, more in retried):
                slowest, grew = max(retried)
                return f"{head!r} + {unit!r}*N: {slowest * 1e3:.1f} ms, {grew:.0f}x for 4x the length"
    return None


def test_the_package_has_patterns_to_check() -> None:
    found = patterns()
    assert len(found) > 100
    where = {w for w, _, _ in found}
    assert "querycheck.py:_GROUPING" in where and "logs.py:_VLLM_LINE" in where


def test_every_pattern_reads_forged_text_in_linear_time() -> None:
    slow = {
        f"{where} {sorted(methods)} {pattern.pattern[:80]!r}": why
        for where, pattern, methods in patterns()
        if (why := quadratic(pattern, methods)) is not None
    }
    assert not slow, slow


# Patterns the package used before they were found quadratic, with the method it called: the check
# must find each. Those whose linear replacements are held to them are in tests/test_hostile_regex.py.
HISTORIC = [
    (hostile.PREVIOUS_STRING.pattern, "sub"),  # autoscale/querycheck.metric_names
    (r"\{[^}]*\}", "sub"),
    (hostile.PREVIOUS_GROUPING.pattern, "sub"),
    (hostile.PREVIOUS_USERINFO.pattern, "sub"),  # prom/settings.redact
    (hostile.PREVIOUS_HELM.pattern, "search"),  # manifests.template_kind
    (hostile.PREVIOUS_TF.pattern, "search"),
    (hostile.PREVIOUS_SUBRESOURCE.pattern, "search"),  # checkpoint/diagnose
    (r"user=([^,()\s]+).*subresource\(s\)=\[([^\]]*)\]", "search"),
    (r"Load weight end\.(?:.*elapsed=([-\d.,]+) s)?.*?mem usage=([-\d.,]+) GB", "match"),  # coldstart SGLang
    (r"max_total_num_tokens=(\d+).*?max_running_requests=(\d+)", "match"),
    (r"(\d+(?:\.\d+)?)(ms|us|µs|μs|ns|s|m|h|d|w)", "findall"),  # units.duration_seconds
]


@pytest.mark.parametrize(("pattern", "method"), HISTORIC)
def test_each_pattern_found_quadratic_before_is_found(pattern: str, method: str) -> None:
    assert quadratic(re.compile(pattern), frozenset({method})) is not None

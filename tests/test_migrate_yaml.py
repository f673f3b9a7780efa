"""The fast YAML paths migrate-hpa uses (manifests._documents, yaml_emit, manifests.dump_yaml) against PyYAML itself.

The reference is what the command used before: yaml.load_all with CSafeLoader, and yaml.dump with
CSafeDumper plus a `|` representer for multi-line strings. Inputs: every real sample, and seeded
random documents built to hit libyaml's quoting and folding rules (indicators, implicit types,
quotes, runs of spaces around column 80, long keys).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale import manifests, yaml_emit
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import InputError
from tests.support.paths import MANIFESTS, SAMPLES

assert yaml.__with_libyaml__, "the reference is libyaml's emitter"


class _Reference(yaml.CSafeDumper):
    pass


_Reference.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def reference_dump(data: Any) -> str:
    text: str = yaml.dump(
        data, Dumper=_Reference, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return text


def reference_load(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


def sample_documents() -> list[Any]:
    docs: list[Any] = []
    for path in sorted(SAMPLES.rglob("*.y*ml")):
        try:
            docs += [
                d for d in reference_load(path.read_text(encoding="utf-8")) if isinstance(d, (dict, list))
            ]
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
    return docs


TRICKY = [
    "true",
    "null",
    "yes",
    "No",
    "~",
    "1.5",
    "0x1F",
    "0o17",
    "012",
    "1_000",
    "1:30",
    "2001-12-14",
    "<<",
    "=",
    "---",
    "...",
    "-",
    "?",
    ":",
    "a:",
    "a: b",
    "a #b",
    "#a",
    "-a",
    "- a",
    "?a",
    "? a",
    ":a",
    "'q'",
    '"d"',
    "",
    " lead",
    "trail ",
    "{x}",
    "[x]",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x",
    "|x",
    ">x",
    "1e5",
    ".inf",
    "+1",
]


def random_document(rng: random.Random) -> Any:
    alphabet = rng.choice(["ab :#-?'\"{}[],&*!|>%@`.=~<0123456789 eEtTfFnNyY/_x", "a   b '' :# x", "ab '"])

    def text() -> str:
        if rng.random() < 0.2:
            return rng.choice(TRICKY)
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 5, 10, 40, 75, 90, 150, 250])))

    def value(depth: int) -> Any:
        r = rng.random()
        if depth > 3 or r < 0.5:
            return rng.choice(
                [
                    text,
                    text,
                    text,
                    lambda: rng.randint(-5, 10**6),
                    lambda: None,
                    lambda: rng.random() < 0.5,
                    dict,
                    list,
                ]
            )()
        if r < 0.8:
            return {text()[:30]: value(depth + 1) for _ in range(rng.randint(1, 4))}
        return [value(depth + 1) for _ in range(rng.randint(1, 4))]

    return {"k" * rng.randint(1, 60): value(0)} if rng.random() < 0.7 else [value(0)]


def test_emitter_matches_libyaml_on_random_documents() -> None:
    rng = random.Random(20260101)
    compared = 0
    for _ in range(3000):
        doc = random_document(rng)
        try:
            got = yaml_emit.dump(doc)
        except yaml_emit.Unsupported:
            continue
        assert got == reference_dump(doc), doc
        compared += 1
    assert compared > 2500
    assert any("\n   " in reference_dump(random_document(random.Random(s))) for s in range(50)), (
        "folding not hit"
    )


def test_emitter_matches_libyaml_on_real_samples() -> None:
    docs = sample_documents()
    supported = 0
    for doc in docs:
        try:
            got = yaml_emit.dump(doc)
        except yaml_emit.Unsupported:
            assert manifests.dump_yaml(doc) == reference_dump(doc)  # the PyYAML fallback
            continue
        assert got == reference_dump(doc)
        supported += 1
    assert supported >= 40, f"only {supported} of {len(docs)} samples took the fast path"


@pytest.mark.parametrize(
    "data",
    [
        {"f": 1.5},
        {"u": "héllo"},
        {"m": "two\nlines\n"},
        {"t": "tab\there"},
        {1: "int key"},
        {"k" * 129: 1},
        {"b": b"bytes"},
        "scalar",
        {},
        [],
    ],
)
def test_unsupported_data_falls_back_to_pyyaml(data: Any) -> None:
    with pytest.raises(yaml_emit.Unsupported):
        yaml_emit.dump(data)
    assert manifests.dump_yaml(data) == reference_dump(data)


def test_folding_continues_two_spaces_deeper() -> None:
    words = " ".join(["word"] * 30)
    text = yaml_emit.dump({"a": {"plain": words, "quoted": "x: " + words}, "l": [words]})
    assert text == reference_dump({"a": {"plain": words, "quoted": "x: " + words}, "l": [words]})
    assert "\n    word" in text and "\n  word" in text


def test_loader_matches_pyyaml_on_real_samples_and_edge_cases() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.rglob("*.y*ml"))]
    texts += [
        "a: &x {k: [1, 2.5, true, null, 2001-12-14, !!binary aGVsbG8=]}\nb: *x\nc:\n  <<: *x\n  z: 1\n",
        "a: &r [*r]\n",
        "= : 1\nb: 2\n",
        "a: 1\na: 2\n",
        "? [1, 2]\n: 3\n",
        "? {a: 1}\n: 3\n",
        "x: !foo 1\n",
        "- 0o17\n- 0x1F\n- 1_000\n- .inf\n- yes\n- ~\n- 012\n- '1'\n- 2001-12-14 21:59:43.10 -5\n",
        "a: [b\n",
        "\tbad: tab\n",
        "",
        "# only a comment\n",
        "---\n---\na: 1\n",
        "plain scalar\n",
        "d: 2001-02-30\n",
        "x: <<\n",
        "? 1\n: int key\nnull: none key\n1.5: f\n",
        "a: *undefined\n",
        "x: ! 1\n",
        "{a: [1, {b: c}], 'q': \"d\"}\n",
        "m: |\n  two\n  lines\n",
        "[1, 2]\n",
        "---\n...\n",
    ]
    for text in texts:
        try:
            want: Any = reference_load(text)
        except (yaml.YAMLError, ValueError) as exc:  # PyYAML lets a bad date's ValueError through
            with pytest.raises(type(exc)) as got:
                manifests._documents(text)
            assert str(got.value) == str(exc)
            continue
        assert repr(manifests._documents(text)) == repr(
            want
        )  # repr: also the types (int vs str, date) and recursion
    shared = manifests._documents("a: &x [1]\nb: *x\n")[0]
    assert shared["a"] is shared["b"]  # aliases share one object, as PyYAML's constructor does


def test_migrate_yaml_output_is_the_json_output_without_anchors() -> None:
    hpa = yaml.safe_load((MANIFESTS / "hpa_k8s-examples_1.yaml").read_text())
    deploy = yaml.safe_load((MANIFESTS / "deploy_k8s-examples_1.yaml").read_text())
    second = json.loads(json.dumps(hpa))
    second["metadata"]["name"] += (
        "-2"  # two HPAs on one workload: their Knative Services share its containers
    )
    stream = yaml.safe_dump_all([hpa, second, deploy])
    for extra in ([], ["--to", "knative"]):
        as_yaml = CliRunner().invoke(
            cli, ["migrate-hpa", "-f", "-", "-n", "ml", "-o", "yaml", *extra], input=stream
        )
        as_json = CliRunner().invoke(
            cli, ["migrate-hpa", "-f", "-", "-n", "ml", "-o", "json", *extra], input=stream
        )
        assert as_yaml.exit_code == 0 and as_json.exit_code == 0, as_yaml.output + as_json.output
        assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
        assert "&id0" not in as_yaml.stdout and "*id0" not in as_yaml.stdout
        assert len(json.loads(as_json.stdout)["items"]) == 2


def test_a_date_out_of_range_is_a_clear_input_error() -> None:
    result = CliRunner().invoke(
        cli, ["migrate-hpa", "-f", "-"], input="kind: ConfigMap\napiVersion: v1\nd: 2024-02-30\n"
    )
    assert isinstance(result.exception, InputError)  # the CLI prints its one line and exits 2
    assert result.exception.line() == "cannot parse <stdin>: day is out of range for month; fix the value"

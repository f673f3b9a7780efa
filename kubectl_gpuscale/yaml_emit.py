"""Block-style YAML for plain Kubernetes objects, written in Python, byte-identical to libyaml's output.

PyYAML's path (representer nodes, then libyaml's emitter with Python callbacks per node) costs
about 0.6 s for 1,000 ScaledObjects; writing the text directly costs a tenth of that. This
module covers only what Kubernetes objects usually hold: dicts with string keys, lists, ints,
bools, None, and single-line printable-ASCII strings. It follows libyaml's rules for those
(yaml_emitter_analyze_scalar / select_scalar_style / write_plain / write_single_quoted:
plain when the text reads back as the same string and has no indicator, else single-quoted;
long values folded at a space past column 80, continuing two spaces deeper; indentless lists
in mappings; `{}` / `[]` when empty). Anything else raises `Unsupported`, and the caller uses
PyYAML for the whole document. tests/test_migrate_yaml.py compares both on real and random data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

WIDTH = 80  # libyaml's best_width (PyYAML passes none)
MAX_SIMPLE_KEY = 128  # longer keys are written as `? key` by libyaml
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")


class Unsupported(Exception):
    """The data holds something this writer does not reproduce exactly (floats, non-ASCII, multi-line...)."""


class _Writer:
    def __init__(self) -> None:
        self.out: list[str] = []
        self._plain: dict[str, bool] = {}
        # The stubs leave Resolver.resolve untyped: this is its signature for an implicit plain scalar.
        self._resolve: Callable[[type[yaml.ScalarNode], str, tuple[bool, bool]], str] = (
            yaml.resolver.Resolver().resolve
        )

    def collection(self, value: dict[Any, Any] | list[Any], indent: int, lead: str) -> None:
        """A non-empty dict or list at `indent`; its first line starts with `lead` (e.g. ``- ``)."""
        pad = " " * indent
        first = lead
        if type(value) is dict:
            for key, item in value.items():
                if type(key) is not str or len(key) > MAX_SIMPLE_KEY:
                    raise Unsupported(f"key {key!r}")
                self.value(item, indent, f"{first}{self.string(key, 0, 0, key=True)}:", in_list=False)
                first = pad
        else:
            for item in value:
                self.value(item, indent, f"{first}-", in_list=True)
                first = pad

    def value(self, item: Any, indent: int, line: str, *, in_list: bool) -> None:
        kind = type(item)
        if (kind is dict or kind is list) and item:
            if in_list:  # `- key: v` / `- - v`: the collection starts on the dash's line
                self.collection(item, indent + 2, line + " ")
            else:
                self.out.append(line + "\n")
                self.collection(
                    item,
                    indent + 2 if kind is dict else indent,
                    " " * (indent + 2) if kind is dict else " " * indent,
                )
            return
        self.out.append(f"{line} {self.scalar(item, indent + 2, len(line) + 1)}\n")

    def scalar(self, item: Any, indent: int, column: int) -> str:
        kind = type(item)
        if kind is str:
            return self.string(item, indent, column, key=False)
        if item is None:
            return "null"
        if kind is bool:
            return "true" if item else "false"
        if kind is int:
            return str(item)
        if kind is dict:
            return "{}"
        if kind is list:
            return "[]"
        raise Unsupported(f"a {kind.__name__}")

    def string(self, text: str, indent: int, column: int, *, key: bool) -> str:
        if not (text.isascii() and text.isprintable()):
            raise Unsupported("a non-ASCII, control or multi-line string")
        plain = self._plain.get(text)
        if plain is None:
            plain = self._plain[text] = (
                _plain_allowed(text)
                and self._resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"
            )
        if plain:
            return text if key else _fold(text, column, indent, quoted=False)
        quoted = text.replace("'", "''")
        return f"'{quoted}'" if key else "'" + _fold(quoted, column + 1, indent, quoted=True) + "'"


def _plain_allowed(text: str) -> bool:
    """libyaml's block_plain_allowed for a non-empty single-line ASCII string."""
    if not text or text[0] == " " or text[-1] == " " or text[:3] in ("---", "..."):
        return False
    first, blank_after = text[0], len(text) == 1 or text[1] == " "
    if first in _FIRST_INDICATORS or (first in "?:-" and blank_after):
        return False
    return ": " not in text and not text.endswith(":") and " #" not in text


def _fold(text: str, column: int, indent: int, *, quoted: bool) -> str:
    """Break `text` (starting at `column`) at single spaces past WIDTH, as libyaml's write_plain/write_single_quoted.

    In quoted text (`''` already doubled) the first and last characters never break.
    """
    if column + len(text) <= WIDTH + 1 or " " not in text:
        return text
    pieces: list[str] = []
    start, spaces, last = 0, False, len(text) - 1
    for i, char in enumerate(text):
        if char == " ":
            if not spaces and column > WIDTH and i < last and text[i + 1] != " " and not (quoted and i == 0):
                pieces += [text[start:i], "\n", " " * indent]
                start, column = i + 1, indent
            else:
                column += 1
            spaces = True
        else:
            column += 1
            spaces = False
    pieces.append(text[start:])
    return "".join(pieces)


def dump(data: Any) -> str:
    """`data` (a non-empty dict or list) as libyaml writes it in block style; raises `Unsupported` otherwise."""
    if type(data) not in (dict, list) or not data:
        raise Unsupported("not a non-empty dict or list")
    writer = _Writer()
    writer.collection(data, 0, "")
    return "".join(writer.out)

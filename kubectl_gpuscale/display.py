"""Text from the cluster or from files, made safe to show: never Rich markup, control characters visible.

Names, images, paths, log lines and archive metadata can hold ``[red]``, ``evil[/]`` (a Rich
MarkupError) or raw escape sequences that would drive the terminal. `visible` spells every control
character out (``\\x1b``, ``\\n``); `plain` wraps the result in a `rich.text.Text`, which Rich and
Textual show as is (a plain ``str`` cell or label is parsed as markup by both).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _spell(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible(value: Any) -> str:
    """`value` as text with control, line-separator and bidi-override characters spelled out (``\\x1b``)."""
    text = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(_spell, text)


def plain(value: Any, style: str = "") -> Text:
    """`value` as a Rich `Text` (no markup interpretation), control characters made visible."""
    from rich.text import Text

    return Text(visible(value), style=style)

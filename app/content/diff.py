"""A word-level diff between two versions of a post's text.

Tokens are words and the whitespace between them, so the diff keeps line breaks
and spacing exactly, and a change of one word shows as that word, not the line.
The result renders as ``<del>``/``<ins>`` (read out by screen readers, and
struck through / underlined as well as coloured, so it is never colour alone).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

import regex
from markupsafe import Markup, escape

_TOKENS = regex.compile(r"\s+|[^\s]+")

Kind = Literal["same", "inserted", "deleted"]


@dataclass(frozen=True)
class Piece:
    kind: Kind
    text: str


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def word_diff(old: str, new: str) -> list[Piece]:
    """The pieces that turn ``old`` into ``new``; runs of one kind are merged."""
    before, after = tokens(old), tokens(new)
    # autojunk off: in long posts common words would otherwise be ignored as "popular".
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    pieces: list[Piece] = []

    def add(kind: Kind, text: str) -> None:
        if not text:
            return
        if pieces and pieces[-1].kind == kind:
            pieces[-1] = Piece(kind, pieces[-1].text + text)
        else:
            pieces.append(Piece(kind, text))

    for operation, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if operation == "equal":
            add("same", "".join(before[a_start:a_end]))
            continue
        # A replacement shows what went, then what came: the order people read edits in.
        add("deleted", "".join(before[a_start:a_end]))
        add("inserted", "".join(after[b_start:b_end]))
    return pieces


def changed(pieces: list[Piece]) -> bool:
    return any(piece.kind != "same" for piece in pieces)


def render(pieces: list[Piece]) -> Markup:
    """HTML for the diff; the text itself is escaped, only the tags are markup."""
    html = []
    for piece in pieces:
        text = escape(piece.text)
        if piece.kind == "inserted":
            html.append(Markup("<ins>{}</ins>").format(text))
        elif piece.kind == "deleted":
            html.append(Markup("<del>{}</del>").format(text))
        else:
            html.append(text)
    return Markup("").join(html)

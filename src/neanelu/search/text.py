"""The text a document is embedded and indexed by, and its content hash.

Callers (domains) decide which fields make up a document; this module only assembles them the same
way every time, strips HTML, and cuts to a budget so the hash covers exactly what is embedded.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

# WordPiece averages well under one token per 3 characters of catalog text; cutting by characters
# first keeps huge descriptions out of the tokenizer, which then cuts exactly to the model's window.
CHARS_PER_TOKEN = 6

_BLOCK_TAGS = frozenset(
    {
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "section",
        "article",
    }
)
_SPACE = re.compile(r"\s+")


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(value: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed (script and style dropped)."""
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return _SPACE.sub(" ", html.unescape("".join(parser.parts))).strip()


def clean(value: str | None) -> str:
    return _SPACE.sub(" ", value or "").strip()


@dataclass(frozen=True, slots=True)
class DocumentText:
    """`primary` (A weight: the title), `secondary` (B: vendor, type, tags), `rest` (C: metafields,
    description) for the full-text side; `embedding` is all of it, labelled, as one string cut to
    the budget; `content_hash` is of the whole text before the cut."""

    primary: str
    secondary: str
    rest: str
    embedding: str
    content_hash: bytes


def document_text(
    title: str | None,
    labelled: Iterable[tuple[str, str | None]],
    body: Iterable[str | None],
    *,
    max_tokens: int,
) -> DocumentText:
    primary = clean(title)
    pairs = [(label, clean(v)) for label, v in labelled if clean(v)]
    # Labels help the model read the fields; the full-text side indexes the values alone.
    secondary = " ".join(v for _, v in pairs)
    rest = " ".join(clean(b) for b in body if clean(b))
    full = ". ".join(p for p in (primary, ". ".join(f"{k}: {v}" for k, v in pairs), rest) if p)
    embedding = full[: max_tokens * CHARS_PER_TOKEN]
    # The hash covers the whole text, so an edit past the model's window still refreshes the
    # full-text document (and costs one re-embedding).
    return DocumentText(primary, secondary, rest, embedding, content_hash(full))


def content_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()

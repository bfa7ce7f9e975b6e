"""Why a line is refused, and which ids a refused line still names (no servers needed)."""

from __future__ import annotations

import msgspec
import pytest

from neanelu.ingest.bulk_lines import CoreLine
from neanelu.ingest.evidence import named_ids
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import core_builder, refusal, refuse_nul

PRODUCT = b'{"__typename":"Product","id":"gid://shopify/Product/12","title":"%s"}'
T = PRODUCT.index(b"%s")  # where the title's text starts


def refused(line: bytes) -> str:
    """What staging does with each line of a block that holds an escaped NUL: the NUL check,
    then the phase's builder."""
    try:
        refuse_nul(line)
        core_builder()(line, 1, 0)
    except (ValueError, RecursionError) as exc:
        return refusal(line, exc)
    raise AssertionError("the line was accepted")


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        (b"ab\xffc", f"invalid UTF-8 at byte {T + 2} of the line (b'\\xff')"),
        (b"\\ud800x", f"lone UTF-16 surrogate escape \\ud800 at byte {T}"),
        (b"x\\udc00", f"lone UTF-16 surrogate escape \\udc00 at byte {T + 1}"),
        (b"\\ud83d\\ud83d", f"lone UTF-16 surrogate escape \\ud83d at byte {T}"),
        (b"a\x00", f"raw NUL byte at byte {T + 1}"),
        (b"a\\u0000", "NUL character"),
    ],
)
def test_refusals_name_what_is_wrong_and_where(title: bytes, reason: str) -> None:
    assert reason in refused(PRODUCT % title)


def test_paired_and_escaped_surrogates_are_text() -> None:
    # A pair is one character; `\\ud800` in JSON is a backslash and the letters "ud800".
    for title in (b"\\ud83d\\ude00", b"\\\\ud800"):
        row = core_builder()(PRODUCT % title, 1, 0)
        assert row is not None
        assert row[3] == 12


def test_bytes_msgspec_passes_through_raw_are_checked() -> None:
    # selectedOptions is kept as raw JSON: its bytes are not checked by the typed decode.
    line = (
        b'{"__typename":"ProductVariant","id":"gid://shopify/ProductVariant/5",'
        b'"selectedOptions":[{"name":"\xfe"}],"__parentId":"gid://shopify/Product/1"}'
    )
    assert refused(line).startswith(f"invalid UTF-8 at byte {line.index(0xFE)} ")


def test_nesting_too_deep_for_the_decoder_is_a_bad_line() -> None:
    line = PRODUCT.replace(b"}", b',"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}") % b"t"
    assert refused(line) == "nested too deeply to decode"


def test_validation_errors_keep_msgspec_words() -> None:
    reason = refused(b'{"__typename":"Product","id":"gid://shopify/Product/1","tags":[1]}')
    assert reason.startswith("invalid line: Expected `str`, got `int`")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.Decoder(CoreLine).decode(b'{"id":"x"}')


@pytest.mark.parametrize(
    ("phase", "line", "names"),
    [
        (Phase.CORE, PRODUCT % b"\xff", [("P", 12)]),
        (
            Phase.CORE,
            b'{"__typename":"ProductVariant","id":"gid://shopify/ProductVariant/7","t":\xff,'
            b'"__parentId":"gid://shopify/Product/1"}',
            [("V", 7)],
        ),
        # Cut inside the id, or the id unreadable: it names nothing.
        (Phase.CORE, b'{"__typename":"Product","id":"gid://shopify/Product/12', []),
        (Phase.CORE, b'{"__typename":"Product","id":"gid://shopify/Product/\xff12"}', []),
        (
            Phase.METAFIELDS,
            b'{"__typename":"Metafield","id":"gid://shopify/Metafield/3","value":"\xff",'
            b'"__parentId":"gid://shopify/Product/12"}',
            [("MP", 12)],
        ),
        (
            Phase.VARIANT_METAFIELDS,
            b'{"__typename":"ProductVariant","id":"gid://shopify/ProductVariant/8","x":1,}',
            [("MV", 8)],
        ),
        (
            Phase.INVENTORY,
            b'{"__typename":"InventoryLevel","id":"gid://shopify/InventoryLevel/9001?'
            b'inventory_item_id=9","updatedAt":7,"__parentId":"gid://shopify/InventoryItem/9"}',
            [("L", 9001), ("I", 9)],
        ),
        # A number beyond bigint is no id.
        (Phase.CORE, b'{"id":"gid://shopify/Product/9999999999999999999"}', []),
    ],
)
def test_named_ids(phase: Phase, line: bytes, names: list[tuple[str, int]]) -> None:
    assert named_ids(phase, line) == names

"""The result file's Range header, read as Cloud Storage reads it: one range, against Python's slices."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shopify_emulator.files import Span, requested_span


@given(size=st.integers(1, 10_000), first=st.integers(0, 12_000), last=st.integers(0, 12_000))
def test_a_closed_range_is_the_slice_it_names(size: int, first: int, last: int) -> None:
    span = requested_span(f"bytes={first}-{last}", size)
    data = range(size)
    if last < first:
        assert span == Span(0, size, ranged=False)  # invalid: the header is ignored
    elif first >= size:
        assert span is None
    else:
        assert span is not None
        assert span.ranged
        assert data[span.start : span.end] == data[first : last + 1]


@given(size=st.integers(1, 10_000), first=st.integers(0, 12_000))
def test_an_open_range_runs_to_the_end(size: int, first: int) -> None:
    span = requested_span(f"bytes={first}-", size)
    assert span == (Span(first, size, ranged=True) if first < size else None)


@given(size=st.integers(1, 10_000), count=st.integers(0, 12_000))
def test_a_suffix_range_is_the_last_bytes(size: int, count: int) -> None:
    span = requested_span(f"bytes=-{count}", size)
    assert span == (Span(max(0, size - count), size, ranged=True) if count else None)


def test_what_is_not_one_byte_range_gets_the_whole_object() -> None:
    whole = Span(0, 100, ranged=False)
    for header in (
        "",
        "bytes=0-1,5-9",
        "items=0-5",
        "bytes=x-5",
        "bytes=5-y",
        "bytes=-",
        "bytes=5",
    ):
        assert requested_span(header, 100) == whole, header

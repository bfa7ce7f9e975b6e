"""Small inline SVG charts (no JavaScript, no CDN): a polyline per series over a shared axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 560, 140, 24
COLOURS = ("#2f7ed8", "#d9534f", "#5cb85c", "#f0ad4e", "#8e44ad")


@dataclass(frozen=True, slots=True)
class Chart:
    svg: str
    empty: bool


def line_chart(title: str, xs: Sequence[float], series: Mapping[str, Sequence[float]]) -> Chart:
    """Series share the x values; the y axis starts at 0 and ends at the largest value."""
    if len(xs) < 2 or not series:
        return Chart("", True)
    x0, x1 = xs[0], xs[-1]
    top = max((max(v) for v in series.values() if v), default=0) or 1
    span = (x1 - x0) or 1

    def point(x: float, y: float) -> str:
        px = PAD + (x - x0) / span * (WIDTH - 2 * PAD)
        py = HEIGHT - PAD - y / top * (HEIGHT - 2 * PAD)
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
        f'<text class="label" x="{PAD}" y="{PAD - 8}">max {top:g}</text>',
    ]
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(point(x, y) for x, y in zip(xs, values, strict=False))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<text class="label" x="{PAD + 100 + 110 * i}" y="{PAD - 8}" '
            f'fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Chart("".join(parts), False)

"""Reciprocal rank fusion: each list votes 1 / (k + rank) for its items; k = 60 (Cormack et al.)
damps the weight of the very first ranks so neither list dominates."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[K]], *, k: int = RRF_K
) -> list[tuple[K, float, dict[str, int]]]:
    """Items by fused score, best first, each with its 1-based rank in every list that had it.
    Ties keep the order of first appearance (lists in the mapping's order)."""
    scores: dict[K, float] = {}
    ranks: dict[K, dict[str, int]] = {}
    for name, items in rankings.items():
        for position, item in enumerate(items, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + position)
            ranks.setdefault(item, {})[name] = position
    order = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in order]

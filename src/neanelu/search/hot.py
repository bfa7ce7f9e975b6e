"""The hot cache: active shops' vectors in a Redis Query Engine index (`FT.CREATE ... VECTOR HNSW`
with a TAG field for the shop), one index per model. Every query names the shop's tag, so one
shop's search never returns another's vectors. PostgreSQL stays the truth: a Redis without the
query engine, a Redis that is down, or a shop not loaded ("cold") all answer `None`, and the
caller searches PostgreSQL instead."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from neanelu.search.provider import Vectors

log = logging.getLogger(__name__)

# The same HNSW build as pgvector's own partitions (migration 0012, measured: docs/search.md);
# EF_RUNTIME stays above the SQL side's ef_search: the one index holds every hot shop and a
# search filters it by the shop's tag, which HNSW pays for in recall (worst shop 0.920 at 400 on
# 1M vectors over 20 shops, docs/search.md).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
EF_RUNTIME = 400
# After Redis said it has no query engine (or was down), ask again only this much later.
RECHECK_S = 30.0


def _model_key(model: str, dimension: int) -> str:
    return hashlib.sha256(f"{model}/{dimension}".encode()).hexdigest()[:16]


def _tag(shop_id: UUID) -> str:
    # A UUID's hex has no characters the TAG query syntax would need escaped.
    return shop_id.hex


class HotIndex:
    def __init__(self, redis: Redis, model: str, dimension: int, *, prefix: str = "neanelu:search"):
        self._redis = redis
        self._dimension = dimension
        key = _model_key(model, dimension)
        self.index = f"{prefix}:idx:{key}"
        self._doc_prefix = f"{prefix}:v:{key}:"
        self._hot_prefix = f"{prefix}:hot:{key}:"
        self._created = False
        self._unavailable_until = 0.0

    async def _command(self, *args: str | bytes) -> Any:
        # redis-py's execute_command is untyped; the Query Engine commands have no typed wrappers.
        return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]

    def _doc(self, shop_id: UUID, product_id: int) -> str:
        return f"{self._doc_prefix}{shop_id.hex}:{product_id}"

    async def ensure(self) -> bool:
        """Create the index if missing; False when this Redis has no query engine or is down."""
        if self._created:
            return True
        if time.monotonic() < self._unavailable_until:
            return False
        try:
            await self._command("FT.INFO", self.index)
        except ResponseError as exc:
            if "unknown command" in str(exc).lower():
                self._unavailable_until = time.monotonic() + RECHECK_S
                return False
            try:
                await self._command(
                    "FT.CREATE",
                    self.index,
                    "ON",
                    "HASH",
                    "PREFIX",
                    "1",
                    self._doc_prefix,
                    "SCHEMA",
                    "shop",
                    "TAG",
                    "product",
                    "NUMERIC",
                    "embedding",
                    "VECTOR",
                    "HNSW",
                    "10",
                    "TYPE",
                    "FLOAT32",
                    "DIM",
                    str(self._dimension),
                    "DISTANCE_METRIC",
                    "COSINE",
                    "M",
                    str(HNSW_M),
                    "EF_CONSTRUCTION",
                    str(HNSW_EF_CONSTRUCTION),
                )
            except ResponseError as create_exc:
                if "already exists" not in str(create_exc).lower():
                    log.warning("search hot cache: cannot create %s: %s", self.index, create_exc)
                    return False
        except RedisError as exc:
            log.warning("search hot cache unavailable: %s", exc)
            self._unavailable_until = time.monotonic() + RECHECK_S
            return False
        self._created = True
        return True

    async def is_hot(self, shop_id: UUID) -> bool:
        try:
            return bool(await self._redis.exists(self._hot_prefix + shop_id.hex))
        except RedisError:
            return False

    async def put(self, shop_id: UUID, product_ids: Sequence[int], vectors: Vectors) -> None:
        """Write (or overwrite, after a re-embedding) vectors of a shop already hot."""
        if not product_ids or not await self.ensure():
            return
        try:
            await self._write(shop_id, product_ids, vectors)
        except RedisError as exc:
            # A re-embedding that did not reach Redis must not leave the old vector answering.
            log.warning("search hot cache: write failed, shop %s goes cold: %s", shop_id, exc)
            await self.cool(shop_id)

    async def _write(self, shop_id: UUID, product_ids: Sequence[int], vectors: Vectors) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for pid, vector in zip(product_ids, vectors, strict=True):
                pipe.hset(
                    self._doc(shop_id, pid),
                    mapping={
                        "shop": _tag(shop_id),
                        "product": pid,
                        "embedding": np.asarray(vector, np.float32).tobytes(),
                    },
                )
            await pipe.execute()

    async def mark_hot(self, shop_id: UUID) -> bool:
        try:
            await self._redis.set(self._hot_prefix + shop_id.hex, "1")
        except RedisError as exc:
            log.warning("search hot cache: cannot mark shop %s hot: %s", shop_id, exc)
            return False
        return True

    async def remove(self, shop_id: UUID, product_ids: Sequence[int]) -> None:
        if not product_ids:
            return
        try:
            await self._redis.delete(*(self._doc(shop_id, p) for p in product_ids))
        except RedisError as exc:
            # A removal that did not reach Redis must not leave a stale hit: the shop goes cold
            # and is served from PostgreSQL until it is loaded again.
            log.warning("search hot cache: removal failed, shop %s goes cold: %s", shop_id, exc)
            await self.cool(shop_id)

    async def cool(self, shop_id: UUID) -> None:
        try:
            await self._redis.delete(self._hot_prefix + shop_id.hex)
        except RedisError:
            log.warning("search hot cache: cannot mark shop %s cold", shop_id)

    async def knn(self, shop_id: UUID, vector: Vectors, k: int) -> list[tuple[int, float]] | None:
        """The shop's k nearest products with cosine similarity; None: ask PostgreSQL."""
        if not await self.is_hot(shop_id) or not await self.ensure():
            return None
        query = f"(@shop:{{{_tag(shop_id)}}})=>[KNN {int(k)} @embedding $vec EF_RUNTIME {EF_RUNTIME} AS dist]"
        try:
            reply = await self._command(
                "FT.SEARCH",
                self.index,
                query,
                "PARAMS",
                "2",
                "vec",
                np.asarray(vector, np.float32).tobytes(),
                "SORTBY",
                "dist",
                "RETURN",
                "2",
                "product",
                "dist",
                "LIMIT",
                "0",
                str(int(k)),
                "DIALECT",
                "2",
            )
        except RedisError as exc:
            log.warning("search hot cache: query failed, PostgreSQL answers: %s", exc)
            return None
        out: list[tuple[int, float]] = []
        for values in _documents(reply):
            product = values.get(b"product", values.get("product"))
            dist = values.get(b"dist", values.get("dist"))
            if product is not None and dist is not None:
                out.append((int(product), 1.0 - float(dist)))
        return sorted(out, key=lambda r: (-r[1], r[0]))


def _documents(reply: Any) -> list[dict[Any, Any]]:
    """FT.SEARCH documents' fields, from a RESP3 map or a RESP2 list."""
    if isinstance(reply, dict):
        results = reply.get(b"results", reply.get("results")) or []
        return [r.get(b"extra_attributes", r.get("extra_attributes")) or {} for r in results]
    # RESP2: [total, key, [field, value, ...], key, [...], ...]
    return [dict(zip(f[::2], f[1::2], strict=True)) for f in reply[2::2]]

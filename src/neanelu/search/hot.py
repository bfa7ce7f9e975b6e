"""The hot cache: active shops' vectors in Redis Query Engine indexes (`FT.CREATE ... VECTOR HNSW`
with a TAG field for the shop), one index per shop and model. A shop's search runs in its own
index and names its tag as well, so one shop's search never returns another's vectors. PostgreSQL
stays the truth: a Redis without the query engine, a Redis that is down, or a shop not loaded
("cold") all answer `None`, and the caller searches PostgreSQL instead.

Why an index per shop: one index for every hot shop, filtered by the shop's tag, lost recall on
the small shops (HNSW walks the whole graph's neighbourhoods and filters after; worst shop 0.920
of the true top 10 at EF_RUNTIME 400, 1M vectors over 20 shops) and paid for the largest graph on
every query (p95 ~5 ms). A shop's own graph is what pgvector's own partitions give it too."""

from __future__ import annotations

import asyncio
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

DEFAULT_PREFIX = "neanelu:search"
# Each graph holds one shop, as each of pgvector's own partitions does, searched as broadly as its
# ef_search. M 16 (pgvector's builds moved to 24 after one fresh parallel build read 0.978): every
# shop's recall@10 read 0.998-1.000 here at EF_RUNTIME 100, 1M vectors over 20 shops (docs/search.md).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
EF_RUNTIME = 100
INDEXING_POLL_S = 0.5
# A cold shop's searches ask for its loading at most this often from one process (the job's id
# dedups across processes too).
WARM_ASK_S = 60.0
# After Redis said it has no query engine (or was down), ask again only this much later.
RECHECK_S = 30.0


def _model_key(model: str, dimension: int) -> str:
    return hashlib.sha256(f"{model}/{dimension}".encode()).hexdigest()[:16]


def _tag(shop_id: UUID) -> str:
    # A UUID's hex has no characters the TAG query syntax would need escaped.
    return shop_id.hex


def _no_engine(exc: ResponseError) -> bool:
    return "unknown command" in str(exc).lower()


def _no_index(exc: ResponseError) -> bool:
    text = str(exc).lower()
    return "no such index" in text or "unknown index" in text


class HotIndex:
    """`idle_s` > 0: shops are hot while searched. Every search writes the shop's `seen` mark with
    that expiry, a search of a cold shop asks to have it loaded (`take_warm_request`), and
    `drop_idle` drops hot shops whose mark expired. 0: loading and dropping are an operator's."""

    def __init__(
        self,
        redis: Redis,
        model: str,
        dimension: int,
        *,
        prefix: str = DEFAULT_PREFIX,
        idle_s: int = 0,
    ):
        self._redis = redis
        self.model = model
        self._dimension = dimension
        self.idle_s = idle_s
        key = _model_key(model, dimension)
        # Before indexes per shop, one index held the model's every hot shop.
        self._shared_index = f"{prefix}:idx:{key}"
        self._index_prefix = f"{prefix}:idx:{key}:"
        self._doc_prefix = f"{prefix}:v:{key}:"
        self._hot_prefix = f"{prefix}:hot:{key}:"
        self._seen_prefix = f"{prefix}:seen:{key}:"
        self._engine = False
        self._indexed: set[UUID] = set()
        # Shops a search found cold, and when this process last asked to load each.
        self._found_cold: set[UUID] = set()
        self._asked: dict[UUID, float] = {}
        self._unavailable_until = 0.0

    async def _command(self, *args: str | bytes) -> Any:
        # redis-py's execute_command is untyped; the Query Engine commands have no typed wrappers.
        return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]

    def index(self, shop_id: UUID) -> str:
        return f"{self._index_prefix}{shop_id.hex}"

    def _doc(self, shop_id: UUID, product_id: int) -> str:
        return f"{self._doc_prefix}{shop_id.hex}:{product_id}"

    async def ensure(self) -> bool:
        """Whether this Redis has a query engine (asked once, or again RECHECK_S after a no);
        the first time, the shared index of earlier versions is dropped with its documents and
        every shop of this model goes cold, to be loaded again into its own index."""
        if self._engine:
            return True
        if time.monotonic() < self._unavailable_until:
            return False
        try:
            if self._shared_index in await _index_names(self._redis):
                await self._retire_shared_index()
        except RedisError as exc:
            if not (isinstance(exc, ResponseError) and _no_engine(exc)):
                log.warning("search hot cache unavailable: %s", exc)
            self._unavailable_until = time.monotonic() + RECHECK_S
            return False
        self._engine = True
        return True

    async def _retire_shared_index(self) -> None:
        try:
            await self._command("FT.DROPINDEX", self._shared_index, "DD")
        except ResponseError as exc:
            if not _no_index(exc):
                raise
            return  # another process retired it
        await _delete_matching(self._redis, f"{self._hot_prefix}*")
        log.warning(
            "search hot cache: the shared index of earlier versions is gone; warm shops again"
        )

    async def _ensure_shop(self, shop_id: UUID) -> None:
        """The shop's index, created before its first document so that every HSET is indexed
        as it is written (an index created over existing keys fills in the background)."""
        if shop_id in self._indexed:
            return
        try:
            await self._command(
                "FT.CREATE",
                self.index(shop_id),
                "ON",
                "HASH",
                "PREFIX",
                "1",
                f"{self._doc_prefix}{shop_id.hex}:",
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
        except ResponseError as exc:
            if "already exists" not in str(exc).lower():
                raise
        self._indexed.add(shop_id)

    async def is_hot(self, shop_id: UUID) -> bool:
        try:
            return bool(await self._redis.exists(self._hot_prefix + shop_id.hex))
        except RedisError:
            return False

    async def reset(self, shop_id: UUID) -> bool:
        """The shop cold and its index dropped with its documents, before it is loaded afresh
        (so nothing deleted while it was cold survives); False without a query engine."""
        if not await self.ensure():
            return False
        await self.cool(shop_id)
        try:
            await self._command("FT.DROPINDEX", self.index(shop_id), "DD")
        except ResponseError as exc:
            if not _no_index(exc):
                log.warning("search hot cache: cannot drop shop %s's index: %s", shop_id, exc)
                return False
        except RedisError as exc:
            log.warning("search hot cache: cannot drop shop %s's index: %s", shop_id, exc)
            return False
        self._indexed.discard(shop_id)
        return True

    async def put(self, shop_id: UUID, product_ids: Sequence[int], vectors: Vectors) -> bool:
        """Write (or overwrite, after a re-embedding) vectors of a shop already hot, or being
        loaded; False when they did not reach Redis (and the shop is cold)."""
        if not product_ids:
            return True
        if not await self.ensure():
            return False
        try:
            await self._ensure_shop(shop_id)
            await self._write(shop_id, product_ids, vectors)
        except RedisError as exc:
            # A re-embedding that did not reach Redis must not leave the old vector answering.
            log.warning("search hot cache: write failed, shop %s goes cold: %s", shop_id, exc)
            await self.cool(shop_id)
            return False
        return True

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

    async def wait_indexed(self, shop_id: UUID, *, timeout_s: float = 3600.0) -> bool:
        """Until the query engine has every written vector of the shop in its graph: it builds
        HNSW in background threads, and a search meanwhile also scans the vectors still queued,
        right but slow (a 278k-vector shop loads in ~4 minutes, and its last ~20% indexed on
        after the last write). False on a timeout or an error."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                info = await self._command("FT.INFO", self.index(shop_id))
            except RedisError as exc:
                log.warning("search hot cache: cannot read shop %s's index: %s", shop_id, exc)
                return False
            fields = (
                info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=True))
            )
            if _text(fields.get(b"indexing", fields.get("indexing", 0))) in ("0", "0.0"):
                return True
            await asyncio.sleep(INDEXING_POLL_S)
        return False

    def take_warm_request(self, shop_id: UUID) -> bool:
        """True when a search found the shop cold, shops are hot while searched, and this
        process has not asked to load it in the last WARM_ASK_S: the caller queues the loading."""
        if self.idle_s <= 0 or shop_id not in self._found_cold:
            return False
        now = time.monotonic()
        if now - self._asked.get(shop_id, -WARM_ASK_S) < WARM_ASK_S:
            return False
        self._found_cold.discard(shop_id)
        self._asked[shop_id] = now
        return True

    async def drop_idle(self) -> list[UUID]:
        """Hot shops not searched for `idle_s` (their seen mark expired): cold, and their index
        dropped with its documents. Nothing when `idle_s` is 0."""
        if self.idle_s <= 0 or not await self.ensure():
            return []
        idle: list[UUID] = []
        try:
            async for key in self._redis.scan_iter(match=f"{self._hot_prefix}*", count=1000):
                shop_hex = _text(key)[len(self._hot_prefix) :]
                if not await self._redis.exists(self._seen_prefix + shop_hex):
                    idle.append(UUID(hex=shop_hex))
        except RedisError as exc:
            log.warning("search hot cache: cannot list hot shops: %s", exc)
            return []
        return [shop for shop in idle if await self.reset(shop)]

    async def mark_hot(self, shop_id: UUID) -> bool:
        """Hot, and seen now (a shop loaded by hand stays for `idle_s` unsearched too)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._hot_prefix + shop_id.hex, "1")
                if self.idle_s > 0:
                    pipe.set(self._seen_prefix + shop_id.hex, "1", ex=self.idle_s)
                await pipe.execute()
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
        if not await self.ensure():
            return None
        # The shop's own index holds its documents only (its key prefix), so the query needs no
        # filter: a TAG filter made RediSearch's planner brute-force small shops (10 ms for
        # 14,000 vectors against 1 ms for the graph). The tag is still read back and checked.
        query = f"*=>[KNN {int(k)} @embedding $vec EF_RUNTIME {EF_RUNTIME} AS dist]"
        try:
            # One round trip: the shop seen, whether it is hot, and its answer (dropped if not).
            async with self._redis.pipeline(transaction=False) as pipe:
                if self.idle_s > 0:
                    pipe.set(self._seen_prefix + shop_id.hex, "1", ex=self.idle_s)
                pipe.exists(self._hot_prefix + shop_id.hex)
                # No SORTBY: KNN yields exactly its k nearest, sorted below.
                pipe.execute_command(
                    "FT.SEARCH",
                    self.index(shop_id),
                    query,
                    "PARAMS",
                    "2",
                    "vec",
                    np.asarray(vector, np.float32).tobytes(),
                    "RETURN",
                    "3",
                    "shop",
                    "product",
                    "dist",
                    "LIMIT",
                    "0",
                    str(int(k)),
                    "DIALECT",
                    "2",
                )
                *_, hot, reply = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            log.warning("search hot cache: query failed, PostgreSQL answers: %s", exc)
            return None
        if not hot or isinstance(hot, ResponseError):
            if self.idle_s > 0:
                self._found_cold.add(shop_id)
            return None
        if isinstance(reply, ResponseError):
            if _no_index(reply):
                # Marked hot with no index (Redis lost it): cold until loaded again.
                await self.cool(shop_id)
            else:
                log.warning("search hot cache: query failed, PostgreSQL answers: %s", reply)
            return None
        tag = _tag(shop_id)
        out: list[tuple[int, float]] = []
        for values in _documents(reply):
            shop = values.get(b"shop", values.get("shop"))
            product = values.get(b"product", values.get("product"))
            dist = values.get(b"dist", values.get("dist"))
            if shop is None or _text(shop) != tag:
                # Never served: only a key written under this shop's prefix by hand gets here.
                log.error("search hot cache: shop %s's index holds another shop's vector", shop_id)
                continue
            if product is not None and dist is not None:
                out.append((int(product), 1.0 - float(dist)))
        return sorted(out, key=lambda r: (-r[1], r[0]))


async def forget_shop(redis: Redis, shop_id: UUID, *, prefix: str = DEFAULT_PREFIX) -> int:
    """After a shop's purge: its indexes of every model dropped with their documents, and any
    document or hot mark left (of the shared index of earlier versions) deleted. Returns the keys
    deleted besides the indexes' own; a Redis that is down logs and leaves them (the shop's id
    never returns, so nothing left can be served)."""
    suffix = f":{shop_id.hex}"
    try:
        try:
            names = await _index_names(redis)
        except ResponseError as exc:
            if not _no_engine(exc):
                raise
            names = set()
        for name in names:
            if name.startswith(f"{prefix}:idx:") and name.endswith(suffix):
                await redis.execute_command("FT.DROPINDEX", name, "DD")  # type: ignore[no-untyped-call]
        deleted = await _delete_matching(redis, f"{prefix}:v:*:{shop_id.hex}:*")
        return deleted + await _delete_matching(redis, f"{prefix}:hot:*:{shop_id.hex}")
    except RedisError as exc:
        log.warning("search hot cache: shop %s not forgotten in Redis: %s", shop_id, exc)
        return 0


async def _index_names(redis: Redis) -> set[str]:
    """Every Query Engine index of this Redis (ResponseError without the query engine)."""
    return {_text(n) for n in await redis.execute_command("FT._LIST")}  # type: ignore[no-untyped-call]


async def _delete_matching(redis: Redis, pattern: str) -> int:
    deleted = 0
    batch: list[Any] = []
    async for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await redis.delete(*batch)
            batch.clear()
    if batch:
        deleted += await redis.delete(*batch)
    return deleted


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _documents(reply: Any) -> list[dict[Any, Any]]:
    """FT.SEARCH documents' fields, from a RESP3 map or a RESP2 list."""
    if isinstance(reply, dict):
        results = reply.get(b"results", reply.get("results")) or []
        return [r.get(b"extra_attributes", r.get("extra_attributes")) or {} for r in results]
    # RESP2: [total, key, [field, value, ...], key, [...], ...]
    return [dict(zip(f[::2], f[1::2], strict=True)) for f in reply[2::2]]

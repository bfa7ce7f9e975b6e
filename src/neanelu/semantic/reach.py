"""How much of a shop's own HNSW graph a search reaches, and a build that checks it.

pgvector's parallel HNSW builds are not the same twice, and on a clustered catalog one can leave a
region that no search from the graph's entry point gets to: measured (docs/search.md), a fresh build
of a 277,960-vector shop found 99.3% of its own stored vectors searched by themselves, and one
query's whole true top 10 lay in the rest (none of it found at ef_search 100, 400 or 1,000), while
the build of the same vectors a day before found all of it. So a partition's index is checked after
it is built: a sample of the shop's stored vectors is searched by itself, at the search's own
ef_search, and a vector counts as reached when the top 10 holds one at distance ~0 (itself, or an
identical duplicate, which real catalogs have). Below the floor the index is built again.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg import sql

from neanelu.db.pool import Conn, bind_tenant
from neanelu.db.rows import fetch_all, fetch_scalar
from neanelu.semantic.search import EF_SEARCH

# 4,000: a graph that misses 0.7% of its vectors reads 0.993 +- 0.0013 (one standard deviation),
# clear of the floor; 1,000 read that same graph at 0.991 once and 0.998 another time. About 5 ms
# a search on a 278k-vector shop: ~20 s, against minutes for its build.
SAMPLE = 4000
# The builds measured: 99.3% reach went with a lost query (0.960 recall@10 for the shop), the good
# ones read 99.85-100% (ef_construction 200); the largest shop's builds at 400 read
# 0.9971-0.9988, and with m 32 (migration 0018) 0.9982-0.9992, clear of the floor.
MIN_REACH = 0.995
# Cosine distance of a vector to itself, after float rounding.
_SAME = 1e-5


@dataclass(frozen=True, slots=True)
class Reach:
    model: str
    dimension: int
    sampled: int
    reached: int

    @property
    def fraction(self) -> float:
        return self.reached / self.sampled if self.sampled else 1.0


@dataclass(frozen=True, slots=True)
class PartitionBuild:
    partition: str
    # The last measurement of each model's index, and how many times it was built again.
    reach: tuple[Reach, ...]
    rebuilds: int

    def short(self, floor: float) -> list[Reach]:
        return [r for r in self.reach if r.fraction < floor]


@dataclass(frozen=True, slots=True)
class _Model:
    model: str
    dimension: int


@dataclass(frozen=True, slots=True)
class _Sample:
    text: str


async def measure_reach(
    conn: Conn, shop_id: UUID, model: str, dimension: int, sample: int = SAMPLE
) -> Reach:
    """The share of `sample` stored vectors of the shop's model that find themselves."""
    typ = sql.SQL("vector({})").format(sql.Literal(dimension))
    async with conn.transaction():
        await bind_tenant(conn, shop_id)
        await conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(EF_SEARCH)))
        picked = await fetch_all(
            conn,
            _Sample,
            "SELECT embedding::text AS text FROM embeddings WHERE shop_id = %s AND model = %s "
            "AND dimension = %s ORDER BY random() LIMIT %s",
            [shop_id, model, dimension, sample],
        )
        # As the search asks (semantic/search.py): model and dimension as literals, so the plan
        # can prove the partial index's predicate; planned each time.
        nearest = sql.SQL(
            "SELECT min(d) FROM (SELECT e.embedding::{t} <=> %s::{t} AS d FROM embeddings e "
            "WHERE e.shop_id = %s AND e.model = {m} AND e.dimension = {n} "
            "ORDER BY e.embedding::{t} <=> %s::{t} LIMIT 10) AS top"
        ).format(t=typ, m=sql.Literal(model), n=sql.Literal(dimension))
        reached = 0
        for row in picked:
            d = await fetch_scalar(
                conn, float, nearest, (row.text, shop_id, row.text), prepare=False
            )
            reached += d is not None and d <= _SAME
    return Reach(model, dimension, len(picked), reached)


async def build_own_partition(
    owner: Conn,
    shop_id: UUID,
    maintenance_work_mem: str,
    *,
    min_reach: float = MIN_REACH,
    rebuilds: int = 2,
    sample: int = SAMPLE,
) -> PartitionBuild:
    """The shop's own partition with an HNSW index per model (`app_embeddings_own_partition`),
    each index measured and, while it reaches less than `min_reach`, built again (at most
    `rebuilds` times in all). `owner`: a connection of the owner role, in autocommit mode."""
    async with owner.transaction():
        part = await fetch_scalar(
            owner,
            str,
            "SELECT app_embeddings_own_partition(%s, %s)",
            (shop_id, maintenance_work_mem),
        )
    if part is None:
        raise RuntimeError(f"app_embeddings_own_partition returned no partition for {shop_id}")
    async with owner.transaction():
        await bind_tenant(owner, shop_id)
        models = await fetch_all(
            owner,
            _Model,
            sql.SQL("SELECT DISTINCT model, dimension FROM {} ORDER BY model").format(
                sql.Identifier(part)
            ),
        )
    measured: list[Reach] = []
    built_again = 0
    for m in models:
        reach = await measure_reach(owner, shop_id, m.model, m.dimension, sample)
        while reach.fraction < min_reach and built_again < rebuilds:
            await _build_again(owner, part, m, maintenance_work_mem)
            built_again += 1
            reach = await measure_reach(owner, shop_id, m.model, m.dimension, sample)
        measured.append(reach)
    return PartitionBuild(part, tuple(measured), built_again)


async def _build_again(owner: Conn, part: str, m: _Model, maintenance_work_mem: str) -> None:
    """The model's index dropped and built anew (a parallel build is a new graph each time)."""
    index_of = "SELECT app_embeddings_index_model(%s, %s, %s, %s)"
    args = (part, m.model, m.dimension, maintenance_work_mem)
    async with owner.transaction():
        name = await fetch_scalar(owner, str, index_of, args)
        if name is None:
            raise RuntimeError(f"no HNSW index name for {part} / {m.model}")
        await owner.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        await fetch_scalar(owner, str, index_of, args)

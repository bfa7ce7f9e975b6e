"""Row ids of bulk merges: valid, time-ordered UUIDv7s, distinct within and across batches."""

from __future__ import annotations

import time
import uuid

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn
from neanelu.ingest.merge import batch_ids


async def _ids(
    pool: AsyncConnectionPool[Conn], params: dict[str, int], lines: int
) -> list[uuid.UUID]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT app_batch_uuidv7(%(id_hi)s, %(id_lo)s, n) FROM generate_series(1, %(lines)s) n",
            {**params, "lines": lines},
        )
        return [row[0] for row in await cur.fetchall()]


async def test_batch_ids_are_uuidv7_of_now_and_distinct(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    before = time.time()
    first = await _ids(app_pool, batch_ids(), 5000)
    second = await _ids(app_pool, batch_ids(), 5000)  # same line numbers, another batch
    after = time.time()
    every = first + second
    assert len(set(every)) == len(every)
    for value in every:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        millis = value.int >> 80
        assert before * 1000 - 1 <= millis <= after * 1000 + 1
    # The line number is the counter: ids of one batch follow the file's order.
    assert first == sorted(first)


async def test_line_numbers_beyond_32_bits_still_give_valid_ids(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    params = batch_ids()
    async with app_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT app_batch_uuidv7(%(id_hi)s, %(id_lo)s, %(n)s)", {**params, "n": 2**40 + 3}
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0].version == 7
    assert row[0].variant == uuid.RFC_4122

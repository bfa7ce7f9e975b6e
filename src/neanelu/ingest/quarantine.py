"""Bad lines are kept, not dropped: each with its line number, byte offset and reason.

The staging connection is busy with COPY while lines arrive, so bad lines are written through a
second connection in small batches, inside the tenant scope (the quarantine is a tenant table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope

_FLUSH_EVERY = 500
_MAX_LINE_CHARS = 8192

INSERT = (
    "INSERT INTO sync_quarantine (shop_id, run_id, phase, line_no, byte_offset, reason, line) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, phase, line_no) DO NOTHING"
)


@dataclass(slots=True)
class QuarantineSink:
    pool: AsyncConnectionPool[Conn]
    shop_id: UUID
    run_id: UUID
    phase: str
    count: int = 0
    _pending: list[tuple[object, ...]] = field(default_factory=list)

    async def add(self, line_no: int, offset: int, reason: str, line: bytes) -> None:
        self.count += 1
        text = line[:_MAX_LINE_CHARS].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        self._pending.append(
            (self.shop_id, self.run_id, self.phase, line_no, offset, reason[:500], text)
        )
        if len(self._pending) >= _FLUSH_EVERY:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        async with tenant_scope(self.pool, self.shop_id) as conn, conn.cursor() as cur:
            await cur.executemany(INSERT, rows)

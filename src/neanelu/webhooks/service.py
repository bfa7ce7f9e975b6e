"""Recording deliveries: short transactions, no Shopify call, no Redis round trip.

A delivery's inbox row and its job's outbox row commit together, and the request is answered only
after that commit: a delivery is either recorded and queued, or neither (Shopify then retries it).
Under load, deliveries that arrive while a transaction is in flight share the next one (group
commit): the commit and its round trips are paid once per batch instead of once per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from opentelemetry.context import Context
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, bind_tenant, global_scope, single_trip_transaction
from neanelu.handles import process_deliveries
from neanelu.shops import repository as shops
from neanelu.shops.repository import ShopStatus
from neanelu.telemetry.tracing import current_context, within
from neanelu.webhooks import repository as inbox
from neanelu.webhooks import topics
from neanelu.webhooks.repository import NewDelivery

log = logging.getLogger(__name__)

# The queue group of compliance deliveries (every shop's): never paused by an uninstall.
COMPLIANCE_GROUP = "compliance"


class ShopDirectory:
    """Shop id and status by domain, cached for a few seconds: every delivery needs them and
    they change only on install and uninstall (which the handlers re-check anyway).

    No delivery waits for a look-up in the steady state, and an answer is never older than
    `ttl_s`: an entry is refreshed in the background once it is `refresh_after` of its
    lifetime old, and concurrent misses of one domain share one query. Before, every request
    arriving while an entry was expired and its re-read in flight ran a query of its own: a herd
    of pool checkouts every few seconds, a tenth of the server's time under load and a spike in
    the latency of every delivery caught in it.
    """

    def __init__(
        self, ttl_s: float = 5.0, max_entries: int = 100_000, refresh_after: float = 0.8
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.refresh_after = refresh_after
        self._entries: dict[str, _CachedShop] = {}
        self._loading: dict[str, asyncio.Task[ShopStatus | None]] = {}

    async def lookup(self, pool: AsyncConnectionPool[Conn], domain: str) -> tuple[UUID, str] | None:
        hit = self._entries.get(domain)
        if hit is not None:
            now = time.monotonic()
            if hit.expires_at > now:
                if hit.refresh_at <= now and domain not in self._loading:
                    # Served from the cache meanwhile: the answer is still within its TTL.
                    self._start_load(pool, domain).add_done_callback(_consume_failure)
                return hit.found
        task = self._loading.get(domain) or self._start_load(pool, domain)
        # shield: a caller that goes away (client disconnect) does not cancel the shared query.
        found = await asyncio.shield(task)
        return (found.id, found.status) if found else None

    def forget(self, domain: str) -> None:
        self._entries.pop(domain, None)

    def _start_load(
        self, pool: AsyncConnectionPool[Conn], domain: str
    ) -> asyncio.Task[ShopStatus | None]:
        task = asyncio.create_task(self._load(pool, domain), name="webhook-shop-lookup")
        self._loading[domain] = task
        return task

    async def _load(self, pool: AsyncConnectionPool[Conn], domain: str) -> ShopStatus | None:
        try:
            started = time.monotonic()
            async with global_scope(pool) as conn:
                found = await shops.lookup_status(conn, domain)
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            # Aged from before the query: what it read can be no older than that.
            self._entries[domain] = _CachedShop(
                expires_at=started + self.ttl_s,
                refresh_at=started + self.ttl_s * self.refresh_after,
                found=(found.id, found.status) if found else None,
            )
            return found
        finally:
            self._loading.pop(domain, None)


@dataclass(frozen=True, slots=True)
class _CachedShop:
    expires_at: float
    refresh_at: float
    found: tuple[UUID, str] | None


def _consume_failure(task: asyncio.Task[ShopStatus | None]) -> None:
    # A background refresh that failed (PostgreSQL away) leaves the entry to expire; the next
    # delivery after that queries in the foreground and gets the error itself.
    if not task.cancelled() and task.exception() is not None:
        log.warning("shop look-up refresh failed: %s", type(task.exception()).__name__)


@dataclass(slots=True)
class _Pending:
    shop_id: UUID
    delivery: NewDelivery
    done: asyncio.Future[int | None] = field(repr=False)
    # The request's trace: the batch is written in its first delivery's, so the job queued for
    # it continues that trace (a lingering writer outlives the request that started it).
    trace: Context = field(repr=False)


async def record_deliveries(conn: Conn, items: list[tuple[UUID, NewDelivery]]) -> list[int | None]:
    """Insert the deliveries and queue the new ones in one transaction on `conn` (which must be
    idle). Returns, per item, its inbox id when it was new, else None (a duplicate).

    One round trip per batch however large it is: BEGIN, each shop's tenant scope and its insert
    (which writes the shop's outbox rows itself) and COMMIT travel together, and the answers are
    read once committed. Each wait for PostgreSQL is a wake-up of the server process and of the
    backend, and a delivery waits for every one its batch makes.
    """
    by_shop: dict[UUID, list[NewDelivery]] = defaultdict(list)
    for shop_id, delivery in items:
        by_shop[shop_id].append(delivery)
    # One job per shop per batch (per group: compliance requests go to a group of their own, as
    # an uninstall pauses the shop's group and shop/redact comes after the uninstall): the
    # outbox, the relay and the queue carry a row per batch, not per delivery, and the shop's
    # deliveries are applied in the order they came.
    job = process_deliveries.outbox_job()
    sent = []
    async with single_trip_transaction(conn):
        for shop_id, deliveries in by_shop.items():
            # The inbox is a tenant table: each shop's rows are written under its own scope
            # (SET LOCAL semantics: it ends with this transaction).
            await bind_tenant(conn, shop_id)
            cur = await inbox.insert_and_queue(
                conn,
                shop_id,
                deliveries,
                job,
                compliance_topics=topics.COMPLIANCE,
                compliance_group=COMPLIANCE_GROUP,
            )
            sent.append((shop_id, cur))
    new_ids: dict[tuple[UUID, str], int] = {}
    for shop_id, cur in sent:
        for webhook_id, inbox_id in (await inbox.inserted_ids(cur)).items():
            new_ids[(shop_id, webhook_id)] = inbox_id
    # pop: a webhook id twice in one batch is new once, a duplicate the second time.
    return [new_ids.pop((shop_id, d.webhook_id), None) for shop_id, d in items]


class InboxWriter:
    """Group commit for webhook ingress: up to `writers` transactions in flight; deliveries that
    arrive meanwhile wait (at most `max_batch` per transaction) for the next one."""

    def __init__(
        self,
        writers: int = 2,
        max_batch: int = 200,
        overlap_after_s: float = 0.005,
        spawn_backlog: int = 8,
        linger_s: float = 1.0,
        gather_s: float = 0.001,
    ) -> None:
        self.writers = writers
        self.max_batch = max_batch
        # Another transaction starts beside the one in flight only when at least `spawn_backlog`
        # deliveries wait and that one has taken `overlap_after_s` (its commit waits on a slow
        # disk: a second overlaps the wait), or when more wait than one batch takes. Otherwise
        # one writer batches everything: a second halves the batches and pays a commit and its
        # round trips per half (when it joined at any backlog of 8, a tenth of the throughput),
        # and one joining for whatever single delivery waits writes batches of one.
        self.overlap_after_s = overlap_after_s
        self.spawn_backlog = spawn_backlog
        # A writer with nothing to do keeps its connection this long for the next delivery: the
        # pool checks every connection it hands out (a round trip), which at a steady rate was
        # paid again by nearly every batch.
        self.linger_s = linger_s
        self.gather_s = gather_s
        self._pending: list[_Pending] = []
        self._active = 0
        self._in_flight: list[float] = []  # when each batch being written started
        self._idle = 0  # writers lingering with their connection
        self._closing = False
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(
        self, pool: AsyncConnectionPool[Conn], shop_id: UUID, delivery: NewDelivery
    ) -> int | None:
        """The inbox id once committed (None for a duplicate); raises what the write raised."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(shop_id, delivery, done, current_context()))
        if self._active == 0 or (
            self._idle == 0 and self._active < self.writers and self._should_take()
        ):
            self._active += 1
            # A context of its own: it serves many requests, not the one that happened to start it.
            task = asyncio.create_task(
                self._drain(pool), name="webhook-inbox-writer", context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._arrived.set()  # a lingering writer, if there is one, takes it when it should
        return await done

    def _should_take(self) -> bool:
        """Whether a writer that is free should start a batch now (see `overlap_after_s`)."""
        if not self._pending:
            return False
        if not self._in_flight or len(self._pending) >= self.max_batch:
            return True
        return (
            len(self._pending) >= self.spawn_backlog
            and time.monotonic() - self._in_flight[-1] >= self.overlap_after_s
        )

    async def _drain(self, pool: AsyncConnectionPool[Conn]) -> None:
        try:
            # One connection for as long as there is work: under load the checkout is paid once.
            async with pool.connection() as conn:
                idle = True  # started for a delivery that found no writer
                while await self._next_work(idle):
                    idle = False
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    started = time.monotonic()
                    self._in_flight.append(started)
                    try:
                        with within(batch[0].trace):
                            ok = await self._write(conn, batch)
                    finally:
                        self._in_flight.remove(started)
                    if not ok:
                        break  # the connection may be broken: the next writer takes a new one
        except Exception as exc:
            # No connection at all (PostgreSQL down): fail what is waiting; Shopify retries.
            self._fail_all(exc)
        finally:
            self._active -= 1
            self._arrived.set()  # what this writer leaves behind goes to a lingering one

    async def close(self) -> None:
        """End the lingering writers (their connections go back to the pool) before the pool
        closes; a batch being written is finished first."""
        self._closing = True
        while self._tasks:
            self._arrived.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _next_work(self, idle: bool) -> bool:
        """True when there is a batch for this writer; False once it lingered `linger_s` idle.
        `idle`: nothing was waiting when the writer last looked (it was started for a delivery)."""
        deadline = time.monotonic() + self.linger_s
        while not self._should_take():
            left = deadline - time.monotonic()
            if left <= 0 or self._closing:
                return False
            self._arrived.clear()
            self._idle += 1
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                return self._should_take()
            finally:
                self._idle -= 1
            idle = True
        if idle and len(self._pending) < self.spawn_backlog and self.gather_s > 0:
            # The first few deliveries after a quiet spell: the requests already on their way
            # (read from their sockets, still in the handler) join this batch if it waits a
            # moment, rather than each paying a commit in a batch of one. Deliveries that came
            # while the last batch was being written have waited a whole batch already: they
            # go at once (gathering them too added a millisecond to every batch at a steady
            # rate, and to the latency of every delivery).
            await asyncio.sleep(self.gather_s)
            if not self._pending:
                # Another writer gathering at the same time woke first and took them all: back
                # to waiting (an empty batch here left through the error path, which fails
                # whatever is waiting at that moment).
                return await self._next_work(idle=False)
        return True

    def _fail_all(self, exc: Exception) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            if not item.done.done():
                item.done.set_exception(exc)

    async def _write(self, conn: Conn, batch: list[_Pending]) -> bool:
        """Commit the batch and answer its requests; False when it failed."""
        try:
            ids = await record_deliveries(conn, [(p.shop_id, p.delivery) for p in batch])
        except Exception as exc:
            if len(batch) > 1 and not conn.closed:
                # One bad delivery (a shop purged a moment ago) must not fail its neighbours:
                # each is retried in its own transaction.
                ok = True
                for item in batch:
                    ok = await self._write(conn, [item]) and ok
                return ok
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return False
        for item, inbox_id in zip(batch, ids, strict=True):
            if not item.done.done():
                item.done.set_result(inbox_id)
        return True

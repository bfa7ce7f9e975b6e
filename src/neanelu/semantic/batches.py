"""An embedding run through the OpenAI Batch API, driven by one queue job that never waits on the
worker: each time it runs it does what can be done now and says whether to come back.

1. Submit (once per run): page through the products like a local run; documents and deletions
   are stored at once, changed texts become requests (`embedding_requests`), a page's worth each.
2. Dispatch: queued requests are packed into input files within the API's limits (requests,
   inputs, bytes), uploaded and turned into batches (`embedding_batches`).
3. Poll: each open batch's status is read; a final one (completed, failed, expired, cancelled)
   has its output and error files read, joined to requests by `custom_id` in any order, and its
   vectors stored in one transaction with the request states. Failed requests, and what an
   expired or cancelled batch left undone, go back to the queue for a new batch, up to the
   attempts allowed; then they are counted as failed.
The run completes when no request is queued or in a batch. A result whose product changed since
its request was written is dropped: the change has queued a job of its own."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_all
from neanelu.search import store
from neanelu.search.hot import HotIndex
from neanelu.search.openai_batch import (
    FINAL_STATUSES,
    BatchFile,
    BatchLimits,
    BatchProvider,
    BatchRequest,
    BatchState,
    RequestResult,
    batch_files,
    read_results,
    share_tokens,
)
from neanelu.search.provider import EmbeddingError, EmbeddingUnavailable
from neanelu.semantic import batch_repository as repo
from neanelu.semantic.documents import PRODUCT_COLUMNS, ProductSource, ProductText, product_text
from neanelu.semantic.service import RunFigures, plan_page, store_documents, walk_pages
from neanelu.telemetry import current_metrics, span

log = logging.getLogger(__name__)

# Requests whose results commit in one transaction (512 vectors of 1536 floats each: ~3 MB apiece).
APPLY_REQUESTS = 8
# A request closes at this many characters of input too: the API bounds the tokens of one
# request (300,000), and 600,000 characters stay under it even at 2 characters per token.
REQUEST_CHARS = 600_000


@dataclass(frozen=True, slots=True)
class BatchOptions:
    request_inputs: int = 512
    max_attempts: int = 3
    limits: BatchLimits = field(default_factory=BatchLimits)


@dataclass(frozen=True, slots=True)
class BatchProgress:
    run_id: UUID
    done: bool
    open_batches: int


async def run_batch_job(
    pool: AsyncConnectionPool[Conn],
    provider: BatchProvider,
    shop_id: UUID,
    job_id: str,
    *,
    source: str,
    product_ids: Sequence[int] | None = None,
    metafield_keys: Sequence[str] = (),
    options: BatchOptions = BatchOptions(),
    hot: HotIndex | None = None,
) -> BatchProgress:
    """One step of the run the job `job_id` owns (started here on its first step)."""
    async with tenant_scope(pool, shop_id) as conn:
        run = await repo.find_run(conn, shop_id, job_id)
        if run is None:
            run_id = await repo.start_run(
                conn, shop_id, job_id, source, provider.name, provider.model
            )
            submitted = False
        else:
            if run.status != "running":
                return BatchProgress(run.id, True, 0)
            run_id, submitted = run.id, run.submitted_at is not None
    step = _Step(pool, provider, shop_id, run_id, metafield_keys, options, hot)
    try:
        with span("search.embed_batch_poll", {"neanelu.shop_id": str(shop_id)}):
            if not submitted:
                await step.submit(product_ids)
            await step.poll()
            await step.dispatch()
            return await step.finish_if_done()
    except EmbeddingUnavailable:
        raise  # the job comes back later; the run goes on
    except EmbeddingError as exc:
        async with tenant_scope(pool, shop_id) as conn:
            await repo.finish_run(conn, run_id, "failed", str(exc)[:500])
        raise


async def fail_abandoned_run(
    pool: AsyncConnectionPool[Conn], shop_id: UUID, job_id: str, reason: str
) -> None:
    """The queue gave up on the job: its run, if still running, is failed, so its requests stop
    counting as in flight and the next run asks for those products again."""
    async with tenant_scope(pool, shop_id) as conn:
        failed = await repo.fail_job_run(conn, shop_id, job_id, reason[:500])
    if failed:
        log.error("shop %s: embedding run of job %s failed: %s", shop_id, job_id, reason)


@dataclass
class _Step:
    pool: AsyncConnectionPool[Conn]
    provider: BatchProvider
    shop_id: UUID
    run_id: UUID
    metafield_keys: Sequence[str]
    options: BatchOptions
    hot: HotIndex | None

    async def submit(self, product_ids: Sequence[int] | None) -> None:
        figures = RunFigures()

        async def page(rows: Sequence[ProductSource]) -> None:
            async with tenant_scope(self.pool, self.shop_id) as conn:
                ids = [int(r.shopify_id) for r in rows]
                pending = await repo.in_flight(conn, self.shop_id, self.provider.model, ids)
                before = (figures.queued, figures.skipped, figures.removed)
                plan = await plan_page(
                    conn,
                    self.shop_id,
                    self.provider.model,
                    rows,
                    self.metafield_keys,
                    self.provider.max_tokens,
                    figures,
                    pending,
                )
                await store_documents(conn, self.shop_id, plan, figures)
                for chunk in _requests(plan.to_embed, self.options.request_inputs):
                    await repo.add_request(
                        conn,
                        self.shop_id,
                        self.run_id,
                        [t.shopify_id for t in chunk],
                        [t.text.content_hash for t in chunk],
                        [t.text.embedding for t in chunk],
                    )
                # The figures commit with the page: a resumed submission does not count it twice.
                await repo.add_figures(
                    conn,
                    self.run_id,
                    queued=figures.queued - before[0],
                    skipped=figures.skipped - before[1],
                    removed=figures.removed - before[2],
                )

        removed = await walk_pages(
            self.pool, self.shop_id, product_ids, self.options.request_inputs, page, self.hot
        )
        async with tenant_scope(self.pool, self.shop_id) as conn:
            await repo.add_figures(conn, self.run_id, removed=removed)
            await repo.mark_submitted(conn, self.run_id)

    async def dispatch(self) -> None:
        """Queued requests into new batches, one file's worth at a time; batches a crash left
        `submitting` are sent again."""
        limits = self.options.limits
        while True:
            async with tenant_scope(self.pool, self.shop_id) as conn:
                queued = await repo.queued_requests(
                    conn, self.run_id, max_inputs=limits.inputs, max_requests=limits.requests
                )
            if not queued:
                break
            file = next(iter(self._files(queued)))
            by_id = {str(r.id): r.id for r in queued}
            async with tenant_scope(self.pool, self.shop_id) as conn:
                batch_id = await repo.new_batch(
                    conn, self.shop_id, self.run_id, [by_id[c] for c in file.custom_ids]
                )
            await self._send(batch_id, file.content)
        async with tenant_scope(self.pool, self.shop_id) as conn:
            open_batches = await repo.open_batches(conn, self.run_id)
        for batch in (b for b in open_batches if b.status == "submitting"):
            async with tenant_scope(self.pool, self.shop_id) as conn:
                rows = await repo.batch_requests(conn, batch.id)
            files = self._files(rows)
            if len(files) != 1:
                raise EmbeddingError(f"embedding batch {batch.id} no longer fits one file")
            await self._send(batch.id, files[0].content)

    def _files(self, rows: Sequence[repo.RequestRow]) -> list[BatchFile]:
        requests = (BatchRequest(str(r.id), tuple(r.inputs)) for r in rows)
        return list(batch_files(self.provider.model, requests, self.options.limits))

    async def _send(self, batch_id: UUID, content: bytes) -> None:
        file_id = await self.provider.upload(content, f"neanelu-{batch_id}.jsonl")
        created = await self.provider.create_batch(
            file_id, {"neanelu_batch": str(batch_id), "neanelu_shop": str(self.shop_id)}
        )
        async with tenant_scope(self.pool, self.shop_id) as conn:
            await repo.batch_sent(conn, batch_id, file_id, created.id, created.status)
        log.info(
            "shop %s: embedding batch %s sent as %s (%d bytes)",
            self.shop_id,
            batch_id,
            created.id,
            len(content),
        )

    async def poll(self) -> None:
        async with tenant_scope(self.pool, self.shop_id) as conn:
            batches = await repo.open_batches(conn, self.run_id)
        for batch in batches:
            if batch.openai_batch_id is None:
                continue  # still `submitting`: dispatch sends it
            state = await self.provider.batch_state(batch.openai_batch_id)
            current_metrics().search_batch_polls.labels(state.status).inc()
            if state.status not in FINAL_STATUSES:
                async with tenant_scope(self.pool, self.shop_id) as conn:
                    await repo.batch_polled(
                        conn, batch.id, state.status, None, None, None, applied=False
                    )
                continue
            stored = await self._read_results(batch.id, state)
            log.info(
                "shop %s: embedding batch %s %s: %d requests stored",
                self.shop_id,
                state.id,
                state.status,
                stored,
            )

    async def _read_results(self, batch_id: UUID, state: BatchState) -> int:
        """The batch's output and error files, each streamed to a temporary file and read line
        by line, stored APPLY_REQUESTS requests per transaction (a request's vectors and its state
        commit together: a read cut short stores only what is left when read again). Last, the
        requests no line answered go back to the queue and the batch is marked applied."""
        async with tenant_scope(self.pool, self.shop_id) as conn:
            rows = {str(r.id): r for r in await repo.batch_requests(conn, batch_id)}
        expected = {custom_id: len(r.inputs) for custom_id, r in rows.items()}
        answered: set[str] = set()
        stored = 0
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id is None:
                continue
            with tempfile.TemporaryFile() as spool:
                await self.provider.download(file_id, spool)
                spool.seek(0)
                chunk: list[RequestResult] = []
                for result in read_results(spool, expected, self.provider.dimension):
                    if result.custom_id in answered:
                        continue  # a repeated line: the first one counts
                    answered.add(result.custom_id)
                    chunk.append(result)
                    if len(chunk) >= APPLY_REQUESTS:
                        stored += await self._apply(rows, chunk, state)
                        chunk = []
                stored += await self._apply(rows, chunk, state)
        unanswered = [r for custom_id, r in rows.items() if custom_id not in answered]
        stored += await self._apply(rows, [], state, unanswered=unanswered, batch_id=batch_id)
        return stored

    async def _apply(
        self,
        rows: dict[str, repo.RequestRow],
        results: Sequence[RequestResult],
        state: BatchState,
        *,
        unanswered: Sequence[repo.RequestRow] = (),
        batch_id: UUID | None = None,
    ) -> int:
        """Some requests' results stored (vectors of products whose text is unchanged since),
        failed and unanswered ones queued again or given up, in one transaction; with
        `batch_id`, that batch is marked applied in it too. Returns the requests stored."""
        stored_requests = embedded = tokens = failed = 0
        hot_ids: list[int] = []
        hot_vectors = []
        async with tenant_scope(self.pool, self.shop_id) as conn:
            answered = [rows[r.custom_id] for r in results]
            current = await self._current_hashes(conn, [p for r in answered for p in r.product_ids])
            retry = [(rows[r.custom_id], r.error) for r in results if r.vectors is None]
            retry += [(row, None) for row in unanswered]
            for row, why in retry:
                give_up = row.attempts >= self.options.max_attempts
                await repo.request_again(conn, row.id, why or _no_line(state), give_up=give_up)
                failed += len(row.product_ids) if give_up else 0
            for result in results:
                if result.vectors is None:
                    continue
                row = rows[result.custom_id]
                keep = [
                    i
                    for i, (pid, digest) in enumerate(
                        zip(row.product_ids, row.content_hashes, strict=True)
                    )
                    if current.get(int(pid)) == bytes(digest)
                ]
                shares = share_tokens(result.tokens, row.inputs)
                vectors = result.vectors[keep]
                await store.upsert_vectors(
                    conn,
                    self.shop_id,
                    self.provider.model,
                    [
                        store.VectorRow(
                            int(row.product_ids[i]), bytes(row.content_hashes[i]), shares[i]
                        )
                        for i in keep
                    ],
                    vectors,
                )
                await repo.request_done(conn, row.id)
                embedded += len(keep)
                tokens += result.tokens
                stored_requests += 1
                hot_ids += [int(row.product_ids[i]) for i in keep]
                hot_vectors.append(vectors)
            await repo.add_figures(
                conn, self.run_id, embedded=embedded, tokens=tokens, failed=failed
            )
            if batch_id is not None:
                await repo.batch_polled(
                    conn,
                    batch_id,
                    state.status,
                    state.output_file_id,
                    state.error_file_id,
                    state.errors,
                    applied=True,
                )
        current_metrics().search_embedded.labels(self.provider.name).inc(embedded)
        if self.hot is not None and hot_ids and await self.hot.is_hot(self.shop_id):
            await self.hot.put(self.shop_id, hot_ids, np.concatenate(hot_vectors))
        return stored_requests

    async def _current_hashes(self, conn: Conn, product_ids: Sequence[int]) -> dict[int, bytes]:
        """The hash of each live product's text now (a deleted or changed one has no match)."""
        query = sql.SQL("SELECT {} FROM products WHERE shopify_id = ANY(%s)").format(
            PRODUCT_COLUMNS
        )
        rows = await fetch_all(conn, ProductSource, query, (list(product_ids),))
        texts = [product_text(r, self.metafield_keys, self.provider.max_tokens) for r in rows]
        return {t.shopify_id: t.text.content_hash for t in texts if not t.deleted}

    async def finish_if_done(self) -> BatchProgress:
        async with tenant_scope(self.pool, self.shop_id) as conn:
            open_batches = await repo.open_batches(conn, self.run_id)
            if open_batches or await repo.has_queued(conn, self.run_id):
                return BatchProgress(self.run_id, False, len(open_batches))
            failed = await repo.failed_products(conn, self.run_id)
            error = (
                f"{failed} product(s) not embedded after {self.options.max_attempts} attempts"
                if failed
                else None
            )
            await repo.finish_run(conn, self.run_id, "completed", error)
        log.info("shop %s: batch embedding run %s completed", self.shop_id, self.run_id)
        return BatchProgress(self.run_id, True, 0)


def _no_line(state: BatchState) -> str:
    # A batch that failed validation (or ended otherwise without a line for the request).
    detail = f": {state.errors}" if state.errors else ""
    return f"no result line (batch {state.status}{detail})"[:500]


def _requests(texts: Sequence[ProductText], inputs: int) -> list[list[ProductText]]:
    """Texts cut into requests of at most `inputs` inputs and REQUEST_CHARS characters."""
    out: list[list[ProductText]] = []
    current: list[ProductText] = []
    chars = 0
    for t in texts:
        size = len(t.text.embedding)
        if current and (len(current) >= inputs or chars + size > REQUEST_CHARS):
            out.append(current)
            current, chars = [], 0
        current.append(t)
        chars += size
    if current:
        out.append(current)
    return out

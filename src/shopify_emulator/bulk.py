"""Bulk operations: validation, the background writer, statuses and signed file URLs.

The lifecycle is Shopify's: `bulkOperationRunQuery` answers with the operation `CREATED`; the writer
starts once that answer is out, and the operation is `RUNNING` with a growing `objectCount` until it
ends `COMPLETED`, `FAILED` (with an `errorCode`), `CANCELED`, or `EXPIRED`. Every run's ending is decided
in one place, :class:`Outcome`, from the faults switched on when it was created, so a new way for a run
to end is one field there. The writer is a worker thread (several processes for whole-catalog exports,
see `bulk_shards`) so the event loop keeps answering polls while a million products stream to disk; it
hands the ending back to the loop with `call_soon_threadsafe`, which is where webhooks are fired.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from shopify_emulator import bulk_mutation, bulk_plan, bulk_shards, graphql_api
from shopify_emulator.catalog import now_iso
from shopify_emulator.context import Context, ResolveError
from shopify_emulator.model import BulkOperation
from shopify_emulator.staged import StagedFiles
from shopify_emulator.state import EmulatorState, ShopState
from shopify_emulator.webhooks import Dispatcher

CONCURRENCY_VERSION = "2026-01"
ACTIVE = ("CREATED", "RUNNING", "CANCELING")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ends, fixed when it is created from the shop's faults."""

    fail_after: int = -1  # FAILED after this many lines (with partial data)
    error_code: str = "INTERNAL_SERVER_ERROR"
    truncate: bool = False  # the file ends mid-line
    null_url: bool = False  # COMPLETED with url null
    expire: bool = False  # COMPLETED, then EXPIRED: the result is gone
    # Exact bytes served as the result instead of the generated file (control API
    # `bulk/served-files`), for hostile files in tests.
    served: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_faults(cls, shop: ShopState, query: str) -> Outcome:
        failed = shop.faults.take("bulk_failed")
        timeout = shop.faults.take("bulk_timeout")
        fail_after, error_code = -1, "INTERNAL_SERVER_ERROR"
        if timeout is not None:
            fail_after, error_code = int(timeout.params.get("after_lines", 100)), "TIMEOUT"
        if failed is not None:
            fail_after = int(failed.params.get("after_lines", 100))
            error_code = str(failed.params.get("error_code", "INTERNAL_SERVER_ERROR"))
        return cls(
            fail_after=fail_after,
            error_code=error_code,
            truncate=shop.faults.take("truncated_jsonl") is not None,
            null_url=shop.faults.take("null_url") is not None,
            expire=shop.faults.take("bulk_expired") is not None,
            served=served.content if (served := shop.take_served_file(query)) else None,
        )

    @property
    def fails(self) -> bool:
        return self.fail_after >= 0


# Google Cloud Storage's V2 signed URLs, which is what Shopify's result links are.
BUCKET = "shopify-tiers-assets-prod-us-east1"
OUTPUTS = "bulk-operation-outputs"
ACCESS_ID = "assets-us-prod@shopify-tiers.iam.gserviceaccount.com"
CONTENT_TYPE = "application/jsonl"


def object_path(op: BulkOperation, partial: bool) -> str:
    return f"/{BUCKET}/{OUTPUTS}/{op.key}-{'partial' if partial else 'final'}"


def disposition(op: BulkOperation) -> str:
    name = f"bulk-{op.number}.jsonl"
    return f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"


def sign(key: bytes, path: str, expires: int, response_disposition: str, content_type: str) -> str:
    """URL-safe base64 HMAC over everything a client must not change: object, expiry, headers."""
    message = f"GET\n{expires}\n{path}\n{response_disposition}\n{content_type}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def signed_query(key: bytes, path: str, expires: int, op: BulkOperation) -> str:
    content_disposition = disposition(op)
    signature = sign(key, path, expires, content_disposition, CONTENT_TYPE)
    return (
        f"GoogleAccessId={quote(ACCESS_ID, safe='')}&Expires={expires}"
        f"&Signature={quote(signature, safe='')}"
        f"&response-content-disposition={quote(content_disposition, safe='')}"
        f"&response-content-type={quote(CONTENT_TYPE, safe='')}"
    )


class BulkRunner:
    def __init__(self, state: EmulatorState, dispatcher: Dispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.directory = os.path.join(
            state.config.bulk_dir, f"shopify-emulator-{os.getpid()}-{id(self)}"
        )
        os.makedirs(self.directory, exist_ok=True)
        self.threads: list[threading.Thread] = []
        self.staged = StagedFiles(self.directory, state.signing_key, state.clock)

    def cleanup(self) -> None:
        for op_state in self.state.shops.values():
            for op in op_state.bulk_operations.values():
                op.cancel.set()
        for thread in self.threads:
            thread.join(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- GraphQL entry points ---------------------------------------------------------------------

    def start(
        self, ctx: Context, query: str, group_objects: bool | None
    ) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        shop = ctx.shop
        if shop.faults.take("operation_in_progress") is not None:
            return None, [
                _user_error(
                    "A bulk query operation for this app and shop is already in progress.",
                    "OPERATION_IN_PROGRESS",
                )
            ]
        active = [
            op
            for op in shop.bulk_operations.values()
            if op.client_id == ctx.app.client_id and op.status in ACTIVE and op.type == "QUERY"
        ]
        new_rules = ctx.api_version >= CONCURRENCY_VERSION
        limit = 5 if new_rules else 1
        if len(active) >= limit:
            if new_rules:
                return None, [
                    _user_error(
                        f"A maximum of {limit} bulk query operations can run at once.",
                        "LIMIT_REACHED",
                    )
                ]
            return None, [
                _user_error(
                    f"A bulk query operation for this app and shop is already in progress: {active[0].gid}.",
                    "OPERATION_IN_PROGRESS",
                )
            ]
        document, errors = graphql_api.parse_and_validate(query)
        if document is None:
            return None, [_user_error(str(e.get("message")), "INVALID") for e in errors]
        config = self.state.config
        try:
            plan = bulk_plan.compile_plan(
                document, config.bulk_max_connection_depth, config.bulk_max_connections
            )
        except bulk_plan.PlanError as exc:
            return None, [_user_error(str(exc), "INVALID")]
        number = self.state.next_id() + 7_000_000_000
        # groupObjects became false by default in 2026-01.
        grouped = group_objects if group_objects is not None else not new_rules
        op = BulkOperation(
            number=number,
            client_id=ctx.app.client_id,
            shop=shop.domain,
            query=query,
            path=os.path.join(self.directory, f"{shop.config.name}-{number}.jsonl"),
            group_objects=grouped,
            created_at=now_iso(self.state.clock),
            created_s=self.state.clock.time(),
        )
        shop.bulk_operations[number] = op
        outcome = Outcome.from_faults(shop, query)
        job_ctx = Context(
            state=ctx.state, shop=shop, app=ctx.app, scopes=ctx.scopes, api_version=ctx.api_version
        )
        loop = asyncio.get_running_loop()
        # Shopify answers the mutation with the operation CREATED: the writer starts only after this
        # answer is built (the callback runs on the loop's next turn, after the response is encoded).
        loop.call_soon(self._launch, op, plan, job_ctx, outcome, loop)
        return op, []

    def _launch(
        self,
        op: BulkOperation,
        plan: bulk_plan.BulkPlan,
        ctx: Context,
        outcome: Outcome,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if op.cancel.is_set():
            self._finish(op, "CANCELED", None, loop)
            return
        thread = threading.Thread(
            target=self._run,
            args=(op, plan, ctx, outcome, loop),
            name=f"bulk-{op.number}",
            daemon=True,
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def start_mutation(
        self, ctx: Context, mutation: str, staged_path: str
    ) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        """`bulkOperationRunMutation`: one call of `mutation` per line of the staged JSONL file."""
        shop = ctx.shop
        if any(
            op.client_id == ctx.app.client_id and op.type == "MUTATION" and op.status in ACTIVE
            for op in shop.bulk_operations.values()
        ):
            return None, [
                _mutation_error(
                    "A bulk mutation operation for this app and shop is already in progress.",
                    "OPERATION_IN_PROGRESS",
                    None,
                )
            ]
        if not self.staged.exists(staged_path):
            return None, [
                _mutation_error(
                    "The JSONL file could not be found. Try uploading the file again, and check that "
                    "you've entered the URL correctly for the stagedUploadPath mutation argument.",
                    "NO_SUCH_FILE",
                    ["stagedUploadPath"],
                )
            ]
        document, errors = graphql_api.parse_and_validate(mutation)
        problem = bulk_mutation.check(document, errors)
        if problem is not None:
            return None, [_mutation_error(problem, "INVALID_MUTATION", ["mutation"])]
        assert document is not None
        number = self.state.next_id() + 7_000_000_000
        op = BulkOperation(
            number=number,
            client_id=ctx.app.client_id,
            shop=shop.domain,
            query=mutation,
            path=os.path.join(self.directory, f"{shop.config.name}-{number}.jsonl"),
            group_objects=False,
            created_at=now_iso(self.state.clock),
            created_s=self.state.clock.time(),
            type="MUTATION",
        )
        shop.bulk_operations[number] = op
        loop = asyncio.get_running_loop()
        job = bulk_mutation.Job(
            document=document,
            variables_path=self.staged.path(staged_path),
            ctx=Context(
                state=ctx.state,
                shop=shop,
                app=ctx.app,
                scopes=ctx.scopes,
                api_version=ctx.api_version,
                dispatcher=bulk_mutation.LoopDispatcher(self.dispatcher, loop),
                base_url=ctx.base_url,
            ),
        )
        loop.call_soon(self._launch_mutation, op, job, loop)
        return op, []

    def _launch_mutation(
        self, op: BulkOperation, job: bulk_mutation.Job, loop: asyncio.AbstractEventLoop
    ) -> None:
        def run() -> None:
            status, error_code = "COMPLETED", None
            try:
                op.status = "RUNNING"
                op.file_size = job.run(op.path, op.cancel.is_set, self._count(op))
                if op.cancel.is_set():
                    status = "CANCELED"
            except Exception:
                status, error_code = "FAILED", "INTERNAL_SERVER_ERROR"
            self._finish(op, status, error_code, loop)

        thread = threading.Thread(target=run, name=f"bulk-mutation-{op.number}", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    @staticmethod
    def _count(op: BulkOperation) -> Any:
        def progress(lines: int) -> None:
            op.object_count = op.root_object_count = lines

        return progress

    def cancel(self, ctx: Context, op: BulkOperation) -> list[dict[str, Any]]:
        if op.status not in ("CREATED", "RUNNING"):
            return [
                {
                    "field": ["id"],
                    "message": f"A bulk operation cannot be canceled when it is {op.status.lower()}",
                }
            ]
        op.status = "CANCELING"
        op.cancel.set()
        return []

    # -- URLs -------------------------------------------------------------------------------------

    def find(self, key: str) -> tuple[BulkOperation, bool] | None:
        """The operation and whether the partial file is meant, from a storage object name."""
        stem, _, kind = key.rpartition("-")
        if kind not in ("final", "partial"):
            return None
        for shop in self.state.shops.values():
            for op in shop.bulk_operations.values():
                if op.key == stem:
                    return op, kind == "partial"
        return None

    def url_for(self, op: BulkOperation, *, partial: bool, base_url: str) -> str | None:
        ttl = self.state.config.bulk_url_ttl_s
        now = self.state.clock.time()
        status = op.status_now(ttl, now)
        if partial:
            if status != "FAILED" or op.object_count == 0:
                return None
        elif status != "COMPLETED" or op.null_url or op.object_count == 0:
            # Shopify answers url: null for an empty result, and (as a fault) for a non-empty one.
            return None
        shop = self.state.shops[op.shop]
        if shop.faults.take("expired_url") is not None:
            ttl = -60.0
        expires = int(now + ttl)
        path = object_path(op, partial)
        return f"{base_url}{path}?{signed_query(self.state.signing_key, path, expires, op)}"

    # -- the worker thread ----------------------------------------------------------------------------

    def _run(
        self,
        op: BulkOperation,
        plan: bulk_plan.BulkPlan,
        ctx: Context,
        outcome: Outcome,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        status, error_code = "COMPLETED", None
        try:
            op.status = "RUNNING"
            self._write(op, plan, ctx, outcome)
            if outcome.served is not None:
                _serve_instead(op, outcome.served)
            if op.cancel.is_set():
                status = "CANCELED"
            elif outcome.fails:
                status, error_code = "FAILED", outcome.error_code
            else:
                if outcome.truncate:
                    _truncate_last_line(op.paths[-1])
                op.null_url = outcome.null_url
                op.expired = outcome.expire
        except ResolveError as exc:
            status = "FAILED"
            error_code = "ACCESS_DENIED" if exc.code == "ACCESS_DENIED" else "INTERNAL_SERVER_ERROR"
        except Exception:
            status, error_code = "FAILED", "INTERNAL_SERVER_ERROR"
        self._finish(op, status, error_code, loop)

    def _finish(
        self,
        op: BulkOperation,
        status: str,
        error_code: str | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """The one place a run ends: status, completion time, and the `bulk_operations/finish` webhook."""
        op.error_code = error_code
        op.finished_at = self.state.clock.time()
        op.completed_at = now_iso(self.state.clock)
        op.status = status
        if not loop.is_closed():
            loop.call_soon_threadsafe(self.dispatcher.bulk_finished, self.state.shops[op.shop], op)

    def _write(
        self, op: BulkOperation, plan: bulk_plan.BulkPlan, ctx: Context, outcome: Outcome
    ) -> None:
        config = self.state.config
        order = "grouped" if op.group_objects else config.bulk_child_order
        rate = config.bulk_lines_per_s
        if (
            config.bulk_workers > 1
            and rate <= 0
            and not outcome.fails
            and ctx.catalog.upper >= config.bulk_shard_min_products
            and bulk_shards.shardable(plan)
        ):
            # Access is checked here, as the first root object of a single writer would.
            next(bulk_plan.root_objects(plan, ctx), None)

            def progress(lines: int, roots: int) -> None:
                op.object_count, op.root_object_count = lines, roots

            op.file_size, op.parts = bulk_shards.run(
                plan,
                ctx,
                order,
                op.number,
                op.path,
                config.bulk_workers,
                progress,
                op.cancel.is_set,
            )
            return
        fail_after = outcome.fail_after
        started = time.monotonic()
        with open(op.path, "wb") as out:
            writer = bulk_shards.GroupWriter(out.fileno())
            for group, roots in bulk_plan.root_lines(plan, ctx, order, seed=op.number):
                if fail_after >= 0 and op.object_count + len(group) >= fail_after:
                    # The injected failure: keep the lines written up to it, as partial data.
                    kept = group[: fail_after - op.object_count]
                    writer.add(kept)
                    op.object_count += len(kept)
                    op.root_object_count += sum(1 for line in kept if b'"__parentId"' not in line)
                    break
                writer.add(group)
                op.object_count += len(group)
                op.root_object_count += roots
                if op.cancel.is_set():
                    break
                if rate > 0:
                    ahead = op.object_count / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            writer.flush()
        op.file_size = writer.size


def _serve_instead(op: BulkOperation, content: bytes) -> None:
    """The result file replaced by exact bytes (control API `bulk/served-files`), counted as
    Shopify counts a file: every line an object, lines without `__parentId` roots."""
    op.parts = ()
    with open(op.path, "wb") as out:
        out.write(content)
    lines = [line for line in content.split(b"\n") if line]
    op.object_count = len(lines)
    op.root_object_count = sum(b'"__parentId"' not in line for line in lines)
    op.file_size = len(content)


def _truncate_last_line(path: str) -> None:
    size = os.path.getsize(path)
    if size < 2:
        return
    with open(path, "rb+") as handle:
        handle.seek(max(0, size - 4096))
        tail = handle.read()
        last_start = tail.rstrip(b"\n").rfind(b"\n") + 1
        last_len = len(tail.rstrip(b"\n")) - last_start
        # Cut the last line in half, and its newline with it: the file ends mid-object.
        handle.truncate(size - len(tail) + last_start + max(1, last_len // 2))


def _mutation_error(message: str, code: str, field_path: list[str] | None) -> dict[str, Any]:
    return {"field": field_path, "message": message, "code": code}


def _user_error(message: str, code: str) -> dict[str, Any]:
    return {"field": ["query"], "message": message, "code": code}

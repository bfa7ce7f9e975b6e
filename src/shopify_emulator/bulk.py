"""Bulk operations: validation, the background writer thread, statuses and signed file URLs.

Each run writes its JSONL on a worker thread so the event loop keeps answering polls while a million
products stream to disk. The thread hands its outcome back to the loop with `call_soon_threadsafe`,
which is where webhooks are fired.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shopify_emulator import bulk_plan, graphql_api, ids
from shopify_emulator.catalog import now_iso
from shopify_emulator.resolvers import Context, ResolveError
from shopify_emulator.state import EmulatorState, ShopState
from shopify_emulator.webhooks import Dispatcher

CONCURRENCY_VERSION = "2026-01"
ACTIVE = ("CREATED", "RUNNING", "CANCELING")
FLUSH_BYTES = 1 << 20


@dataclass(slots=True)
class BulkOperation:
    number: int
    client_id: str
    shop: str
    query: str
    path: str
    group_objects: bool
    status: str = "CREATED"
    type: str = "QUERY"
    error_code: str | None = None
    created_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    null_url: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def gid(self) -> str:
        return ids.gid("BulkOperation", self.number)


def sign(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


class BulkRunner:
    def __init__(self, state: EmulatorState, dispatcher: Dispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.directory = os.path.join(
            state.config.bulk_dir, f"shopify-emulator-{os.getpid()}-{id(self)}"
        )
        os.makedirs(self.directory, exist_ok=True)
        self.threads: list[threading.Thread] = []

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
            if op.client_id == ctx.app.client_id and op.status in ACTIVE
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
        )
        shop.bulk_operations[number] = op
        faults: dict[str, Any] = {
            kind: shop.faults.take(kind)
            for kind in (
                "truncated_jsonl",
                "bulk_failed",
                "bulk_timeout",
                "bulk_expired",
                "null_url",
            )
        }
        faults["served_file"] = shop.take_served_file(query)
        job_ctx = Context(
            state=ctx.state, shop=shop, app=ctx.app, scopes=ctx.scopes, api_version=ctx.api_version
        )
        loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._run,
            args=(op, plan, job_ctx, faults, loop),
            name=f"bulk-{number}",
            daemon=True,
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return op, []

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

    def file_path(self, shop: ShopState, number: int) -> str | None:
        op = shop.bulk_operations.get(number)
        return op.path if op is not None else None

    def url_for(self, op: BulkOperation, *, partial: bool, base_url: str) -> str | None:
        if partial:
            if op.status != "FAILED" or op.object_count == 0:
                return None
        elif op.status != "COMPLETED" or op.null_url or op.object_count == 0:
            # Shopify answers url: null for an empty result, and (as a fault) for a non-empty one.
            return None
        shop = self.state.shops[op.shop]
        path = f"/_files/{shop.config.name}/{op.number}.jsonl"
        ttl = self.state.config.bulk_url_ttl_s
        if shop.faults.take("expired_url") is not None:
            ttl = -60.0
        expires = int(time.time() + ttl)
        signature = sign(self.state.signing_key, path, expires)
        return f"{base_url}{path}?expires={expires}&signature={signature}"

    # -- the worker thread ----------------------------------------------------------------------------

    def _run(
        self,
        op: BulkOperation,
        plan: bulk_plan.BulkPlan,
        ctx: Context,
        faults: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        failed = faults.get("bulk_failed") or faults.get("bulk_timeout")
        fail_after = int(failed.params.get("after_lines", 100)) if failed else -1
        # Shopify told the app it completed; only a later read finds the result gone.
        reported: str | None = None
        try:
            op.status = "RUNNING"
            self._write(op, plan, ctx, fail_after)
            if faults.get("served_file") is not None:
                _serve_instead(op, faults["served_file"].content)
            if op.cancel.is_set():
                op.status = "CANCELED"
            elif failed is not None:
                op.status = "FAILED"
                default = "TIMEOUT" if failed.kind == "bulk_timeout" else "INTERNAL_SERVER_ERROR"
                op.error_code = str(failed.params.get("error_code", default))
            elif faults.get("bulk_expired") is not None:
                op.status, reported = "EXPIRED", "COMPLETED"
            else:
                if faults.get("truncated_jsonl") is not None:
                    _truncate_last_line(op.path)
                op.null_url = faults.get("null_url") is not None
                op.status = "COMPLETED"
        except ResolveError as exc:
            op.status = "FAILED"
            op.error_code = (
                "ACCESS_DENIED" if exc.code == "ACCESS_DENIED" else "INTERNAL_SERVER_ERROR"
            )
        except Exception:
            op.status = "FAILED"
            op.error_code = "INTERNAL_SERVER_ERROR"
        op.completed_at = now_iso()
        if not loop.is_closed():
            loop.call_soon_threadsafe(
                self.dispatcher.bulk_finished, self.state.shops[op.shop], op, reported
            )

    def _write(
        self, op: BulkOperation, plan: bulk_plan.BulkPlan, ctx: Context, fail_after: int
    ) -> None:
        config = self.state.config
        order = "grouped" if op.group_objects else config.bulk_child_order
        rate = config.bulk_lines_per_s
        encode = bulk_plan.ENCODER.encode
        buffer = bytearray()
        size = 0
        started = time.monotonic()
        with open(op.path, "wb") as out:
            # after_lines 0: the operation fails before its first line (no partial data).
            groups = (
                () if fail_after == 0 else bulk_plan.root_lines(plan, ctx, order, seed=op.number)
            )
            for group in groups:
                for line in group:
                    buffer += encode(line)
                    buffer += b"\n"
                    op.object_count += 1
                    if "__parentId" not in line:
                        op.root_object_count += 1
                    if op.object_count == fail_after:
                        break
                if len(buffer) >= FLUSH_BYTES:
                    out.write(buffer)
                    size += len(buffer)
                    buffer.clear()
                if op.cancel.is_set() or op.object_count == fail_after:
                    break
                if rate > 0:
                    ahead = op.object_count / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            out.write(buffer)
            size += len(buffer)
        op.file_size = size


def _serve_instead(op: BulkOperation, content: bytes) -> None:
    """The result file replaced by exact bytes (control API `bulk/served-files`), counted as
    Shopify counts a file: every line an object, lines without `__parentId` roots."""
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


def _user_error(message: str, code: str) -> dict[str, Any]:
    return {"field": ["query"], "message": message, "code": code}

"""Running a bulk mutation: each line of the staged JSONL file is the variables of one call.

The result file has one line per input line, in input order: `{"data": {...}, "__lineNumber": n}`, with
`errors` next to `data` when a line failed (bad JSON, variables that do not fit the mutation), as
Shopify writes it. Webhooks the calls fire are handed to the event loop, never sent from this thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    OperationDefinitionNode,
    OperationType,
    execute,
)

from shopify_emulator import graphql_api
from shopify_emulator.context import Context
from shopify_emulator.mutations import MUTATIONS
from shopify_emulator.webhooks import Dispatcher

FLUSH_BYTES = 1 << 20


def check(document: DocumentNode | None, errors: list[dict[str, Any]]) -> str | None:
    """Why `document` cannot run as a bulk mutation, or None when it can."""
    if document is None:
        return "; ".join(str(e.get("message")) for e in errors) or "Invalid mutation."
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.MUTATION:
        return "Bulk mutations must contain exactly one mutation operation."
    fields = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1:
        return "Bulk mutations must contain exactly one mutation field."
    name = fields[0].name.value
    if name not in MUTATIONS:
        return f"Mutation '{name}' is not supported in bulk mutations; use one of {', '.join(sorted(MUTATIONS))}."
    return None


class LoopDispatcher:
    """The dispatcher's `fire`, called from a worker thread, run on the event loop."""

    def __init__(self, dispatcher: Dispatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.dispatcher = dispatcher
        self.loop = loop

    def fire(self, *args: Any, **kwargs: Any) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: self.dispatcher.fire(*args, **kwargs))


@dataclass(slots=True)
class Job:
    document: DocumentNode
    variables_path: str
    ctx: Context

    def run(
        self, out_path: str, cancelled: Callable[[], bool], progress: Callable[[int], None]
    ) -> int:
        """Execute every line; returns the result file's size."""
        encode = msgspec.json.Encoder().encode
        schema = graphql_api.schema()
        size = 0
        buffer = bytearray()
        with open(self.variables_path, "rb") as source, open(out_path, "wb") as out:
            for number, raw in enumerate(source):
                if cancelled():
                    break
                buffer += encode(self._line(schema, raw, number)) + b"\n"
                if len(buffer) >= FLUSH_BYTES:
                    out.write(buffer)
                    size += len(buffer)
                    buffer.clear()
                progress(number + 1)
            out.write(buffer)
            size += len(buffer)
        return size

    def _line(self, schema: Any, raw: bytes, number: int) -> dict[str, Any]:
        try:
            variables = msgspec.json.decode(raw)
            if not isinstance(variables, dict):
                raise ValueError("a line must be a JSON object of variables")
        except (msgspec.DecodeError, ValueError) as exc:
            return {
                "errors": [{"message": f"Invalid JSONL on line {number + 1}: {exc}"}],
                "__lineNumber": number,
            }
        result: ExecutionResult = execute(
            schema, self.document, context_value=self.ctx, variable_values=variables
        )  # type: ignore[assignment]
        line: dict[str, Any] = {"data": result.data}
        if result.errors:
            line["errors"] = [error.formatted for error in result.errors]
        line["__lineNumber"] = number
        return line

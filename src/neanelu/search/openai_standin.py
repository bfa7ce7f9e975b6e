"""A stand-in for OpenAI's Files, Batches and Embeddings endpoints, speaking their documented
protocol over HTTP, for tests and for local runs without a network or a key. It is not OpenAI:
its vectors are hash-seeded unit vectors (the same text and model always give the same vector, so
a test can tell which product got which), and its batches move one status per poll.

In `src/` rather than under `tests/` for the same reason as the Redis query engine stand-in
(`standin.py`): a developer can point a worker at it (`OPENAI_BASE_URL`) without the test tree.

Endpoints (Bearer key checked on every one): `POST /v1/files` (multipart, `purpose=batch`),
`GET /v1/files/{id}`, `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`,
`POST /v1/embeddings`. Faults a test turns on (`Faults`): output lines in another order than the
input's, requests that fail (they go to the error file), a batch that expires with part of its
requests done, a batch that fails validation, batches held `in_progress` until released.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neanelu.search.openai_batch import ENDPOINT, KNOWN_DIMENSIONS, MAX_INPUTS_PER_REQUEST
from neanelu.search.provider import Vectors

STARTUP_TIMEOUT_S = 20.0


def standin_vector(model: str, text: str, dimension: int) -> Vectors:
    """The stand-in's embedding of `text`: a unit vector seeded by SHA-256 of model and text."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass
class Faults:
    # Output lines in reverse input order (the API documents no order).
    reverse_output: bool = True
    # A request with an input containing the marker fails (HTTP 500 in the error file), this many
    # more times.
    fail_markers: dict[str, int] = field(default_factory=dict)
    # The next batch expires once this many of its requests are done; the rest land in the error
    # file as `batch_expired`.
    expire_after: int | None = None
    # Batches stay `in_progress` while set.
    hold: bool = False
    # The next batch fails validation (its `errors` say why), as a malformed file would.
    refuse_next: bool = False
    # Seconds each embeddings call waits before answering, as a slow API would.
    embeddings_delay_s: float = 0.0


@dataclass
class _File:
    id: str
    purpose: str
    filename: str
    content: bytes
    created_at: int

    def object(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class StandInState:
    api_key: str
    faults: Faults = field(default_factory=Faults)
    files: dict[str, _File] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What was asked, in order ("POST /v1/batches", ...): tests read the protocol used.
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def batch_inputs(self, batch_id: str) -> list[dict[str, Any]]:
        """The request lines of a batch's input file, as parsed JSON."""
        with self.lock:
            batch = self.batches[batch_id]
            content = self.files[batch["input_file_id"]].content
        return [json.loads(line) for line in content.splitlines() if line.strip()]


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status
    )


def _redacted(key: str) -> str:
    # As OpenAI words a wrong key: its start and end only.
    return f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else "***"


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise ValueError("multipart body without a boundary")
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + found.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.decode("latin-1")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is not None:
            parts[name.group(1)] = (
                filename.group(1) if filename else None,
                data.removesuffix(b"\r\n"),
            )
    return parts


class _Api:
    def __init__(self, state: StandInState) -> None:
        self.state = state

    def _authorised(self, request: Request) -> JSONResponse | None:
        self.state.calls.append(f"{request.method} {request.url.path}")
        given = request.headers.get("authorization", "")
        if given == f"Bearer {self.state.api_key}":
            return None
        key = given.removeprefix("Bearer ").strip()
        return _error(
            401,
            f"Incorrect API key provided: {_redacted(key)}." if key else "No API key provided.",
            "invalid_request_error",
            "invalid_api_key",
        )

    async def upload(self, request: Request) -> Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        try:
            parts = _multipart(await request.body(), request.headers.get("content-type", ""))
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request_error")
        purpose = parts.get("purpose", (None, b""))[1].decode()
        if purpose != "batch":
            return _error(
                400, f"purpose {purpose!r} is not supported here", "invalid_request_error"
            )
        filename, content = parts.get("file", (None, b""))
        if not content:
            return _error(400, "'file' is a required property", "invalid_request_error")
        file = self._store("batch", filename or "upload.jsonl", content)
        return JSONResponse(file.object())

    def _store(self, purpose: str, filename: str, content: bytes) -> _File:
        file = _File(f"file-{uuid.uuid4().hex}", purpose, filename, content, int(time.time()))
        with self.state.lock:
            self.state.files[file.id] = file
        return file

    def _file(self, request: Request) -> _File | JSONResponse:
        if (refused := self._authorised(request)) is not None:
            return refused
        with self.state.lock:
            found = self.state.files.get(request.path_params["file_id"])
        return found or _error(404, "No such File object", "invalid_request_error")

    async def file(self, request: Request) -> Response:
        found = self._file(request)
        return JSONResponse(found.object()) if isinstance(found, _File) else found

    async def content(self, request: Request) -> Response:
        found = self._file(request)
        if not isinstance(found, _File):
            return found
        return Response(found.content, media_type="application/octet-stream")

    async def create_batch(self, request: Request) -> Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        body = await request.json()
        input_file_id = body.get("input_file_id")
        with self.state.lock:
            found = self.state.files.get(input_file_id) if isinstance(input_file_id, str) else None
        if found is None or found.purpose != "batch":
            return _error(400, "input_file_id is not a batch input file", "invalid_request_error")
        if body.get("endpoint") != ENDPOINT:
            return _error(400, f"this stand-in serves only {ENDPOINT}", "invalid_request_error")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be 24h", "invalid_request_error")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": f"batch_{uuid.uuid4().hex}",
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86_400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self.state.lock:
            self.state.batches[batch["id"]] = batch
        return JSONResponse(batch)

    async def get_batch(self, request: Request) -> Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        batch_id = request.path_params["batch_id"]
        with self.state.lock:
            batch = self.state.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No batch found with id '{batch_id}'.", "invalid_request_error")
        self._advance(batch)
        return JSONResponse(batch)

    def _advance(self, batch: dict[str, Any]) -> None:
        """One status step per poll: validating -> in_progress -> finalizing -> completed (or
        expired, or failed when the input does not validate)."""
        now = int(time.time())
        status = batch["status"]
        if status == "validating":
            lines, problem = self._validate(batch)
            if problem is None and self.state.faults.refuse_next:
                self.state.faults.refuse_next = False
                problem = {
                    "code": "invalid_request",
                    "message": "the batch input file could not be read",
                    "param": None,
                    "line": None,
                }
            if problem is not None:
                batch.update(
                    status="failed",
                    failed_at=now,
                    errors={"object": "list", "data": [problem]},
                )
                return
            batch["request_counts"]["total"] = len(lines)
            batch.update(status="in_progress", in_progress_at=now)
        elif status == "in_progress" and not self.state.faults.hold:
            expire_after = self.state.faults.expire_after
            if expire_after is not None:
                self.state.faults.expire_after = None
                self._run(batch, expire_after)
                batch.update(status="expired", expired_at=now)
            else:
                batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            self._run(batch, None)
            batch.update(status="completed", completed_at=now)

    def _validate(
        self, batch: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        with self.state.lock:
            content = self.state.files[batch["input_file_id"]].content
        for number, raw in enumerate(content.splitlines(), start=1):
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            problem = _line_problem(line, seen)
            if problem is not None:
                return [], {
                    "code": "invalid_request",
                    "message": problem,
                    "param": None,
                    "line": number,
                }
            assert isinstance(line, dict)
            seen.add(line["custom_id"])
            lines.append(line)
        return lines, None

    def _run(self, batch: dict[str, Any], only: int | None) -> None:
        """Answer the batch's requests (the first `only` of them; the rest expire) into an output
        and an error file."""
        lines, _ = self._validate(batch)
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for position, line in enumerate(lines):
            if only is not None and position >= only:
                errors.append(
                    _result_line(
                        line["custom_id"],
                        None,
                        {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the "
                            "completion window expired.",
                        },
                    )
                )
                continue
            status, body = self._embeddings(line["body"])
            row = _result_line(line["custom_id"], (status, body), None)
            (output if status == 200 else errors).append(row)
        if self.state.faults.reverse_output:
            output.reverse()
            errors.reverse()
        counts = batch["request_counts"]
        counts["completed"] = len(output)
        counts["failed"] = len(errors)
        if output:
            batch["output_file_id"] = self._store("batch_output", "output.jsonl", _jsonl(output)).id
        if errors:
            batch["error_file_id"] = self._store("batch_output", "errors.jsonl", _jsonl(errors)).id

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = body.get("model")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        dimension = KNOWN_DIMENSIONS.get(model) if isinstance(model, str) else None
        if dimension is None or not isinstance(model, str):
            return 404, _error_body(f"The model `{model}` does not exist", "model_not_found")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS_PER_REQUEST:
            return 400, _error_body(f"input must be 1..{MAX_INPUTS_PER_REQUEST} strings", None)
        if not all(isinstance(t, str) and t for t in inputs):
            return 400, _error_body("every input must be a non-empty string", None)
        with self.state.lock:
            for marker, left in self.state.faults.fail_markers.items():
                if left > 0 and any(marker in t for t in inputs):
                    self.state.faults.fail_markers[marker] = left - 1
                    return 500, {
                        "error": {
                            "message": "The server had an error processing your request.",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = standin_vector(model, text, dimension)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if as_base64
                else [float(x) for x in vector]
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(t.split()) for t in inputs)
        return 200, {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def embeddings(self, request: Request) -> Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        if self.state.faults.embeddings_delay_s > 0:
            await asyncio.sleep(self.state.faults.embeddings_delay_s)
        status, body = self._embeddings(await request.json())
        return JSONResponse(body, status)


def _line_problem(line: object, seen: set[str]) -> str | None:
    if not isinstance(line, dict):
        return "a line is not a JSON object"
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "a line has no custom_id"
    if custom_id in seen:
        return f"custom_id {custom_id} is repeated"
    if line.get("method") != "POST" or line.get("url") != ENDPOINT:
        return f"a line is not POST {ENDPOINT}"
    if not isinstance(line.get("body"), dict):
        return "a line has no body"
    return None


def _error_body(message: str, code: str | None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _result_line(
    custom_id: str, response: tuple[int, dict[str, Any]] | None, error: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": None
        if response is None
        else {
            "status_code": response[0],
            "request_id": f"req_{uuid.uuid4().hex}",
            "body": response[1],
        },
        "error": error,
    }


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def create_app(state: StandInState) -> Starlette:
    api = _Api(state)
    return Starlette(
        routes=[
            Route("/v1/files", api.upload, methods=["POST"]),
            Route("/v1/files/{file_id}", api.file, methods=["GET"]),
            Route("/v1/files/{file_id}/content", api.content, methods=["GET"]),
            Route("/v1/batches", api.create_batch, methods=["POST"]),
            Route("/v1/batches/{batch_id}", api.get_batch, methods=["GET"]),
            Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        ]
    )


class RunningStandIn:
    """The stand-in on a real socket, in a thread of this process; `stop()` ends it."""

    def __init__(self, state: StandInState, host: str, port: int) -> None:
        self.state = state
        self.host = host
        self.port = port
        config = uvicorn.Config(
            create_app(state), host=host, port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"openai-standin-{port}", daemon=True
        )

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL is set to (the SDK's paths start after `/v1`)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> RunningStandIn:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenAI stand-in failed to start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve_forever(api_key: str, host: str, port: int) -> None:
    """In the foreground until interrupted (`python -m neanelu.search.openai_standin`)."""
    config = uvicorn.Config(
        create_app(StandInState(api_key)), host=host, port=port, log_level="warning"
    )
    uvicorn.Server(config).run()


def start_openai_standin(api_key: str, *, host: str = "127.0.0.1", port: int = 0) -> RunningStandIn:
    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
    return RunningStandIn(StandInState(api_key), host, port).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The OpenAI Batch API stand-in (not OpenAI).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    # The key it accepts comes from the environment, never the command line (ps shows argv).
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        parser.error("set OPENAI_API_KEY to the key the stand-in should accept")
    serve_forever(key, args.host, args.port)


if __name__ == "__main__":
    main()

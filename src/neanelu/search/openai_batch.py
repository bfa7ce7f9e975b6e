"""The OpenAI Batch API's file formats, for embeddings: the JSONL of requests (split by the
API's limits) and the output and error files read back by `custom_id`, in any order.

Pure functions over bytes: the calls that upload, create and poll are in `openai_provider`.
Shapes as documented for `/v1/batches`: an input line is
`{"custom_id", "method": "POST", "url": "/v1/embeddings", "body": {...}}`; an output or error line is
`{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": {...} | null}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final, Protocol, runtime_checkable

import numpy as np

from neanelu.search.provider import EmbeddingError, EmbeddingProvider, Vectors

ENDPOINT: Final = "/v1/embeddings"
# The API's documented limits: inputs in one embeddings request; requests, embedding inputs and
# bytes in one batch input file.
MAX_INPUTS_PER_REQUEST = 2048
MAX_REQUESTS_PER_BATCH = 50_000
MAX_INPUTS_PER_BATCH = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024


# Native dimensions of OpenAI's embedding models; another model needs OPENAI_EMBEDDING_DIMENSION.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# Batch statuses, as documented; the last four are final.
STATUSES = (
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, slots=True)
class BatchState:
    """What a poll of one batch says."""

    id: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    errors: str | None  # the batch's own errors (a file that failed validation)


@runtime_checkable
class BatchApi(Protocol):
    """The Batch API calls an embedding job makes, one HTTP call each (`OpenAIProvider`)."""

    async def upload(self, content: bytes, filename: str) -> str: ...

    async def create_batch(self, input_file_id: str, metadata: dict[str, str]) -> BatchState: ...

    async def batch_state(self, batch_id: str) -> BatchState: ...

    async def download(self, file_id: str, into: IO[bytes]) -> None: ...


@runtime_checkable
class BatchProvider(EmbeddingProvider, BatchApi, Protocol):
    """A provider that also speaks the Batch API: embedding jobs go through batches."""


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one batch file may hold; the defaults are the API's, tests pass smaller ones."""

    requests: int = MAX_REQUESTS_PER_BATCH
    inputs: int = MAX_INPUTS_PER_BATCH
    file_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"requests per batch must be 1..{MAX_REQUESTS_PER_BATCH}")
        if not 1 <= self.inputs <= MAX_INPUTS_PER_BATCH:
            raise ValueError(f"inputs per batch must be 1..{MAX_INPUTS_PER_BATCH}")
        if not 1 <= self.file_bytes <= MAX_FILE_BYTES:
            raise ValueError(f"batch file bytes must be 1..{MAX_FILE_BYTES}")


@dataclass(frozen=True, slots=True)
class BatchRequest:
    custom_id: str
    inputs: tuple[str, ...]


def request_line(model: str, request: BatchRequest) -> bytes:
    """One line of the input file, newline included."""
    if not 1 <= len(request.inputs) <= MAX_INPUTS_PER_REQUEST:
        raise ValueError(f"an embeddings request holds 1..{MAX_INPUTS_PER_REQUEST} inputs")
    line = {
        "custom_id": request.custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {"model": model, "input": list(request.inputs), "encoding_format": "base64"},
    }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class BatchFile:
    """One input file's content and the requests in it, in file order."""

    content: bytes
    custom_ids: tuple[str, ...]


def batch_files(
    model: str, requests: Iterable[BatchRequest], limits: BatchLimits
) -> Iterator[BatchFile]:
    """The requests packed into as few files as the limits allow, in order."""
    lines: list[bytes] = []
    ids: list[str] = []
    size = inputs = 0
    for request in requests:
        line = request_line(model, request)
        if len(line) > limits.file_bytes or len(request.inputs) > limits.inputs:
            raise ValueError(f"request {request.custom_id} alone exceeds one batch file's limits")
        if lines and (
            len(lines) >= limits.requests
            or size + len(line) > limits.file_bytes
            or inputs + len(request.inputs) > limits.inputs
        ):
            yield BatchFile(b"".join(lines), tuple(ids))
            lines, ids, size, inputs = [], [], 0, 0
        lines.append(line)
        ids.append(request.custom_id)
        size += len(line)
        inputs += len(request.inputs)
    if lines:
        yield BatchFile(b"".join(lines), tuple(ids))


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A request's outcome: its vectors in input order and the tokens it used, or why it failed."""

    custom_id: str
    vectors: Vectors | None
    tokens: int
    error: str | None
    # The request never ran (the batch expired or was cancelled first): resubmit it as it was.
    unfinished: bool = False


# Error codes of requests that never ran; every other failure counts as an attempt.
UNFINISHED_CODES = frozenset({"batch_expired", "batch_cancelled"})


def decode_vector(value: object, dimension: int) -> Vectors:
    """`encoding_format=base64`: little-endian float32 bytes; a plain list of floats also reads."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise EmbeddingError("an embedding is not valid base64") from None
        if len(raw) != 4 * dimension:
            raise EmbeddingError(f"an embedding has {len(raw) // 4} dimensions, not {dimension}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if isinstance(value, list) and len(value) == dimension:
        return np.asarray(value, dtype=np.float32)
    raise EmbeddingError(f"an embedding is neither base64 nor a list of {dimension} floats")


def embeddings_body(body: object, expected: int, dimension: int) -> tuple[Vectors, int]:
    """The vectors of an embeddings response body (ordered by `index`) and its total tokens."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise EmbeddingError("an embeddings response has no data list")
    data: list[object] = body["data"]
    if len(data) != expected:
        raise EmbeddingError(
            f"an embeddings response has {len(data)} vectors for {expected} inputs"
        )
    out = np.empty((expected, dimension), dtype=np.float32)
    seen: set[int] = set()
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            raise EmbeddingError("an embeddings response item has no index")
        index = int(item["index"])
        if not 0 <= index < expected or index in seen:
            raise EmbeddingError(f"an embeddings response has a bad or repeated index {index}")
        seen.add(index)
        out[index] = decode_vector(item.get("embedding"), dimension)
    usage = body.get("usage")
    tokens = usage.get("total_tokens", 0) if isinstance(usage, dict) else 0
    return _unit(out), int(tokens) if isinstance(tokens, int) else 0


def _unit(vectors: Vectors) -> Vectors:
    # OpenAI's embeddings are unit length already; normalising again keeps cosine == dot product
    # for any provider behind the same store.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = (vectors / norms).astype(np.float32)
    return unit


def read_results(
    lines: Iterable[bytes], expected: dict[str, int], dimension: int
) -> Iterator[RequestResult]:
    """Every line of an output or error file (an open file reads line by line), joined to its
    request by `custom_id` (`expected`: custom_id -> number of inputs). A line of a request not
    in `expected` is passed over (a read cut short stored it already, or moved it to another
    batch); a line that cannot be read is an error of the file, not of some request."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise EmbeddingError(f"batch result line {number} is not JSON") from None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(custom_id, str):
            raise EmbeddingError(f"batch result line {number} has no custom_id")
        if custom_id in expected:
            yield _result(custom_id, line, expected[custom_id], dimension)


def _result(custom_id: str, line: dict[str, object], inputs: int, dimension: int) -> RequestResult:
    error = line.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = f"{code}: {error.get('message') or ''}".strip()
        return RequestResult(custom_id, None, 0, message[:500], code in UNFINISHED_CODES)
    response = line.get("response")
    if not isinstance(response, dict):
        return RequestResult(custom_id, None, 0, "a result line with neither response nor error")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200:
        detail = body.get("error") if isinstance(body, dict) else None
        reason = detail.get("message") if isinstance(detail, dict) else None
        return RequestResult(custom_id, None, 0, f"HTTP {status}: {reason or 'failed'}"[:500])
    try:
        vectors, tokens = embeddings_body(body, inputs, dimension)
    except EmbeddingError as exc:
        return RequestResult(custom_id, None, 0, str(exc))
    return RequestResult(custom_id, vectors, tokens, None)


def share_tokens(total: int, texts: Sequence[str]) -> list[int]:
    """The API reports usage per request, not per input: each input gets a share by its length
    (the shares add up to the request's total)."""
    weights = [max(1, len(t)) for t in texts]
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    if shares:
        shares[0] += total - sum(shares)
    return shares

"""The OpenAI provider, through the official `openai` SDK: the catalog is embedded through the
Batch API (upload a JSONL of requests, create a batch, poll it, read its output and error files),
a search query through one synchronous `embeddings.create` call.

The API key is a SecretStr until the SDK client is built, and no error or log line made here
carries it (the SDK's own errors name the status and OpenAI's message, not the key)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import IO

import numpy as np
import openai
from pydantic import SecretStr

from neanelu.config import Settings
from neanelu.search.openai_batch import (
    ENDPOINT,
    KNOWN_DIMENSIONS,
    STATUSES,
    BatchState,
    embeddings_body,
    share_tokens,
)
from neanelu.search.provider import Embedded, EmbeddingError, EmbeddingUnavailable

# The models' window is 8,191 tokens, but the text is cut by characters (no OpenAI tokenizer
# here): 2,048 x 6 characters stays under the window even at 2 characters per token.
WINDOW_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    api_key: SecretStr
    model: str
    dimension: int
    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIOptions:
        if settings.openai_api_key is None:
            raise EmbeddingError("the OpenAI provider needs OPENAI_API_KEY")
        model = settings.openai_embedding_model
        dimension = settings.openai_embedding_dimension or KNOWN_DIMENSIONS.get(model)
        if dimension is None:
            raise EmbeddingError(
                f"OPENAI_EMBEDDING_MODEL {model!r} is not a known model: set "
                "OPENAI_EMBEDDING_DIMENSION to its dimension"
            )
        return cls(
            api_key=settings.openai_api_key,
            model=model,
            dimension=dimension,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
        )


class OpenAIProvider:
    """`embed` is the query-time path (one synchronous request); the batch methods are async,
    called by the embedding jobs, each one HTTP call: nothing here waits for a batch."""

    def __init__(self, options: OpenAIOptions) -> None:
        self.options = options
        key = options.api_key.get_secret_value()
        common = {
            "api_key": key,
            "base_url": options.base_url,
            "timeout": options.timeout_s,
            "max_retries": options.max_retries,
        }
        self._sync = openai.OpenAI(**common)  # type: ignore[arg-type]
        self._async = openai.AsyncOpenAI(**common)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return "openai"

    @property
    def model(self) -> str:
        return self.options.model

    @property
    def dimension(self) -> int:
        return self.options.dimension

    @property
    def max_tokens(self) -> int:
        return WINDOW_TOKENS

    def embed(self, texts: list[str]) -> Embedded:
        if not texts:
            return Embedded(np.zeros((0, self.dimension), np.float32), ())
        try:
            # The raw body: with encoding_format=base64 the SDK hands back the base64 text in a
            # field typed as floats, which its own serializer then complains about.
            response = self._sync.embeddings.with_raw_response.create(
                model=self.model, input=texts, encoding_format="base64"
            )
        except openai.OpenAIError as exc:
            raise self._error("OpenAI embeddings request failed", exc) from None
        try:
            body = json.loads(response.content)
        except ValueError:
            raise EmbeddingError("OpenAI embeddings response is not JSON") from None
        vectors, tokens = embeddings_body(body, len(texts), self.dimension)
        return Embedded(vectors, tuple(share_tokens(tokens, texts)))

    async def aclose(self) -> None:
        self._sync.close()
        await self._async.close()

    def _error(self, what: str, exc: openai.OpenAIError) -> EmbeddingError:
        message = f"{what}: {_describe(exc, self.options.api_key.get_secret_value())}"
        transient = isinstance(exc, openai.APIConnectionError | openai.RateLimitError) or (
            isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
        )
        return EmbeddingUnavailable(message) if transient else EmbeddingError(message)

    async def upload(self, content: bytes, filename: str) -> str:
        """A batch input file (`purpose=batch`); returns its file id."""
        try:
            created = await self._async.files.create(
                file=(filename, content, "application/jsonl"), purpose="batch"
            )
        except openai.OpenAIError as exc:
            raise self._error("OpenAI file upload failed", exc) from None
        return created.id

    async def create_batch(self, input_file_id: str, metadata: dict[str, str]) -> BatchState:
        try:
            batch = await self._async.batches.create(
                input_file_id=input_file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata=metadata,
            )
        except openai.OpenAIError as exc:
            raise self._error("OpenAI batch creation failed", exc) from None
        return _state(batch)

    async def batch_state(self, batch_id: str) -> BatchState:
        try:
            batch = await self._async.batches.retrieve(batch_id)
        except openai.OpenAIError as exc:
            raise self._error(f"OpenAI batch {batch_id} poll failed", exc) from None
        return _state(batch)

    async def download(self, file_id: str, into: IO[bytes]) -> None:
        """A file's content streamed into `into`: an output file of 50,000 vectors is ~400 MB of
        base64, which never sits in memory whole."""
        try:
            async with self._async.files.with_streaming_response.content(file_id) as response:
                async for chunk in response.iter_bytes():
                    into.write(chunk)
        except openai.OpenAIError as exc:
            raise self._error(f"OpenAI file {file_id} download failed", exc) from None


def _state(batch: openai.types.Batch) -> BatchState:
    counts = batch.request_counts
    errors = None
    if batch.errors is not None and batch.errors.data:
        errors = "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data)[:500]
    if batch.status not in STATUSES:
        raise EmbeddingError(f"OpenAI batch {batch.id} has an unknown status {batch.status!r}")
    return BatchState(
        id=batch.id,
        status=batch.status,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        total=counts.total if counts else 0,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        errors=errors,
    )


# OpenAI's 401 message quotes the start and end of a wrong key: no `sk-...` goes any further.
_KEYLIKE = re.compile(r"sk-[A-Za-z0-9_\-*]+")


def _describe(exc: openai.OpenAIError, key: str) -> str:
    # The status and OpenAI's own message, scrubbed; never the request (its headers hold the key).
    if isinstance(exc, openai.APIStatusError):
        text = f"HTTP {exc.status_code}: {exc.message}"
        return _KEYLIKE.sub("sk-***", text.replace(key, "***") if key else text)[:300]
    return type(exc).__name__

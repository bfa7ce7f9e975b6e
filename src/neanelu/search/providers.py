"""The provider a process uses, built once (loading and checking a model takes seconds)."""

from __future__ import annotations

import hashlib
import threading

from neanelu.config import Settings
from neanelu.search.provider import EmbeddingProvider

_lock = threading.Lock()
_built: dict[tuple[object, ...], EmbeddingProvider] = {}


def provider_for(settings: Settings) -> EmbeddingProvider:
    """The local model by default; OpenAI when OPENAI_API_KEY is set (or SEARCH_PROVIDER=openai)."""
    if settings.embedding_provider == "openai":
        return openai_provider_for(settings)
    key = ("local", settings.search_threads, settings.search_batch_size, settings.search_precision)
    with _lock:
        found = _built.get(key)
        if found is None:
            # Imported here, not at the top: the model module pulls in onnx and onnxruntime
            # (about 0.5 s and tens of MB), which every process and CLI command would otherwise
            # load at start-up, `neanelu db migrate` included, whether it embeds or not.
            from neanelu.search.local.model import LocalOptions, LocalProvider

            found = LocalProvider(
                LocalOptions(
                    threads=settings.search_threads,
                    batch_size=settings.search_batch_size,
                    precision=settings.search_precision,
                )
            )
            _built[key] = found
        return found


def openai_provider_for(settings: Settings) -> EmbeddingProvider:
    # Imported here: the SDK takes seconds to import, which no process using the local model
    # should pay.
    from neanelu.search.openai_provider import OpenAIOptions, OpenAIProvider

    options = OpenAIOptions.from_settings(settings)
    # The key is part of what identifies a client; hashed, so no plain key sits in this dict's keys.
    key = (
        "openai",
        hashlib.sha256(options.api_key.get_secret_value().encode()).hexdigest(),
        options.model,
        options.dimension,
        options.base_url,
        options.timeout_s,
    )
    with _lock:
        found = _built.get(key)
        if not isinstance(found, OpenAIProvider):
            found = OpenAIProvider(options)
            _built[key] = found
        return found

"""The provider a process uses, built once (loading and checking a model takes seconds)."""

from __future__ import annotations

import threading

from neanelu.config import Settings
from neanelu.search.provider import EmbeddingProvider

_lock = threading.Lock()
_built: dict[tuple[str, int, int, str], EmbeddingProvider] = {}


def provider_for(settings: Settings) -> EmbeddingProvider:
    key = (
        settings.search_provider,
        settings.search_threads,
        settings.search_batch_size,
        settings.search_precision,
    )
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

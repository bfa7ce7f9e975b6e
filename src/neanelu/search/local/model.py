"""The local provider: the packaged model on onnxruntime, batched, on every core it is given."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from neanelu.search.local.files import MODEL_NAME, ModelFiles, load_model_files
from neanelu.search.local.graph import build_encoder
from neanelu.search.local.weights import load_safetensors
from neanelu.search.provider import Embedded

Precision = Literal["int8", "float32"]
# int8: the linear layers' weights in int8 (7 bits, graph.py says why) with one scale per output
# column, all but the first layer's FFN output, whose input (the GELU output) has the outlier
# channels one activation range per call serves worst (docs/search.md: mean cosine 0.989 to the
# float32 model with it in int8, 0.992 without, for ~8% of the speed).
_LINEAR_PARTS = ("qkv", "attn_out", "ffn_in", "ffn_out")
_FLOAT32_LINEARS = frozenset({"l0.ffn_out"})
# The int8 vectors are not the float32 ones (cosine ~0.99): they are stored under their own model
# name, so a change of precision re-embeds rather than mixing the two in one search. "v2": the
# 7-bit weights and float32 l0.ffn_out changed the vectors (cosine ~0.99 to the first recipe's).
INT8_SUFFIX = "+int8v2"


@dataclass(frozen=True, slots=True)
class LocalOptions:
    # Batches run side by side on this many threads (0: every core this process may use), each
    # batch on one core.
    threads: int = 0
    # Sorted by length, batches of 4 to 64 ran within noise of each other per CPU-second (an
    # earlier, busier measurement had 8 ~1.4x faster than 64); 8 keeps a page's work spread
    # over every runner thread.
    batch_size: int = 8
    precision: Precision = "int8"
    model_dir: Path | None = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_tokenizer(files: ModelFiles) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(files.tokenizer))
    # The sentence-transformers window (256), not the tokenizer file's 128 fixed padding.
    tokenizer.enable_truncation(max_length=files.max_seq_length)
    tokenizer.no_padding()
    return tokenizer


class LocalProvider:
    """all-MiniLM-L6-v2: 384 dimensions, unit-length vectors, English-trained (see docs/search.md
    for what it does with Romanian text)."""

    name = "local"

    def __init__(self, options: LocalOptions | None = None) -> None:
        options = options or LocalOptions()
        self._files = load_model_files(options.model_dir)
        self._tokenizer = load_tokenizer(self._files)
        self._batch_size = options.batch_size
        self.model = MODEL_NAME + (INT8_SUFFIX if options.precision == "int8" else "")
        layers = range(int(self._files.config["num_hidden_layers"]))
        int8 = frozenset(
            f"l{i}.{part}" for i in layers for part in _LINEAR_PARTS if options.precision == "int8"
        )
        encoder = build_encoder(
            load_safetensors(self._files.weights), self._files.config, int8 - _FLOAT32_LINEARS
        )
        so = ort.SessionOptions()
        # One core per run, and runs side by side (onnxruntime's Run is thread-safe and releases
        # the GIL): a batch of 8 short texts is too small to split across cores, where every
        # operator would pay a hand-off and a wait (one run on 2 threads: 59 texts per CPU-second,
        # two 1-thread runs at once: see docs/search.md).
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        # Idle threads sleep rather than spin: the process shares its cores with PostgreSQL,
        # Redis and the event loop (spinning took half the CPU time of a busy machine's run).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # shape-merge notices of the optimiser are not errors
        self._session = ort.InferenceSession(encoder, so, providers=["CPUExecutionProvider"])
        self._dimension = int(self._files.config["hidden_size"])
        self._runners = ThreadPoolExecutor(
            max_workers=options.threads or _cores(), thread_name_prefix="neanelu-embed"
        )
        # The first run of a session allocates and plans (17.5 ms for a three-word query here,
        # against 3.2 ms after): paid now, at start-up, not by the first search.
        self.embed(["warm-up"])

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._files.max_seq_length

    def embed(self, texts: list[str]) -> Embedded:
        if not texts:
            return Embedded(np.zeros((0, self._dimension), np.float32), ())
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        out = np.empty((len(texts), self._dimension), np.float32)
        # Batches of similar length waste little on padding.
        order = np.argsort(lengths, kind="stable")
        batches = []
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                n = int(lengths[i])
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            batches.append((idx, ids, mask))
        if len(batches) == 1:  # a search query: no hand-off to a runner thread
            idx, ids, mask = batches[0]
            out[idx] = self._run(ids, mask)
        else:
            runs = [(idx, self._runners.submit(self._run, ids, mask)) for idx, ids, mask in batches]
            for idx, run in runs:
                out[idx] = run.result()
        return Embedded(out, tuple(int(n) for n in lengths))

    def _run(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors)

"""Benchmark: the local embedding model on product-like texts.

Builds TEXTS (default 2,000) product documents the way the embedding job does (title, vendor, type,
tags, a description of 1-3 sentences), embeds them with the local provider at its default precision
(int8) and, in the same run as the baseline, at float32 (onnxruntime, batched, all cores), then
embeds a sample of REFERENCE (default 64) with the plain numpy reference encoder of the same weights
and compares. Besides wall-clock texts per second it reports texts per CPU-second of the process:
on a machine shared with other work the wall clock says more about the neighbours than the model.
Last line: `texts_per_s=... cosine_vs_reference=...` (the default precision), then the float32
baseline and the ratio.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
from faker import Faker

from neanelu.search.local.files import load_model_files
from neanelu.search.local.model import LocalOptions, LocalProvider, Precision
from neanelu.search.local.reference import ReferenceEncoder
from neanelu.search.text import document_text

TEXTS = int(os.environ.get("TEXTS", "2000"))
REFERENCE = int(os.environ.get("REFERENCE", "64"))
KINDS = ["Shirt", "Dress", "Boots", "Jacket", "Lamp", "Knife", "Mug", "Backpack", "Sofa", "Watch"]


def product_texts(n: int, max_tokens: int) -> list[str]:
    fake = Faker(["en_US", "ro_RO"])
    Faker.seed(20261201)
    rng = random.Random(20261201)
    out = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        doc = document_text(
            f"{fake.color_name()} {fake.word()} {kind}",
            [
                ("vendor", fake.company()),
                ("type", kind),
                ("tags", ", ".join(fake.words(rng.randint(1, 4)))),
            ],
            [f"<p>{fake.paragraph(nb_sentences=rng.randint(1, 3))}</p>"],
            max_tokens=max_tokens,
        )
        out.append(doc.embedding)
    return out


def measure(provider: LocalProvider, texts: list[str]) -> tuple[np.ndarray, float, float]:
    """The vectors, texts per second and texts per CPU-second of this process."""
    provider.embed(texts[:64])  # warm-up: first-run allocations are not the steady state
    started, cpu = time.perf_counter(), time.process_time()
    result = provider.embed(texts)
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    tokens = sum(result.tokens)
    print(
        f"{provider.model}: {len(texts)} texts, {tokens} tokens ({tokens / len(texts):.1f}/text) "
        f"in {elapsed:.2f}s ({cpu_s:.2f} CPU-s); load average {os.getloadavg()[0]:.1f}"
    )
    return result.vectors, len(texts) / elapsed, len(texts) / cpu_s


def main() -> None:
    texts = product_texts(TEXTS, load_model_files().max_seq_length)
    figures: dict[Precision, tuple[np.ndarray, float, float]] = {}
    for precision in ("int8", "float32"):
        started = time.perf_counter()
        provider = LocalProvider(LocalOptions(precision=precision))
        print(f"{precision} model built and verified in {time.perf_counter() - started:.1f}s")
        figures[precision] = measure(provider, texts)
    reference = ReferenceEncoder(load_model_files())
    sample = random.Random(7).sample(range(len(texts)), min(REFERENCE, len(texts)))
    truth = {i: reference.embed_one(texts[i]) for i in sample}
    cosine = {}
    for precision, (vectors, _, _) in figures.items():
        cosines = [float(np.dot(truth[i], vectors[i])) for i in sample]
        cosine[precision] = float(np.mean(cosines))
        print(f"{precision} vs reference, sample {len(sample)}: min cosine {min(cosines):.6f}")
    _, per_s, per_cpu_s = figures["int8"]
    _, fp32_per_s, fp32_per_cpu_s = figures["float32"]
    print(
        f"texts_per_s={per_s:.1f} cosine_vs_reference={cosine['int8']:.6f} "
        f"texts_per_cpu_s={per_cpu_s:.1f} float32_texts_per_s={fp32_per_s:.1f} "
        f"float32_cosine={cosine['float32']:.6f} speedup_cpu={per_cpu_s / fp32_per_cpu_s:.2f}"
    )


if __name__ == "__main__":
    main()

"""Benchmark: the local embedding model on product-like texts.

Builds TEXTS (default 2,000) product documents the way the embedding job does (title, vendor, type,
tags, a description of 1-3 sentences), embeds them with the local provider (onnxruntime, batched, all
cores), then embeds a sample of REFERENCE (default 64) with the plain numpy reference encoder of the
same weights and compares. Last line: `texts_per_s=... cosine_vs_reference=...`.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
from faker import Faker

from neanelu.search.local.files import load_model_files
from neanelu.search.local.model import LocalProvider
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


def main() -> None:
    started = time.perf_counter()
    provider = LocalProvider()
    print(f"model loaded and verified in {time.perf_counter() - started:.1f}s")
    texts = product_texts(TEXTS, provider.max_tokens)
    provider.embed(texts[:64])  # warm-up: first-run allocations are not the steady state
    started = time.perf_counter()
    result = provider.embed(texts)
    elapsed = time.perf_counter() - started
    tokens = sum(result.tokens)
    print(f"{len(texts)} texts, {tokens} tokens ({tokens / len(texts):.1f}/text) in {elapsed:.2f}s")
    reference = ReferenceEncoder(load_model_files())
    sample = random.Random(7).sample(range(len(texts)), min(REFERENCE, len(texts)))
    cosines = [float(np.dot(reference.embed_one(texts[i]), result.vectors[i])) for i in sample]
    print(f"reference sample {len(sample)}: min cosine {min(cosines):.6f}")
    print(
        f"texts_per_s={len(texts) / elapsed:.1f} cosine_vs_reference={float(np.mean(cosines)):.6f}"
    )


if __name__ == "__main__":
    main()

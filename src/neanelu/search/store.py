"""The cold store: vectors (`embeddings`) and full-text documents (`search_documents`) of one
shop, in the caller's tenant transaction. Every call names the model: vectors of two models are
never read together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import numpy.typing as npt

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_scalar
from neanelu.search.provider import Vectors

DEFAULT_TEXT_CONFIG = "simple"


def vector_literal(vector: npt.NDArray[np.float32]) -> str:
    """pgvector's text form; 9 significant digits round-trip a float32 exactly."""
    return "[" + ",".join(f"{float(x):.9g}" for x in vector) + "]"


@dataclass(frozen=True, slots=True)
class VectorRow:
    product_id: int
    content_hash: bytes
    tokens: int


@dataclass(frozen=True, slots=True)
class DocumentRow:
    product_id: int
    content_hash: bytes
    primary: str
    secondary: str
    rest: str


@dataclass(frozen=True, slots=True)
class _StoredHash:
    product_shopify_id: int
    content_hash: bytes


@dataclass(frozen=True, slots=True)
class _StoredDocument:
    product_shopify_id: int
    content_hash: bytes
    text_config: str
    deleted: bool


async def text_config(conn: Conn, shop_id: UUID) -> str:
    config = await fetch_scalar(
        conn, str, "SELECT text_config::text FROM search_settings WHERE shop_id = %s", (shop_id,)
    )
    return config if config is not None else DEFAULT_TEXT_CONFIG


async def set_text_config(conn: Conn, shop_id: UUID, config: str) -> None:
    """Raises psycopg's UndefinedObject for a configuration the server does not have."""
    await conn.execute(
        "INSERT INTO search_settings (shop_id, text_config) VALUES (%s, %s::regconfig) "
        "ON CONFLICT (shop_id) DO UPDATE SET text_config = excluded.text_config, "
        "updated_at = now()",
        (shop_id, config),
    )


async def vector_hashes(
    conn: Conn, shop_id: UUID, model: str, product_ids: Sequence[int]
) -> dict[int, bytes]:
    found = await fetch_all(
        conn,
        _StoredHash,
        "SELECT product_shopify_id, content_hash FROM embeddings "
        "WHERE shop_id = %s AND model = %s AND product_shopify_id = ANY(%s)",
        (shop_id, model, list(product_ids)),
    )
    return {int(r.product_shopify_id): bytes(r.content_hash) for r in found}


async def document_hashes(
    conn: Conn, shop_id: UUID, product_ids: Sequence[int]
) -> dict[int, tuple[bytes, str, bool]]:
    found = await fetch_all(
        conn,
        _StoredDocument,
        "SELECT product_shopify_id, content_hash, text_config::text AS text_config, deleted "
        "FROM search_documents WHERE shop_id = %s AND product_shopify_id = ANY(%s)",
        (shop_id, list(product_ids)),
    )
    return {
        int(r.product_shopify_id): (bytes(r.content_hash), str(r.text_config), bool(r.deleted))
        for r in found
    }


async def upsert_vectors(
    conn: Conn,
    shop_id: UUID,
    model: str,
    rows: Sequence[VectorRow],
    vectors: Vectors,
) -> None:
    if not rows:
        return
    dimension = int(vectors.shape[1])
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO embeddings (shop_id, model, product_shopify_id, dimension, content_hash, "
            "embedding, tokens) VALUES (%s, %s, %s, %s, %s, %s::vector, %s) "
            "ON CONFLICT (shop_id, model, product_shopify_id) DO UPDATE SET "
            "dimension = excluded.dimension, content_hash = excluded.content_hash, "
            "embedding = excluded.embedding, tokens = excluded.tokens, embedded_at = now()",
            [
                (
                    shop_id,
                    model,
                    r.product_id,
                    dimension,
                    r.content_hash,
                    vector_literal(vectors[i]),
                    r.tokens,
                )
                for i, r in enumerate(rows)
            ],
        )


async def upsert_documents(
    conn: Conn, shop_id: UUID, config: str, rows: Sequence[DocumentRow]
) -> None:
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO search_documents (shop_id, product_shopify_id, text_config, content_hash, "
            "document, deleted) VALUES (%(shop)s, %(id)s, %(cfg)s::regconfig, %(hash)s, "
            "setweight(to_tsvector(%(cfg)s::regconfig, %(a)s), 'A') || "
            "setweight(to_tsvector(%(cfg)s::regconfig, %(b)s), 'B') || "
            "setweight(to_tsvector(%(cfg)s::regconfig, %(c)s), 'C'), false) "
            "ON CONFLICT (shop_id, product_shopify_id) DO UPDATE SET "
            "text_config = excluded.text_config, content_hash = excluded.content_hash, "
            "document = excluded.document, deleted = false, updated_at = now()",
            [
                {
                    "shop": shop_id,
                    "id": r.product_id,
                    "cfg": config,
                    "hash": r.content_hash,
                    "a": r.primary,
                    "b": r.secondary,
                    "c": r.rest,
                }
                for r in rows
            ],
        )


async def remove(conn: Conn, shop_id: UUID, product_ids: Sequence[int]) -> int:
    """A deleted product leaves the vector index under every model; its text document stays,
    flagged, for searches that include deleted products. Returns the vectors removed."""
    if not product_ids:
        return 0
    ids = list(product_ids)
    cur = await conn.execute(
        "DELETE FROM embeddings WHERE shop_id = %s AND product_shopify_id = ANY(%s)",
        (shop_id, ids),
    )
    await conn.execute(
        "UPDATE search_documents SET deleted = true, updated_at = now() "
        "WHERE shop_id = %s AND product_shopify_id = ANY(%s) AND NOT deleted",
        (shop_id, ids),
    )
    return cur.rowcount


async def forget(conn: Conn, shop_id: UUID, product_ids: Sequence[int]) -> None:
    """Products no longer in the catalog at all leave both indexes."""
    ids = list(product_ids)
    await conn.execute(
        "DELETE FROM embeddings WHERE shop_id = %s AND product_shopify_id = ANY(%s)", (shop_id, ids)
    )
    await conn.execute(
        "DELETE FROM search_documents WHERE shop_id = %s AND product_shopify_id = ANY(%s)",
        (shop_id, ids),
    )
